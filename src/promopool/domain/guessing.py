"""Guessing protection: a budget of failed code attempts per caller.

A validate or redeem takes one attempt from each of its caller's budgets (one per API key, one per client
address) before it runs, so concurrent attempts cannot overdraw a budget; only the one refusal every
non-holder gets (``code_unusable``) keeps it spent, anything else gives it back. A budget refills evenly,
``budget`` attempts per ``window`` seconds. With a budget empty the attempt is refused with RateLimited,
saying when one attempt will be back; being refused costs nothing.

Where the levels are kept is a ``Ledger``: in process memory (``MemoryLedger``, one worker), or in a file
the workers of one ``promopool serve`` share (``promopool.ledger``), so that the budget holds for the whole
server whichever worker answers. Several servers keep separate ledgers: N servers allow N times the budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from promopool.domain.errors import CodeUnusable, RateLimited

MAX_CALLERS = 100_000  # callers with attempts outstanding; beyond this the oldest are forgotten
PRUNE_EVERY = 1000  # updates between two sweeps of the callers whose budget is full again


@dataclass(frozen=True, slots=True)
class Level:
    attempts: float  # attempts left
    at: float  # when `attempts` was last brought up to date
    full_at: float  # when it will be back at the full budget (then it can be forgotten)


def _nothing() -> None:
    pass


# Given the callers' levels (those below a full budget), the levels to store (None: full again, forget).
Change = Callable[[Mapping[str, Level]], Mapping[str, Level | None]]


class Ledger(Protocol):
    def update(self, callers: Sequence[str], change: Change) -> None:
        """Read the callers' levels, and store what ``change`` makes of them, as one atomic step (for every
        process sharing the ledger). An exception from ``change`` stores nothing."""

    def prune(self, now: float) -> None:
        """Forget the levels full again by ``now``, and the oldest beyond MAX_CALLERS."""

    def __len__(self) -> int:
        """Callers held: those below a full budget, not yet forgotten."""


class MemoryLedger:
    """Levels in a dict of this process (atomic: the event loop runs one update at a time)."""

    def __init__(self) -> None:
        self._levels: dict[str, Level] = {}

    def update(self, callers: Sequence[str], change: Change) -> None:
        found = {caller: self._levels[caller] for caller in callers if caller in self._levels}
        for caller, level in change(found).items():
            self._levels.pop(caller, None)  # re-inserted last: the dict stays in order of last change
            if level is not None:
                self._levels[caller] = level
        while len(self._levels) > MAX_CALLERS:
            del self._levels[next(iter(self._levels))]

    def prune(self, now: float) -> None:
        for caller in [caller for caller, level in self._levels.items() if level.full_at <= now]:
            del self._levels[caller]

    def __len__(self) -> int:
        return len(self._levels)


class FailureBudget:
    def __init__(
        self,
        budget: int,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        what: str = "failed code attempts",
        ledger: Ledger | None = None,
        on_refused: Callable[[], None] = _nothing,
        on_spent: Callable[[], None] = _nothing,
    ) -> None:
        self.budget = budget
        self._on_refused = on_refused
        self._on_spent = on_spent
        self.what = what  # named in the RateLimited message
        self.rate = budget / window_seconds if budget else 0.0  # attempts regained per second
        self._clock = clock  # shared ledgers need a clock all processes share: time.monotonic is (Linux)
        self._ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self._updates = 0

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def left(self, caller: str) -> float:
        """Attempts ``caller`` has now."""
        seen: list[float] = []

        def read(levels: Mapping[str, Level]) -> Mapping[str, Level | None]:
            seen.append(self._refilled(levels.get(caller), self._clock()))
            return {}

        self._ledger.update([caller], read)
        return seen[0]

    def _refilled(self, level: Level | None, now: float) -> float:
        if level is None:
            return float(self.budget)
        # (max: another process may have stored a level a hair later than this process's `now`)
        return min(float(self.budget), level.attempts + max(0.0, now - level.at) * self.rate)

    def _level(self, attempts: float, now: float) -> Level | None:
        if attempts >= self.budget:
            return None
        return Level(attempts, now, now + (self.budget - attempts) / self.rate)

    def _update(self, callers: Sequence[str], change: Change) -> None:
        self._ledger.update(callers, change)
        self._updates += 1
        if self._updates % PRUNE_EVERY == 0:
            self._ledger.prune(self._clock())

    def take(self, callers: Sequence[str]) -> None:
        """Take one attempt from every caller's budget, or none and raise RateLimited."""
        if not self.enabled:
            return

        def spend(levels: Mapping[str, Level]) -> Mapping[str, Level | None]:
            now = self._clock()
            left = {caller: self._refilled(levels.get(caller), now) for caller in callers}
            short = min(left.values(), default=float(self.budget))
            if short < 1:
                raise RateLimited(
                    f"too many {self.what}; try again later",
                    retry_after=max(1, math.ceil((1 - short) / self.rate)),
                )
            return {caller: self._level(attempts - 1, now) for caller, attempts in left.items()}

        try:
            self._update(callers, spend)
        except RateLimited:
            self._on_refused()  # (here, not in `spend`: a ledger may run a change more than once)
            raise

    def give_back(self, callers: Sequence[str]) -> None:
        if not self.enabled:
            return

        def refund(levels: Mapping[str, Level]) -> Mapping[str, Level | None]:
            now = self._clock()
            return {
                caller: self._level(self._refilled(levels.get(caller), now) + 1, now) for caller in callers
            }

        self._update(callers, refund)

    @contextmanager
    def attempt(self, callers: Sequence[str]) -> Iterator[None]:
        """Run one attempt on the callers' budgets: spent only when it ends in ``code_unusable``."""
        self.take(callers)
        try:
            yield
        except CodeUnusable:
            self._on_spent()
            raise
        except BaseException:
            self.give_back(callers)
            raise
        self.give_back(callers)
