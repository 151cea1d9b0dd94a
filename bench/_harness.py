"""The one shape of a bench script: its ``main``, its databases, its server and its memory figures.

``main`` (a run per engine) or ``main_once`` (one run) parses the arguments (``--engine``, ``--pg-url`` and
the script's own), gives each run a ``Context`` (the arguments, the run's child ``Processes``, a work
directory, a fresh database on request), writes each result the one way (``_common.write_json``), prints the
script's table, and ends every process it started, also on Ctrl-C or a failed check (exit 1, or 130 when
interrupted). ``serve`` is the one way to run ``promopool serve``; ``RssSampler`` and ``measured_run`` the
one way to watch a process's memory.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from _common import BenchFailure, DuplicateCodes, current_rss_mb, drop_schema, log, pg_schema_url, write_json
from _procs import Processes, interrupt_on_signals
from _server import Server, cli

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

ENGINES = ("sqlite", "postgresql")
SAMPLE_INTERVAL_S = 0.05


@dataclass(slots=True)
class Context:
    """What one run gets: the arguments, the child processes, a work directory of its own."""

    bench: str
    args: argparse.Namespace
    processes: Processes
    workdir: Path

    @contextmanager
    def database(self, engine: str) -> Iterator[str]:
        """The URL of a fresh, empty database: a new SQLite file in the work directory, or a new schema
        (``--pg-url``, else $PROMOPOOL_TEST_POSTGRES_URL, else the tests' default), dropped afterwards."""
        if engine == "sqlite":
            yield f"sqlite:///{tempfile.mkdtemp(prefix='db-', dir=self.workdir)}/bench.db"
            return
        url, schema = pg_schema_url(self.args.pg_url, f"bench_{self.bench}")
        try:
            yield url
        finally:
            asyncio.run(drop_schema(url, schema))

    def cli(self, database_url: str, *args: str) -> str:
        """A CLI command run to completion through the run's processes; its stdout."""
        return cli(self.processes, database_url, *args)


@contextmanager
def serve(
    processes: Processes, database_url: str, *, api_key: str, workers: int = 1, name: str = "serve"
) -> Iterator[Server]:
    """``promopool serve`` on a free port, started through ``processes``, ready to answer; ended on exit."""
    server = Server(processes, database_url, workers=workers, api_key=api_key)
    try:
        server.start(name)
        yield server
    finally:
        server.stop()


class RssSampler:
    """A process's resident memory, sampled in a thread every ``interval`` seconds while the ``with`` block
    runs (a lower bound of its true peak: what happens between two samples is not seen)."""

    def __init__(self, pid: int, interval: float = SAMPLE_INTERVAL_S) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (seconds since the start, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            rss = current_rss_mb(self.pid)
            if rss is not None:
                self.samples.append((time.perf_counter() - started, rss))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> float:
        return max((rss for _, rss in self.samples), default=0.0)

    def per_second(self) -> list[float]:
        """The highest sample of each second."""
        timeline: dict[int, float] = {}
        for at, rss in self.samples:
            timeline[int(at)] = max(timeline.get(int(at), 0.0), rss)
        return [round(timeline[second], 1) for second in sorted(timeline)]


@dataclass(slots=True)
class MeasuredRun:
    seconds: float
    # From wait4(): the kernel's own high-water mark for exactly this process; the authoritative figure.
    peak_rss_mb: float
    # Sampled while it ran; a lower bound of the true peak, kept as a cross-check of the figure above.
    sampled_peak_rss_mb: float
    samples: int
    stdout: str


def measured_run(ctx: Context, name: str, command: Sequence[str]) -> MeasuredRun:
    """Run ``command`` to completion through the run's processes: its time, peak RSS and stdout."""
    child = ctx.processes.start(name, command)
    started = time.perf_counter()
    with RssSampler(child.pid) as sampler:
        try:
            # wait4 rather than Popen.wait: it reports this child's own ru_maxrss. getrusage(RUSAGE_CHILDREN)
            # is the maximum over every child waited for so far, so it cannot tell two runs apart.
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            ctx.processes.stop(child)
            raise
    seconds = time.perf_counter() - started
    child.process.returncode = os.waitstatus_to_exitcode(status)
    ctx.processes.stop(child)  # reaped already; whatever it left in its process group goes too
    if child.process.returncode != 0:
        raise BenchFailure(f"{name} exited {child.process.returncode}:\n{child.output()}")
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    peak_mb = usage.ru_maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)
    return MeasuredRun(seconds, peak_mb, sampler.peak, len(sampler.samples), child.stdout_text())


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return parse


def _parser(
    doc: str | None, arguments: Callable[[argparse.ArgumentParser], None] | None, codes: int | None
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--pg-url", default=None, help="PostgreSQL server (default: the tests' one)")
    if codes is not None:
        parser.add_argument("--codes", type=at_least(1), default=codes, help=f"default {codes:,}")
    if arguments is not None:
        arguments(parser)
    return parser


def main(
    bench: str,
    doc: str | None,
    run: Callable[[Context, str], R],
    *,
    codes: int | None = None,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    check: Callable[[argparse.Namespace], str | None] | None = None,
    table: Callable[[list[R]], None] | None = None,
) -> int:
    """A script run once per engine (``--engine sqlite|postgresql|both``): each result written to
    bench/results/<bench>-<engine>-<UTC timestamp>.json, then ``table`` of them all printed. ``codes``: the
    default of a ``--codes`` argument (at least 1), for the scripts sized by a number of codes."""

    def engine_argument(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
        if arguments is not None:
            arguments(parser)

    args = _checked(_parser(doc, engine_argument, codes), check)
    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    runs = [(engine, lambda ctx, engine=engine: run(ctx, engine)) for engine in engines]
    return _execute(bench, args, runs, table)


def main_once(
    bench: str,
    doc: str | None,
    run: Callable[[Context], R],
    *,
    codes: int | None = None,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    check: Callable[[argparse.Namespace], str | None] | None = None,
    table: Callable[[list[R]], None] | None = None,
) -> int:
    """A script run once (its result covers every engine it uses): bench/results/<bench>-<UTC>.json."""
    args = _checked(_parser(doc, arguments, codes), check)
    return _execute(bench, args, [(None, run)], table)


def _checked(
    parser: argparse.ArgumentParser, check: Callable[[argparse.Namespace], str | None] | None
) -> argparse.Namespace:
    args = parser.parse_args()
    problem = None if check is None else check(args)
    if problem is not None:
        parser.error(problem)
    return args


def _execute(
    bench: str,
    args: argparse.Namespace,
    runs: list[tuple[str | None, Callable[[Context], R]]],
    table: Callable[[list[R]], None] | None,
) -> int:
    interrupt_on_signals()
    workdir = Path(tempfile.mkdtemp(prefix="promopool-bench-"))
    processes = Processes(workdir)
    log(f"work files (servers' output, code files, databases) in {workdir}, removed at the end")
    results: list[R] = []
    engine: str | None = None
    try:
        for engine, run in runs:
            ctx = Context(bench, args, processes, workdir / (engine or bench))
            ctx.workdir.mkdir()
            started = time.perf_counter()
            result = run(ctx)
            # Each engine's files go when it is done: a large run must not hold two engines' data on disk.
            shutil.rmtree(ctx.workdir, ignore_errors=True)
            path = write_json(bench, engine, result)
            log(f"{engine or bench}: done in {time.perf_counter() - started:.1f}s; results in {path}")
            results.append(result)
    except DuplicateCodes as exc:
        banner = "!" * 100
        print(f"\n{banner}\n!!! DUPLICATE CODES: {exc}\n{banner}\n", file=sys.stderr, flush=True)
        return 1
    except BenchFailure as exc:
        print(f"\n!!! FAILED{f' ({engine})' if engine else ''}: {exc}\n", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every process the run started", file=sys.stderr, flush=True)
        return 130
    finally:
        processes.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if table is not None:
        table(results)
    return 0
