"""Streaming one-code-per-line uploads (text or CSV, the CSV possibly with states) in constant memory."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from promopool.domain.codes import MAX_CODE_LENGTH, MAX_DESCRIPTION
from promopool.domain.errors import InvalidInput
from promopool.domain.export import EXPORT_COLUMNS, StateFields

# A line longer than this is certainly not a code: it is cut here (and then reported as too long) instead
# of being buffered whole, so a 10 MB line costs no more memory than a short one.
MAX_LINE_BYTES = 4 * (MAX_CODE_LENGTH + MAX_DESCRIPTION) + 16  # a CSV row may carry a description


class LineSplitter:
    """Feed bytes, get complete lines; over-long lines are truncated to MAX_LINE_BYTES + 1 bytes."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._overflow = False
        self.line_number = 0

    def feed(self, chunk: bytes) -> list[str]:
        """The lines ``chunk`` completes (the first one may have begun in an earlier chunk)."""
        last = chunk.rfind(b"\n")
        if last < 0:
            self._append(chunk)
            return []
        first = chunk.find(b"\n")
        self._append(chunk[:first])
        lines = [self._take()]
        if first < last:
            lines += self._whole_lines(chunk[first + 1 : last + 1])
        self._append(chunk[last + 1 :])
        return lines

    def _whole_lines(self, block: bytes) -> list[str]:
        """The lines of ``block``: complete lines, each ending with a newline, none begun before it."""
        parts = block[:-1].split(b"\n")
        if max(map(len, parts)) <= MAX_LINE_BYTES:
            # The common case in one decode and one split for the whole block (a million short lines: 0.11 s,
            # against 0.62 s line by line); cutting a long line and naming the line that is not UTF-8 are
            # left to the line-by-line way. Replacing CRLF drops one CR at each line's end, as _take does.
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                self.line_number += len(parts)
                return text.replace("\r\n", "\n")[:-1].split("\n")
        lines = []
        for part in parts:
            self._append(part)
            lines.append(self._take())
        return lines

    def finish(self) -> Iterator[str]:
        if self._buffer or self._overflow:
            yield self._take()

    def _append(self, part: bytes) -> None:
        room = MAX_LINE_BYTES + 1 - len(self._buffer)
        if len(part) > room:
            self._overflow = True
            part = part[: max(room, 0)]
        self._buffer += part

    def _take(self) -> str:
        self.line_number += 1
        raw = bytes(self._buffer).removesuffix(b"\r")
        self._buffer.clear()
        self._overflow = False
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            if len(raw) > MAX_LINE_BYTES:  # the cut may have split a character: it is too long anyway
                return raw.decode("utf-8", "ignore")
            raise InvalidInput(f"line {self.line_number} is not valid UTF-8", line=self.line_number) from None


async def aiter_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    splitter = LineSplitter()
    async for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line
    for line in splitter.finish():
        yield line


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    splitter = LineSplitter()
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.finish()


class CsvCodes:
    """Reads a CSV upload a line at a time: each row's first column is a code (further columns are ignored)
    and a header row, a first line whose first column is ``code``, is skipped. When that header names a
    ``state`` column, the file carries states (as an export writes it): its rows are read as StateFields,
    with the columns of EXPORT_COLUMNS the header names, and blank lines are passed over. A ``description``
    column is read the same way, with or without states (without: each row is an available code)."""

    def __init__(self) -> None:
        self._line = 0
        self._columns: dict[str, int] | None = None  # where each state column is, for a file with states

    def row(self, line: str) -> str | StateFields | None:
        """The code or the row of ``line`` (the next line of the file); None for what is no entry (a file
        with states: its header and blank lines)."""
        self._line += 1
        if self._line == 1:  # a byte order mark, as spreadsheet programs save "CSV UTF-8", is no part of it
            line = line.removeprefix("\ufeff")
        fields = next(csv.reader([line]), [])
        if self._line == 1 and fields and fields[0].strip().lower() == "code":
            self._columns = _state_columns([field.strip().lower() for field in fields])
            # A plain list's header is a blank entry (as blank lines are, which CSV uploads pass over), so
            # that the positions of its codes stay their line numbers.
            return None if self._columns is not None else ""
        if self._columns is None:
            return fields[0] if fields else ""
        if not any(field.strip() for field in fields):
            return None
        found = {name: fields[i] for name, i in self._columns.items() if i < len(fields)}
        if "state" not in self._columns:  # only descriptions carried: the codes come in available
            found["state"] = "available"
        return StateFields(line=self._line, code=fields[0], **found)


def _state_columns(header: list[str]) -> dict[str, int] | None:
    """Where a header puts the state columns; None for a plain code list. A header that names what only a
    state gives meaning to (a holder, a time, uses) but no state is refused: importing its codes as
    available would silently make them claimable."""
    if "state" not in header:
        carried = [name for name in EXPORT_COLUMNS[2:] if name in header]
        if carried:
            raise InvalidInput(
                f"line 1: the CSV header names {', '.join(carried)} but no state column"
                " (available, issued or redeemed); nothing was imported",
                line=1,
            )
        return {"description": header.index("description")} if "description" in header else None
    return {name: header.index(name) for name in (*EXPORT_COLUMNS[1:], "description") if name in header}


async def aiter_csv_codes(lines: AsyncIterable[str]) -> AsyncIterator[str | StateFields]:
    reader = CsvCodes()
    async for line in lines:
        item = reader.row(line)
        if item is not None:
            yield item
