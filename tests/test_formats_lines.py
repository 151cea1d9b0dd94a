"""The streaming line splitter: however an upload is cut into chunks, the same lines as read one by one."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promopool.domain.errors import InvalidInput
from promopool.formats.lines import MAX_LINE_BYTES, LineSplitter, iter_lines


def reference_lines(data: bytes) -> list[str]:
    """The rules, line by line: split at LF, cut a line after MAX_LINE_BYTES + 1 bytes, drop one trailing
    CR, decode UTF-8; a line still longer than MAX_LINE_BYTES is too long to be a code whatever it holds, so
    bytes that are not UTF-8 (a cut may split a character) are dropped from it rather than refused."""
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    lines = []
    for number, piece in enumerate(pieces, start=1):
        raw = piece[: MAX_LINE_BYTES + 1].removesuffix(b"\r")
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            if len(raw) <= MAX_LINE_BYTES:
                raise InvalidInput(f"line {number} is not valid UTF-8", line=number) from None
            lines.append(raw.decode("utf-8", "ignore"))
    return lines


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({min(cut, len(data)) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


line = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=20).map(
        str.encode
    ),
    st.binary(max_size=12).filter(lambda b: b"\n" not in b),
    st.builds(
        lambda n, tail: b"x" * n + tail,
        st.integers(MAX_LINE_BYTES - 2, MAX_LINE_BYTES + 3),
        st.sampled_from([b"", b"\r", "é".encode(), b"\xff"]),
    ),
)
endings = st.sampled_from([b"\n", b"\r\n", b"\r\r\n"])


@given(
    st.lists(st.tuples(line, endings), max_size=30),
    st.booleans(),
    st.lists(st.integers(0, 4000), max_size=8),
)
def test_any_chunking_gives_the_lines_read_one_by_one(
    lines: list[tuple[bytes, bytes]], open_end: bool, cuts: list[int]
) -> None:
    data = b"".join(body + end for body, end in lines) + (b"tail\r" if open_end else b"")
    try:
        expected: list[str] | str = reference_lines(data)
    except InvalidInput as exc:
        expected = str(exc)
    try:
        got: list[str] | str = list(iter_lines(chunked(data, cuts)))
    except InvalidInput as exc:
        got = str(exc)
    assert got == expected


def test_a_long_line_costs_no_memory_across_chunks() -> None:
    splitter = LineSplitter()
    for _ in range(100):
        assert splitter.feed(b"y" * 100_000) == []
    (long_line,) = splitter.feed(b"\n")
    assert len(long_line) == MAX_LINE_BYTES + 1


def test_the_line_that_is_not_utf8_is_named_in_a_fast_block() -> None:
    splitter = LineSplitter()
    with pytest.raises(InvalidInput, match="line 3 is not valid UTF-8"):
        splitter.feed(b"A\nB\n\xff\nD\n")
