"""Child processes of a bench run: started in their own process group, all ended when the run ends.

Every server, load generator and profiler the harness starts goes through ``Processes``; its ``close`` (run
from a ``finally``, so also on Ctrl-C, SIGTERM or a failed check) ends each process group — SIGTERM, then
SIGKILL after a grace period — and waits until no member of the group is left. A server with its
workers is one group: the workers go with their master.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from _common import BenchFailure, log

GRACE_S = 10.0
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    # The kernel picks a port that is free now; the server binds it a moment later (a tiny race, harmless
    # on a box where nothing else grabs random ports).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_tool(processes: Processes, executable: str, package: str) -> str:
    """The path of ``executable``, installed from the Debian ``package`` with apt-get when missing (the
    harness needs no manual setup)."""
    found = shutil.which(executable)
    if found is not None:
        return found
    if shutil.which("apt-get") is None:
        raise BenchFailure(f"{executable} is missing and there is no apt-get to install {package} with")
    log(f"{executable} is missing: installing {package} with apt-get")
    install = ["apt-get", "install", "-y", "-q", package]
    try:
        processes.run(f"apt-install-{package}", install, timeout=300)
    except BenchFailure:
        # A machine whose package lists were never fetched cannot find the package yet.
        processes.run("apt-update", ["apt-get", "update", "-q"], timeout=300)
        processes.run(f"apt-install-{package}", install, timeout=300)
    found = shutil.which(executable)
    if found is None:
        raise BenchFailure(f"apt-get installed {package}, but {executable} is not on PATH")
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member exists but is not ours to signal; still alive
        return True
    return True


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM becomes the same exception as Ctrl-C, so the `finally` that ends the children runs either way.
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so the run's cleanup runs on either."""
    # Explicitly, because a shell starts a background job with SIGINT ignored, and Python then leaves it so:
    # `kill -INT` (a script's or a CI's timeout) would do nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _environment(env: Mapping[str, str], drop: tuple[str, ...]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not (drop and k.startswith(drop))}
    return {**inherited, **env}


@dataclass(slots=True)
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stdout_text(self) -> str:
        return self.stdout.read_text(encoding="utf-8", errors="replace")

    def output(self) -> str:
        parts = [path.read_text(encoding="utf-8", errors="replace") for path in (self.stdout, self.stderr)]
        return "".join(parts)


class Processes:
    """The run's child processes; ``close`` ends every group still alive."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._children: list[Child] = []
        self._count = 0

    def start(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        drop_env: tuple[str, ...] = (),
    ) -> Child:
        """Start ``command`` with this environment plus ``env``, less the variables named with a prefix in
        ``drop_env``."""
        self._count += 1
        stem = self._workdir / f"{self._count:02d}-{name}"
        out, err = stem.with_suffix(".out"), stem.with_suffix(".err")
        # Output goes to files, never pipes: nobody reads a pipe while a load runs, and a full pipe would
        # stall the child. A new session makes the child its own process group (so one signal reaches a
        # server's workers too) and keeps the terminal's Ctrl-C from reaching it before we are ready.
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                list(command),
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=_environment(env or {}, drop_env),
                start_new_session=True,
            )
        child = Child(name, process, out, err)
        self._children.append(child)
        return child

    def run(
        self, name: str, command: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> Child:
        """Start ``command`` and wait for it; a non-zero exit or a timeout is a BenchFailure."""
        child = self.start(name, command, env=env)
        try:
            code = child.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(child)
            raise BenchFailure(f"{name} did not finish within {timeout:.0f}s:\n{child.output()}") from None
        except BaseException:
            # Interrupted: end it now, before the caller's cleanup (say, dropping the schema a pgbench
            # still holds locks in) waits for it.
            self.stop(child)
            raise
        if code != 0:
            raise BenchFailure(f"{name} exited {code}:\n{child.output()}")
        return child

    def stop(self, child: Child) -> None:
        """End the child's whole process group: SIGTERM, then SIGKILL after GRACE_S; wait for all of it."""
        pgid = child.pid  # a session leader's group id is its pid
        if child.process.poll() is None or _group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_S
            while time.monotonic() < deadline and _group_alive(pgid):
                child.process.poll()  # reap the leader, or it stays a zombie and the group looks alive
                time.sleep(0.05)
            if _group_alive(pgid):
                log(f"{child.name} (pid {pgid}) ignored SIGTERM for {GRACE_S:.0f}s: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
        child.process.wait()
        if child in self._children:
            self._children.remove(child)

    def close(self) -> None:
        # Ctrl-C pressed again while we clean up must not leave the rest running: finish the job first.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for child in reversed(self._children[:]):
                self.stop(child)
        finally:
            signal.signal(signal.SIGINT, previous)


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (Linux /proc), e.g. the worker processes of a server."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def wait_ready(child: Child, base_url: str, *, workers: int) -> None:
    """Until GET /health answers 200 (and, with several workers, until all of them are up)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise BenchFailure(f"{child.name} exited {child.process.returncode}:\n{child.output()}")
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=2) as response:
                up = response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            up = False
        # The server spawns its workers (plus a resource tracker), each with its own lifespan: a load
        # started before all of them listen would measure fewer workers than configured.
        if up and len(children_of(child.pid)) >= workers:
            time.sleep(0.5 if workers == 1 else 2.0)
            return
        time.sleep(0.2)
    raise BenchFailure(f"{child.name} not ready within {READY_TIMEOUT_S:.0f}s:\n{child.output()}")
