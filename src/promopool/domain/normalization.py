"""Code normalization: how a typed value finds a stored code, per pool.

A code is stored as it was imported (its display form) beside its *lookup key*: the value with ASCII letters
upper-cased and dashes and spaces removed. The databases compute the key themselves (a generated column), so
every insert path has it. The lookup key is the coarsest form any pool setting can ask for, so one index
serves every setting: a lookup reads the few codes sharing the typed value's lookup key and keeps those equal
to it under the pool's *current* settings. Changing the settings never rewrites a code and never strands one.

Only ASCII letters fold: both engines agree on them exactly, whatever the database's locale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from string import ascii_lowercase, ascii_uppercase
from typing import TypeVar

from promopool.domain.errors import NormalizationCollision

SEPARATORS = "- "

_FOLD_ALL = str.maketrans(ascii_lowercase, ascii_uppercase, SEPARATORS)
_FOLD_CASE = str.maketrans(ascii_lowercase, ascii_uppercase)
_DROP_SEPARATORS = str.maketrans("", "", SEPARATORS)

T = TypeVar("T")


def lookup_key(value: str) -> str:
    """The key every lookup starts from (the ``lookup_key`` column computes the same)."""
    return value.translate(_FOLD_ALL)


# The largest code point, a noncharacter no real code holds: it closes every prefix's range.
_LAST = "\U0010ffff"


def prefix_range(prefix: str) -> tuple[str, str]:
    """The lookup keys ``[low, high)`` of every value starting with ``prefix`` under the coarsest fold:
    a range in code point order, which is UTF-8's byte order (how the index compares keys)."""
    low = lookup_key(prefix)
    return low, low + _LAST


@dataclass(frozen=True, slots=True)
class Normalization:
    """A pool's matching rules; with both off, a code matches only its exact value."""

    case_insensitive: bool = False
    ignore_separators: bool = False

    def key(self, value: str) -> str:
        """``value`` as this pool compares it: two values with the same key are the same code."""
        if self.case_insensitive and self.ignore_separators:
            return value.translate(_FOLD_ALL)
        if self.case_insensitive:
            return value.translate(_FOLD_CASE)
        if self.ignore_separators:
            return value.translate(_DROP_SEPARATORS)
        return value

    @property
    def folds(self) -> bool:
        return self.case_insensitive or self.ignore_separators

    def folds_more_than(self, other: Normalization) -> bool:
        """True when switching from ``other`` to this can make two stored codes one."""
        return (self.case_insensitive and not other.case_insensitive) or (
            self.ignore_separators and not other.ignore_separators
        )

    def matches(self, stored: str, typed: str) -> bool:
        return self.key(stored) == self.key(typed)


def collisions(values: Iterable[str], normalization: Normalization) -> list[list[str]]:
    """Groups of distinct values that ``normalization`` would make one code, each sorted."""
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for value in values:
        groups[normalization.key(value)].append(value)
    return sorted(sorted(group) for group in groups.values() if len(group) > 1)


def new_values(
    values: Sequence[str], existing: Iterable[str], normalization: Normalization
) -> list[tuple[int, str]]:
    """The (position, value) pairs of ``values`` that are new to a pool holding ``existing`` codes: a value
    equal under ``normalization`` to a stored code, or to an earlier value of the batch, is a duplicate."""
    seen = {normalization.key(value) for value in existing}
    kept = []
    for position, value in enumerate(values):
        key = normalization.key(value)
        if key not in seen:
            seen.add(key)
            kept.append((position, value))
    return kept


def best_match(typed: str, candidates: Iterable[tuple[T, str, Normalization, int]]) -> T | None:
    """The candidate a typed value means, from (item, stored value, pool normalization, pool id) tuples that
    share its lookup key: the exact value first, then the match in the oldest pool. A pool never holds two
    codes equal under its own settings, so the choice only matters across pools."""
    matching = [
        (stored != typed, pool_id, item)
        for item, stored, normalization, pool_id in candidates
        if normalization.matches(stored, typed)
    ]
    if not matching:
        return None
    return min(matching, key=lambda entry: entry[:2])[2]


MAX_REPORTED_COLLISIONS = 20


def collision_error(groups: list[list[str]], normalization: Normalization) -> NormalizationCollision:
    """The refusal of a setting change that would make each group of codes one."""
    settings = [
        name
        for name, on in (
            ("case_insensitive", normalization.case_insensitive),
            ("ignore_separators", normalization.ignore_separators),
        )
        if on
    ]
    return NormalizationCollision(
        f"with {' and '.join(settings)} on, {len(groups)} group(s) of codes in this pool would be one code;"
        " delete all but one code of each group first",
        count=len(groups),
        collisions=groups[:MAX_REPORTED_COLLISIONS],
    )
