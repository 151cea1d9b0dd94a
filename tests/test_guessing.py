"""The failure budget behind guessing protection (in-process, on a fake clock)."""

from __future__ import annotations

import pytest

from promopool.domain import guessing
from promopool.domain.errors import CodeUnusable, InvalidInput, RateLimited
from promopool.domain.guessing import FailureBudget


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fail(budget: FailureBudget, callers: list[str]) -> None:
    with pytest.raises(CodeUnusable), budget.attempt(callers):
        raise CodeUnusable()


def test_only_unusable_answers_spend_and_the_budget_refills_evenly() -> None:
    ticks = Ticks()
    budget = FailureBudget(2, 10, clock=ticks)  # one attempt back every 5 s
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


def test_an_attempt_draws_on_every_callers_budget() -> None:
    budget = FailureBudget(1, 60, clock=Ticks())
    fail(budget, ["key:1", "address:x"])
    with pytest.raises(RateLimited):
        budget.take(["key:2", "address:x"])
    assert budget.left("key:2") == 1  # a refused attempt takes nothing
    budget.take(["key:2", "address:y"])


def test_attempts_in_flight_hold_their_share() -> None:
    budget = FailureBudget(3, 60, clock=Ticks())
    for _ in range(3):
        budget.take(["a"])  # three attempts running at once
    with pytest.raises(RateLimited):
        budget.take(["a"])
    budget.give_back(["a"])
    budget.take(["a"])


def test_zero_turns_it_off_and_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    off = FailureBudget(0, 60)
    for _ in range(100):
        fail(off, ["a"])
    monkeypatch.setattr(guessing, "MAX_CALLERS", 3)
    budget = FailureBudget(5, 60, clock=Ticks())
    for caller in "abcd":
        fail(budget, [caller])
    assert budget.left("a") == 5 and budget.left("d") == 4  # the oldest was forgotten
