"""A promopool server started as a user starts it (the ``promopool serve`` CLI), and the few API calls the
harness makes to it besides the load itself."""

from __future__ import annotations

import http.client
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import BenchFailure, promopool_executable
from _procs import Child, Processes, children_of, free_port, wait_ready

API_KEY = re.compile(r"API key:\s+(pp_\S+)")
SHOP_ID = re.compile(r"shop_id\):\s+(\S+)")


@dataclass(slots=True)
class NewAccount:
    api_key: str
    shop_id: str  # the public key, PersonaClick's shop_id


@dataclass(slots=True)
class HttpImport:
    codes: int
    seconds: float
    codes_per_s: float
    inserted: int
    duplicates: int
    invalid: int


def cli(processes: Processes, database_url: str, *args: str, timeout: float = 3600) -> str:
    """Run a CLI command to completion, as an operator would; its stdout. A non-zero exit is a
    BenchFailure."""
    command = [promopool_executable(), "--database-url", database_url, *args]
    return processes.run("-".join(["cli", *args[:2]]), command, timeout=timeout).stdout_text()


def create_account(processes: Processes, database_url: str, name: str) -> NewAccount:
    """Create an account with the CLI; its API key (printed once) and public key."""
    output = cli(processes, database_url, "accounts", "create", name, timeout=120)
    key, shop = API_KEY.search(output), SHOP_ID.search(output)
    if key is None or shop is None:
        raise BenchFailure(f"'accounts create' printed no API key or shop_id:\n{output}")
    return NewAccount(key.group(1), shop.group(1))


class Server:
    """``promopool serve`` with production settings on a free port; ``stop`` ends it and its workers."""

    def __init__(self, processes: Processes, database_url: str, *, workers: int, api_key: str) -> None:
        self.processes = processes
        self.database_url = database_url
        self.workers = workers
        self.api_key = api_key
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._child: Child | None = None

    def start(self, name: str) -> None:
        command = [promopool_executable(), "--database-url", self.database_url, "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        # The CLI has no --log-level flag; the documented setting is the environment variable. Warnings only,
        # as in production: per-request logging would be part of what is measured. No other PROMOPOOL_
        # setting of the shell reaches the server: it runs with the settings the bench gives it.
        self._child = self.processes.start(
            name, command, env={"PROMOPOOL_LOG_LEVEL": "warning"}, drop_env=("PROMOPOOL_",)
        )
        wait_ready(self._child, self.base_url, workers=self.workers)

    def stop(self) -> None:
        if self._child is not None:
            self.processes.stop(self._child)
            self._child = None

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the server's spawned workers (even with one)."""
        if self._child is None:
            return []
        pids = []
        for pid in children_of(self._child.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                pids.append(pid)
        return pids

    def worker_pid(self) -> int:
        """The one worker that serves requests (granian's workers are processes even when there is one):
        the process whose memory a one-worker bench measures."""
        pids = self.worker_pids()
        if len(pids) != 1:
            raise BenchFailure(f"expected one server worker, found {pids}")
        return pids[0]

    # -- API calls ---------------------------------------------------------------------------------------
    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        # 1 MiB blocks: the client must not be what limits a bulk upload.
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout, blocksize=1 << 20)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        conn = self._connection(60)
        try:
            headers = {"Authorization": f"Bearer {self.api_key}"}
            data = None
            if body is not None:
                data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        if not 200 <= response.status < 300:
            raise BenchFailure(f"{method} {path} answered {response.status}: {payload[:500]!r}")
        return json.loads(payload)

    def create_pool(self, name: str) -> int:
        return int(self.call("POST", "/v1/pools", {"name": name})["id"])

    def issued(self, pool_id: int) -> int:
        return int(self.call("GET", f"/v1/pools/{pool_id}")["counts"]["issued"])

    def counts(self, pool_id: int) -> dict[str, int]:
        counts: dict[str, int] = self.call("GET", f"/v1/pools/{pool_id}")["counts"]
        return counts

    def account_id(self) -> int:
        return int(self.call("GET", "/v1/account/")["id"])

    def import_file(self, pool_id: int, path: Path, codes: int) -> HttpImport:
        """Upload ``path`` (one code per line) as ``text/plain``, the streamed bulk import; the API's defaults
        (refuse the whole upload on any invalid code) as a user gets them."""
        conn = self._connection(900)
        try:
            with path.open("rb") as body:
                headers = {
                    "Authorization": f"Bearer {self.api_key}",
                    "Content-Type": "text/plain",
                    "Content-Length": str(path.stat().st_size),
                }
                started = time.perf_counter()
                conn.request("POST", f"/v1/pools/{pool_id}/codes", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                seconds = time.perf_counter() - started
        finally:
            conn.close()
        if response.status != 200:
            raise BenchFailure(f"import answered {response.status}: {payload[:500]!r}")
        report = json.loads(payload)
        if report["inserted"] != codes or report["invalid"]:
            raise BenchFailure(f"import of {codes} new codes reported {report}")
        return HttpImport(
            codes=codes,
            seconds=round(seconds, 3),
            codes_per_s=round(codes / seconds, 1),
            inserted=report["inserted"],
            duplicates=report["duplicates"],
            invalid=report["invalid"],
        )
