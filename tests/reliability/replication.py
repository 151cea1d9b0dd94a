"""A PostgreSQL primary and a streaming standby on one machine, for the failover tests: built from the
binaries the tests already use, in a temporary directory, on two free ports.

Which binaries: ``PROMOPOOL_TEST_POSTGRES_BIN`` = ``system`` (the machine's ``/usr/lib/postgresql/*/bin``,
the newest), ``pgserver`` (the wheel's), or a directory holding ``initdb`` and ``pg_ctl``; unset, the
machine's when there are any, else pgserver's. PostgreSQL refuses to run as root: as root, the servers
run as the ``postgres`` user when there is one, else as pgserver's ``pgserver`` user.

The standby is the primary's named synchronous standby (``synchronous_standby_names``, ``synchronous_commit
= on``: a commit is acknowledged once the standby has it on disk) or, for comparison, an asynchronous one.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import asyncpg

from tests.conftest import free_port
from tests.reliability.servers import children_of, running

BIN_ENV = "PROMOPOOL_TEST_POSTGRES_BIN"
STANDBY_NAME = "standby1"
SUPERUSER = "postgres"
DATABASE = "postgres"
READY_TIMEOUT = 90.0  # generous: other test suites may be running on this two-core machine


def postgres_bin() -> Path:
    """The directory of the PostgreSQL binaries to build the servers from (the module's docstring)."""
    chosen = os.environ.get(BIN_ENV, "")
    if chosen == "pgserver":
        return _pgserver_bin()
    if chosen not in ("", "system"):
        return Path(chosen)
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if system:
        return system[-1]
    if chosen == "system":
        raise AssertionError(f"{BIN_ENV}=system, and there is no /usr/lib/postgresql/*/bin")
    return _pgserver_bin()


def _pgserver_bin() -> Path:
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _system_user() -> pwd.struct_passwd | None:
    """The user the servers run as: None when this process is not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        from pgserver.utils import ensure_user_exists

        entry = ensure_user_exists("pgserver")
        assert entry is not None
        return entry


class Node:
    """One PostgreSQL server: its data directory, port and log."""

    def __init__(self, pair: ReplicatedPostgres, name: str) -> None:
        self.pair = pair
        self.name = name
        self.data = pair.root / name
        self.port = free_port()
        self.log = pair.root / f"{name}.log"
        self.children: set[int] = set()  # its processes seen so far (to kill what a SIGKILL leaves behind)

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.pair.root}"
        self.pair.run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "90", "-o", options, "start"
        )

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def note_children(self) -> None:
        self.children |= set(children_of(self.postmaster()))

    def kill(self) -> None:
        """SIGKILL to the postmaster: no shutdown, no last WAL sent."""
        self.note_children()
        os.kill(self.postmaster(), signal.SIGKILL)

    def promote(self) -> None:
        self.pair.run("pg_ctl", "-D", str(self.data), "-w", "-t", "90", "promote")

    def stop(self) -> None:
        """Whatever is left of it, gone: an immediate stop, then SIGKILL to any process it left."""
        if (self.data / "postmaster.pid").exists() and running(self.postmaster()):
            self.note_children()
            subprocess.run(
                [str(self.pair.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                user=self.pair.user.pw_uid if self.pair.user else None,
                capture_output=True,
                check=False,
            )
        for pid in self.children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)


class ReplicatedPostgres:
    """A primary and its standby; ``url`` names both, as a client of a failover pair would."""

    def __init__(self, *, synchronous: bool) -> None:
        self.synchronous = synchronous
        self.bin = postgres_bin()
        self.user = _system_user()
        self.root = Path(tempfile.mkdtemp(prefix="pp-failover-"))
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.primary = Node(self, "primary")
        self.standby = Node(self, "standby")
        self._stalled: int | None = None
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        self.url = f"postgresql://{SUPERUSER}@{hosts}/{DATABASE}?target_session_attrs=read-write"

    def run(self, program: str, *args: str) -> str:
        done = subprocess.run(
            [str(self.bin / program), *args],
            user=self.user.pw_uid if self.user else None,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{program} {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def version(self) -> str:
        return self.run("postgres", "--version").strip()

    async def build(self) -> None:
        """initdb the primary, start it, clone the standby from it (pg_basebackup -R), start that; return
        once the primary streams to the standby in the mode asked for."""
        self.run("initdb", "-D", str(self.primary.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8")
        names = f'"{STANDBY_NAME}"' if self.synchronous else ""
        _append(
            self.primary.data / "postgresql.conf",
            "listen_addresses = '127.0.0.1'",
            "wal_level = replica",
            "max_wal_senders = 4",
            "synchronous_commit = on",
            f"synchronous_standby_names = '{names}'",
        )
        self.primary.start()
        self.run(
            "pg_basebackup",
            "-d",
            f"host=127.0.0.1 port={self.primary.port} user={SUPERUSER}",
            "-D",
            str(self.standby.data),
            "-R",  # standby.signal and primary_conninfo
            "-X",
            "stream",
            "-c",
            "fast",
        )
        _append(
            self.standby.data / "postgresql.auto.conf",
            # Its name, which the primary's synchronous_standby_names waits for.
            f"primary_conninfo = 'host=127.0.0.1 port={self.primary.port} user={SUPERUSER}"
            f" application_name={STANDBY_NAME}'",
            # Once promoted it has no standby of its own to wait for (Patroni's synchronous_mode and
            # pg_auto_failover do the same: the sole survivor runs alone until a new standby joins).
            "synchronous_standby_names = ''",
        )
        self.standby.start()
        await self._wait_for_streaming("sync" if self.synchronous else "async")

    async def _wait_for_streaming(self, mode: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        conn = await asyncpg.connect(self.primary.dsn)
        try:
            while True:
                state = await conn.fetchval(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1", STANDBY_NAME
                )
                if state == mode:
                    return
                assert time.monotonic() < deadline, f"the standby is {state!r}, not {mode!r}"
                await asyncio.sleep(0.1)
        finally:
            await conn.close()

    async def stall_replication(self) -> None:
        """SIGSTOP to the primary's WAL sender: from now on nothing it writes reaches the standby (a
        synchronous primary then acknowledges no commit; an asynchronous one goes on without the standby)."""
        conn = await asyncpg.connect(self.primary.dsn)
        try:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_replication WHERE application_name = $1", STANDBY_NAME
            )
        finally:
            await conn.close()
        os.kill(pid, signal.SIGSTOP)
        self._stalled = pid

    def kill_primary(self) -> None:
        """The primary's machine dies: SIGKILL to its postmaster, and to the WAL sender if it was stopped
        (a stopped process would outlive its postmaster holding the standby's connection)."""
        self.primary.kill()
        if self._stalled is not None:
            os.kill(self._stalled, signal.SIGKILL)

    def __enter__(self) -> ReplicatedPostgres:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.primary.stop()
        self.standby.stop()
        if exc is None:
            shutil.rmtree(self.root, ignore_errors=True)
        else:  # the servers' logs stay, for whoever reads the failure
            print(f"PostgreSQL logs kept in {self.root}")


def _append(path: Path, *lines: str) -> None:
    with path.open("a") as out:
        out.write("\n" + "\n".join(lines) + "\n")


def binaries_named() -> str:
    """Which binaries ``postgres_bin`` chose, as the figures printed name them."""
    chosen = postgres_bin()
    return "pgserver" if chosen == _pgserver_bin() else str(chosen)
