"""One writer thread per SQLite database, with group commit.

Every write is a function of a connection, queued here. The thread takes everything queued (up to a limit),
runs it in one ``BEGIN IMMEDIATE`` transaction, each function under its own savepoint so one failing write
rolls back alone, and commits once: many writers, one fsync. Callers are woken only after the commit, so a
result they see is durable. ``BEGIN IMMEDIATE`` also takes SQLite's file lock, which makes a write atomic
against other processes using the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from promopool import metrics
from promopool.domain.errors import PromopoolError, StorageBusy, StorageUnavailable

T = TypeVar("T")
Connect = Callable[[], sqlite3.Connection]

MAX_OPS_PER_COMMIT = 512


@dataclass(slots=True)
class _Op:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller was cancelled; the write itself has been committed regardless
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class Writer:
    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="promopool-sqlite-writer", daemon=True)
        self._started = False

    def start(self) -> None:
        self._thread.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join()
            self._started = False

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        metrics.SQLITE_WRITES_PENDING.inc()  # down again when its commit is over (_commit)
        self._queue.put(_Op(fn, future, loop))
        return future

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                ops = [first]
                stopping = False
                while len(ops) < MAX_OPS_PER_COMMIT:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    ops.append(nxt)
                self._commit(conn, ops)
                if stopping:
                    return
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, ops: list[_Op]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in ops:
                conn.execute("SAVEPOINT op")
                try:
                    value = op.fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((False, _unavailable(exc) if isinstance(exc, sqlite3.Error) else exc))
                else:
                    conn.execute("RELEASE op")
                    outcomes.append((True, value))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # BEGIN (locked too long), a broken savepoint or COMMIT: nothing stuck
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(False, _unavailable(exc))] * len(ops)
        metrics.SQLITE_WRITES_PENDING.dec(len(ops))
        for op, (ok, value) in zip(ops, outcomes, strict=True):
            # RuntimeError: the caller's event loop is gone (shutdown); the write stands regardless.
            with contextlib.suppress(RuntimeError):
                op.loop.call_soon_threadsafe(_settle, op.future, ok, value)


def _unavailable(exc: Exception) -> PromopoolError:
    error: StorageUnavailable
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:  # the busy timeout ran out
        error = StorageBusy("the database is busy: another process held its write lock too long; retry")
    else:
        error = StorageUnavailable(f"database write failed: {exc}")
    error.__cause__ = exc
    return error
