"""Real `promopool serve` processes for the tests: start, wait, kill, read their logs; and a newcomer's first
serve on an empty directory."""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from tests.conftest import free_port

# Generous: five other test suites may be running on this two-core machine.
START_TIMEOUT = 90.0


class Server:
    """One ``promopool serve`` process with its output in a log file; restartable on the same port."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        port: int | None = None,
        workers: int = 1,
        args: tuple[str, ...] = (),
        open_files: int | None = None,
        **settings: str,
    ) -> None:
        self.database_url = database_url
        self.workers_wanted = workers
        self.args = args  # more command-line arguments, before `serve` (`--config FILE`)
        self.open_files = open_files  # the soft open-file limit it starts with (else this process's)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOPOOL_")}
        self.env |= {"PROMOPOOL_DATABASE_URL": database_url, "PROMOPOOL_PORT": str(self.port)}
        self.env |= {"PROMOPOOL_" + name.upper(): value for name, value in settings.items()}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, ready_path: str = "/health/ready") -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "promopool",
                    *self.args,
                    "serve",
                    "--workers",
                    str(self.workers_wanted),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a SIGKILL meant for the server reaches no one else
                preexec_fn=None if self.open_files is None else self._limit_open_files,
            )
        self.starts += 1
        self.wait_ready(ready_path)

    def _limit_open_files(self) -> None:
        assert self.open_files is not None
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (self.open_files, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        )

    def wait_ready(self, path: str = "/health/ready", timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + path, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready after {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL to the server and its workers at once (its process group): no shutdown code runs,
        connections and transactions are cut wherever they are."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=30)

    def children(self) -> list[int]:
        """The pids of the server's child processes, from Linux /proc: its workers, and multiprocessing's
        resource tracker."""
        assert self.process is not None
        return children_of(self.process.pid)

    def workers(self) -> list[int]:
        return [pid for pid in self.children() if b"spawn_main" in _cmdline(pid)]

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def api_key(self) -> str:
        """The default account's API key, printed once by the first start on an empty database."""
        match = re.search(r"API key:\s+(pp_\S+)", self.log())
        assert match, "the server did not print the default account's API key"
        return match.group(1)

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _stat(pid: int) -> list[str]:
    """State and parent pid, then the rest, of /proc/<pid>/stat; ["X"] once the process is gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return ["X", ""]


def children_of(parent: int) -> list[int]:
    """The pids of ``parent``'s child processes, from Linux /proc."""
    return [pid for pid in _pids() if _stat(pid)[1] == str(parent)]


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def running(pid: int) -> bool:
    """Still running: not gone, and not a zombie waiting for a parent to reap it."""
    return _stat(pid)[0] not in ("X", "Z")


@dataclass(frozen=True)
class FirstServe:
    url: str
    api_key: str  # the default account's, printed once
    env: dict[str, str]  # the server's environment (no PROMOPOOL_ settings but the port)


@contextmanager
def first_serve(cwd: Path, database_url: str | None = None) -> Iterator[FirstServe]:
    """``promopool serve`` as the README's newcomer runs it, in ``cwd`` with no settings: the embedded SQLite
    default (or the empty database ``database_url``), the default account's key read from what it prints;
    ready when /health/ready answers 200."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOPOOL_")}
    env["PROMOPOOL_PORT"] = str(port)
    if database_url is not None:
        env["PROMOPOOL_DATABASE_URL"] = database_url
    process = subprocess.Popen(
        [sys.executable, "-m", "promopool", "serve"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        key = None
        for line in process.stdout:
            if match := re.search(r"API key:\s+(pp_\S+)", line):
                key = match.group(1)
                break
        assert key, "the first serve did not print the default account's API key"
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield FirstServe(url, key, env)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
