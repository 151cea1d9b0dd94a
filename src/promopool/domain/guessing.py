"""Guessing protection: a budget of failed code attempts per caller, kept in process memory.

A validate or redeem takes one attempt from each of its caller's budgets (one per API key, one per client
address) before it runs, so concurrent attempts cannot overdraw a budget; only the one refusal every
non-holder gets (``code_unusable``) keeps it spent, anything else gives it back. A budget refills evenly,
``budget`` attempts per ``window`` seconds. With a budget empty the attempt is refused with RateLimited,
saying when one attempt will be back; being refused costs nothing.

Each worker process keeps its own budgets (nothing is shared through the database): with N workers a caller
may fail up to N times the budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from promopool.domain.errors import CodeUnusable, RateLimited

MAX_CALLERS = 100_000  # callers with attempts outstanding; beyond this the oldest is forgotten


@dataclass(slots=True)
class _Level:
    attempts: float  # attempts left
    at: float  # when `attempts` was last brought up to date


class FailureBudget:
    def __init__(
        self,
        budget: int,
        window_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        what: str = "failed code attempts",
    ) -> None:
        self.budget = budget
        self.what = what  # named in the RateLimited message
        self.rate = budget / window_seconds if budget else 0.0  # attempts regained per second
        self._clock = clock
        self._levels: dict[str, _Level] = {}  # only callers below a full budget

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def left(self, caller: str) -> float:
        """Attempts ``caller`` has now."""
        return self._refilled(caller, self._clock())

    def _refilled(self, caller: str, now: float) -> float:
        level = self._levels.get(caller)
        if level is None:
            return float(self.budget)
        return min(float(self.budget), level.attempts + (now - level.at) * self.rate)

    def _set(self, caller: str, attempts: float, now: float) -> None:
        if attempts >= self.budget:
            self._levels.pop(caller, None)
            return
        if caller not in self._levels and len(self._levels) >= MAX_CALLERS:
            del self._levels[next(iter(self._levels))]
        self._levels[caller] = _Level(attempts, now)

    def take(self, callers: Sequence[str]) -> None:
        """Take one attempt from every caller's budget, or none and raise RateLimited."""
        if not self.enabled:
            return
        now = self._clock()
        levels = {caller: self._refilled(caller, now) for caller in callers}
        short = min(levels.values(), default=float(self.budget))
        if short < 1:
            raise RateLimited(
                f"too many {self.what}; try again later",
                retry_after=max(1, math.ceil((1 - short) / self.rate)),
            )
        for caller, attempts in levels.items():
            self._set(caller, attempts - 1, now)

    def give_back(self, callers: Sequence[str]) -> None:
        if not self.enabled:
            return
        now = self._clock()
        for caller in callers:
            self._set(caller, self._refilled(caller, now) + 1, now)

    @contextmanager
    def attempt(self, callers: Sequence[str]) -> Iterator[None]:
        """Run one attempt on the callers' budgets: spent only when it ends in ``code_unusable``."""
        self.take(callers)
        try:
            yield
        except CodeUnusable:
            raise
        except BaseException:
            self.give_back(callers)
            raise
        self.give_back(callers)
