"""The failure budget behind guessing protection, on a fake clock, with its levels in memory and in the file
the workers of a server share; and exact across processes sharing that file."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from promopool import ledger
from promopool.domain import guessing
from promopool.domain.errors import CodeUnusable, InvalidInput, RateLimited
from promopool.domain.guessing import FailureBudget, Ledger, MemoryLedger

Ledgers = Callable[[], Ledger]


@pytest.fixture(params=["memory", "shared file"])
def ledgers(request: pytest.FixtureRequest, tmp_path: Path) -> Ledgers:
    """Makes ledgers of one kind; the shared ones all on one file, as the workers of one server."""
    if request.param == "memory":
        return MemoryLedger
    path = tmp_path / "budgets.db"
    ledger.create(path)
    return lambda: ledger.SharedLedger(path, "guessing")


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fail(budget: FailureBudget, callers: list[str]) -> None:
    with pytest.raises(CodeUnusable), budget.attempt(callers):
        raise CodeUnusable()


def test_only_unusable_answers_spend_and_the_budget_refills_evenly(ledgers: Ledgers) -> None:
    ticks = Ticks()
    budget = FailureBudget(2, 10, clock=ticks, ledger=ledgers())  # one attempt back every 5 s
    for _ in range(5):
        with budget.attempt(["a"]):
            pass  # a success gives its attempt back
        with pytest.raises(InvalidInput), budget.attempt(["a"]):
            raise InvalidInput("not a guess")
    fail(budget, ["a"])
    fail(budget, ["a"])
    with pytest.raises(RateLimited) as raised, budget.attempt(["a"]):
        pass
    assert raised.value.retry_after == 5
    ticks.now += 4
    with pytest.raises(RateLimited) as raised:
        budget.take(["a"])
    assert raised.value.retry_after == 1
    ticks.now += 1
    fail(budget, ["a"])
    assert budget.left("a") == 0
    ticks.now += 1000
    assert budget.left("a") == 2  # never above the budget


def test_an_attempt_draws_on_every_callers_budget(ledgers: Ledgers) -> None:
    budget = FailureBudget(1, 60, clock=Ticks(), ledger=ledgers())
    fail(budget, ["key:1", "address:x"])
    with pytest.raises(RateLimited):
        budget.take(["key:2", "address:x"])
    assert budget.left("key:2") == 1  # a refused attempt takes nothing
    budget.take(["key:2", "address:y"])


def test_attempts_in_flight_hold_their_share(ledgers: Ledgers) -> None:
    budget = FailureBudget(3, 60, clock=Ticks(), ledger=ledgers())
    for _ in range(3):
        budget.take(["a"])  # three attempts running at once
    with pytest.raises(RateLimited):
        budget.take(["a"])
    budget.give_back(["a"])
    budget.take(["a"])


def test_zero_turns_it_off_and_memory_is_bounded(ledgers: Ledgers, monkeypatch: pytest.MonkeyPatch) -> None:
    off = FailureBudget(0, 60, ledger=ledgers())
    for _ in range(100):
        fail(off, ["a"])
    monkeypatch.setattr(guessing, "MAX_CALLERS", 3)
    monkeypatch.setattr(ledger, "MAX_CALLERS", 3)
    monkeypatch.setattr(guessing, "PRUNE_EVERY", 1)  # (the shared file is swept every PRUNE_EVERY updates)
    ticks = Ticks()
    levels = ledgers()
    budget = FailureBudget(5, 60, clock=ticks, ledger=levels)  # one attempt back every 12 s
    for caller in "abcd":
        ticks.now += 1
        fail(budget, [caller])
    assert len(levels) == 3
    assert budget.left("a") == 5 and budget.left("d") == 4  # the oldest was forgotten
    ticks.now += 12
    budget.give_back(["b"])  # any update sweeps: b, c and d are back at 5, forgotten
    assert len(levels) == 0


def test_the_workers_of_a_server_share_one_budget(tmp_path: Path) -> None:
    """Two workers of one server, each with its own connection to the file: a failure on one counts on
    the other."""
    path = tmp_path / "budgets.db"
    ledger.create(path)
    first, second = (FailureBudget(2, 3600, ledger=ledger.SharedLedger(path, "guessing")) for _ in "12")
    other_budget = FailureBudget(2, 3600, ledger=ledger.SharedLedger(path, "public_fetch"))
    fail(first, ["key:k"])
    fail(second, ["key:k"])
    with pytest.raises(RateLimited):
        first.take(["key:k"])
    with pytest.raises(RateLimited):
        second.take(["key:k"])
    other_budget.take(["key:k"])  # another budget in the same file is apart


BUDGET = 2000
PROCESSES = 4


def _attempt_until_refused(path: str, start: Event, spent: Queue[int]) -> None:
    budget = FailureBudget(BUDGET, 10**9, ledger=ledger.SharedLedger(path, "guessing"))  # (no refill)
    start.wait()
    count = 0
    while True:
        try:
            budget.take(["address:10.0.0.1"])
        except RateLimited:
            spent.put(count)
            return
        count += 1


def test_exact_across_processes(tmp_path: Path) -> None:
    """Four processes failing at once on one file: exactly BUDGET failures pass, not one more."""
    path = tmp_path / "budgets.db"
    ledger.create(path)
    context = multiprocessing.get_context("spawn")
    start, spent = context.Event(), context.Queue()
    processes = [
        context.Process(target=_attempt_until_refused, args=(str(path), start, spent))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    start.set()
    counts = [spent.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert sum(counts) == BUDGET, counts
