"""The check character catches every single substitution and every adjacent transposition, at every position
of every code, for every charset (a property test over random codes, exhaustive within each code)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promopool.domain.checkchar import CheckScheme, _group, scheme_for
from promopool.domain.generation import CHARSETS

ALPHABETS = [*CHARSETS.values(), *(chars.lower() for chars in CHARSETS.values())]


def test_every_group_mapping_is_antisymmetric() -> None:
    # The lemma the scheme rests on, checked exhaustively for every size it accepts up to 129:
    # x·f(y) = y·f(x) only when x = y.
    for n in (n for n in range(3, 130) if n % 8):
        op, f = _group(n)
        assert sorted(f(x) for x in range(n)) == list(range(n))  # f is a permutation
        for x in range(n):
            assert sorted(op(x, y) for y in range(n)) == list(range(n))  # a row of a group table
            for y in range(n):
                if x != y:
                    assert op(x, f(y)) != op(y, f(x)), (n, x, y)


@pytest.mark.parametrize("n", [1, 2, 8, 16, 64])
def test_sizes_without_a_scheme_are_refused(n: int) -> None:
    with pytest.raises(ValueError, match="no check character scheme"):
        CheckScheme("".join(chr(65 + i) for i in range(n)))


@st.composite
def checked_codes(draw: st.DrawFn) -> tuple[CheckScheme, str]:
    alphabet = draw(st.sampled_from(ALPHABETS))
    body = draw(st.text(alphabet=alphabet, min_size=1, max_size=40))
    scheme = scheme_for(alphabet)
    return scheme, body + scheme.check_character(body)


@settings(max_examples=300, deadline=None)
@given(checked_codes())
def test_every_substitution_and_adjacent_swap_is_caught(case: tuple[CheckScheme, str]) -> None:
    scheme, code = case
    assert scheme.is_valid(code)
    for i, original in enumerate(code):  # every position, the check character's included
        for other in scheme.alphabet:  # every other character
            if other != original:
                assert not scheme.is_valid(code[:i] + other + code[i + 1 :]), (code, i, other)
    for i in range(len(code) - 1):  # every adjacent pair
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert not scheme.is_valid(swapped), (code, i)


def test_bulk_check_characters_match_one_by_one() -> None:
    scheme = scheme_for(CHARSETS["unambiguous"])
    bodies = ["23456789", "ZZZZZZZZ", "ABCDEFGH"]
    assert scheme.check_characters("".join(bodies), 8) == "".join(scheme.check_character(b) for b in bodies)


def test_characters_outside_the_alphabet_are_invalid() -> None:
    scheme = scheme_for(CHARSETS["digits"])
    assert not scheme.is_valid("12A4")
    assert not scheme.is_valid("")
