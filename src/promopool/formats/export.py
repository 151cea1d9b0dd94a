"""Writing exports: CSV with a header row, or JSON lines; one chunk of bytes per batch of codes."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator

import msgspec

from promopool.domain.export import EXPORT_COLUMNS, ExportFormat, ExportRow

MEDIA_TYPES = {ExportFormat.CSV: "text/csv; charset=utf-8", ExportFormat.JSONL: "application/x-ndjson"}

_json = msgspec.json.Encoder()


def _csv(rows: list[ExportRow], *, header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(EXPORT_COLUMNS)
    # to_builtins renders timestamps exactly as the JSON lines do (RFC 3339, UTC).
    for row in msgspec.to_builtins(rows):
        writer.writerow(["" if row[column] is None else row[column] for column in EXPORT_COLUMNS])
    return out.getvalue().encode("utf-8")


async def encode_export(batches: AsyncIterable[list[ExportRow]], fmt: ExportFormat) -> AsyncIterator[bytes]:
    """The export as bytes: CSV (``code,state,issued_at,profile,usage_count`` header; read back by the CSV
    import, which takes the first column) or one JSON object per line."""
    first = True
    async for rows in batches:
        yield _csv(rows, header=first) if fmt is ExportFormat.CSV else _json.encode_lines(rows)
        first = False
    if first and fmt is ExportFormat.CSV:  # an empty export still names its columns
        yield _csv([], header=True)
