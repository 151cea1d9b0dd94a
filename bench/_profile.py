"""Where a server worker's time goes under claims (``--profile``): py-spy's raw collapsed stacks, summed
into the few layers a tuning decision is about.

py-spy records with ``--native --idle``: C frames (msgspec, asyncpg's protocol, httptools, uvloop/libuv,
sqlite, the interpreter's GC) appear in the stacks, and every thread is sampled whether it runs or waits,
so a thread's samples are its wall-clock time. (py-spy's own idle detection is unreliable in containers:
it counted threads blocked on a lock as running; waits are recognised from the stacks here instead.)

A sample that waits is put in a wait class (event loop polling for I/O, a thread blocked on a queue or
lock, the GIL, fsync). Any other sample goes to the first layer found walking from the innermost frame
outwards; asyncio, anyio and libc frames match no layer, so their cost lands on the code that used them
(e.g. Litestar's dependency resolution starting an anyio task group per request).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# Waits, by the innermost frames of a sample (checked before the layers).
IDLE_LOOP = "wait: event loop polling for I/O (idle)"
IDLE_QUEUE = "wait: thread blocked on a queue, lock or pipe (idle)"
# A thread parked in one of these syscalls, innermost, waits (e.g. a worker answering its
# supervisor over a pipe); a short read or write on the event loop's sockets goes through libuv
# (uv__read, uv__write frames) and is counted as the loop's work instead.
BLOCKING_SYSCALLS = ("read", "recv", "poll", "select", "accept", "nanosleep", "clock_nanosleep")
GIL = "wait: for the GIL"
FSYNC = "wait: fsync / fdatasync (durable commit)"
GC = "busy: Python garbage collector"
OTHER = "busy: interpreter, asyncio bookkeeping, other"

# (layer, substrings of a frame); the first rule matching a frame, innermost first, decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("busy: asyncpg (driver, protocol)", ("asyncpg",)),
    ("busy: msgspec encode/decode", ("msgspec",)),
    ("busy: promopool claim coalescer", ("promopool/storage/coalesce.py",)),
    ("busy: SQLite (sqlite3 module, library)", ("libsqlite3", "_sqlite/", "(cursor.c", "(connection.c")),
    ("busy: promopool storage (SQL, rows, writer)", ("promopool/storage/",)),
    ("busy: promopool auth (API key)", ("promopool/api/auth.py", "promopool/api/deps.py", "domain/keys.py")),
    (
        "busy: promopool handler, service, schemas",
        ("promopool/api/", "promopool/service/", "promopool/domain/"),
    ),
    (
        "busy: Litestar DI + parameter parsing",
        ("litestar/_kwargs/", "litestar/_signature/", "litestar/di.py"),
    ),
    ("busy: Litestar response building", ("litestar/response/", "litestar/serialization/")),
    ("busy: Litestar routing, middleware, other", ("litestar/",)),
    ("busy: granian HTTP server (Rust) and its ASGI glue", ("granian", "_granian")),
    (
        "busy: uvloop / libuv (loop, socket I/O)",
        ("(loop.c", "uvloop", "(stream.c", "(core.c", "(linux.c", "uv_"),
    ),
]


@dataclass(slots=True)
class ThreadProfile:
    name: str
    samples: int
    classes: dict[str, int] = field(default_factory=dict)
    top_frames: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class ProfileSummary:
    path: str
    samples: int
    threads: list[ThreadProfile]


def _named(frames: list[str]) -> list[str]:
    # Unsymbolized libc frames ("0x7f… (libc.so.6)") say nothing; the named ones around them do.
    return [frame for frame in frames if not frame.startswith("0x")]


def classify(frames: list[str]) -> str:
    named = _named(frames)
    inner = " ".join(named[-4:])
    if "epoll_wait" in inner or "epoll_pwait" in inner:
        return IDLE_LOOP
    if "PyThread_acquire_lock_timed" in inner:
        return IDLE_QUEUE
    if named and named[-1].split(" ")[0] in BLOCKING_SYSCALLS and not any("uv" in f for f in named[-3:]):
        return IDLE_QUEUE
    if named and named[-1].startswith("pthread_cond_timedwait"):
        # Not under a lock acquire: the GIL being taken back after a C call released it (take_gil is
        # inlined, so it has no frame of its own).
        return GIL
    if "fdatasync" in inner or "fsync" in inner:
        return FSYNC
    if any(frame.startswith("gc_collect") for frame in named):
        return GC
    for frame in reversed(named):
        for layer, fragments in LAYERS:
            if any(fragment in frame for fragment in fragments):
                return layer
    return OTHER


def summarize(path: Path) -> ProfileSummary:
    per_thread: dict[str, Counter[str]] = {}
    leaves: dict[str, Counter[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        # "thread (12345): MainThread" -> MainThread; the thread id changes from run to run.
        thread = frames[0].split(": ", 1)[-1]
        per_thread.setdefault(thread, Counter())[classify(frames[1:])] += int(count)
        named = _named(frames[1:])
        leaves.setdefault(thread, Counter())[named[-1] if named else "?"] += int(count)
    threads = [
        ThreadProfile(
            name=name,
            samples=sum(classes.values()),
            classes=dict(classes.most_common()),
            top_frames=leaves[name].most_common(8),
        )
        for name, classes in sorted(per_thread.items(), key=lambda item: -sum(item[1].values()))
    ]
    return ProfileSummary(str(path), sum(t.samples for t in threads), threads)


def format_summary(summary: ProfileSummary, *, min_share: float = 0.5) -> str:
    """Per thread, the share of its wall-clock samples in each class (those under ``min_share`` % left out);
    threads that only ever waited are summed up in one line."""
    lines = [f"profile {summary.path} (wall-clock samples per thread):"]
    idle = []
    for thread in summary.threads:
        busy = sum(n for name, n in thread.classes.items() if not name.startswith("wait:"))
        if busy == 0:
            idle.append(thread.name)
            continue
        lines.append(
            f"  thread {thread.name}: {thread.samples} samples, {100 * busy / thread.samples:.0f}% busy"
        )
        for name, count in thread.classes.items():
            share = 100 * count / thread.samples
            if share >= min_share:
                lines.append(f"    {share:5.1f}%  {name}")
    if idle:
        lines.append(f"  always waiting: {', '.join(idle)}")
    return "\n".join(lines)
