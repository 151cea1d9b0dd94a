"""A SQLite database copied page by page into a new file with SQLite's online backup API, durably."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from promopool.domain.errors import Conflict, StorageUnavailable

# Pages per backup step (64 MiB at the default 4 KiB page): a progress report every step, few enough steps
# that their overhead does not count.
STEP_PAGES = 16_384

PagesCopied = Callable[[int, int], None]  # pages copied so far, pages in all


def backup_into(source: sqlite3.Connection, path: str, on_pages: PagesCopied | None) -> None:
    """Copy ``source``, as its open transaction sees it, into a new file at ``path`` (refused if it exists),
    then fsync the file and its directory: on disk before the caller is told. A failed copy leaves no file."""
    try:
        # O_EXCL: never overwrite, even a file that appeared since the caller looked; 0600: a backup holds
        # every account's key hashes and codes.
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        raise Conflict(f"{path} exists; a backup never overwrites a file") from None
    except OSError as exc:
        raise StorageUnavailable(f"cannot create the backup file {path}: {exc}") from exc
    try:
        target = sqlite3.connect(path, isolation_level=None)
        try:
            target.execute("PRAGMA synchronous = FULL")
            source.backup(
                target,
                pages=STEP_PAGES,
                progress=None
                if on_pages is None
                else lambda _status, remaining, total: on_pages(total - remaining, total),
            )
        finally:
            target.close()
        _fsync(Path(path))
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        if isinstance(exc, sqlite3.Error):
            raise StorageUnavailable(f"the backup failed: {exc}") from exc
        raise


def _fsync(path: Path) -> None:
    """The file's bytes, and its name in the directory, on disk."""
    for target, flags in ((path, os.O_RDONLY), (path.parent, os.O_RDONLY | os.O_DIRECTORY)):
        fd = os.open(target, flags)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
