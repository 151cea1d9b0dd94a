"""Real `promopool serve` processes, on both engines: what holds for a whole server, whatever worker answers
a request — the settings of its config file, the guessing budgets — and what it does on a busy port, with
slow clients, and for /metrics."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from promopool import listen
from tests.conftest import free_port
from tests.reliability.servers import Server

pytestmark = pytest.mark.slow


def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def validate(url: str, api_key: str, code: str = "NO-SUCH-CODE") -> int:
    """The status of one validate, on a new connection (so that the kernel picks a worker anew)."""
    response = httpx.post(
        f"{url}/v1/codes/validate",
        json={"code": code},
        headers=auth(api_key),
        timeout=30,
    )
    return response.status_code


def test_settings_of_a_config_file_reach_every_worker(database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "promopool.toml"
    config.write_text("guess_budget = 1\naccess_log = true\npersonaclick_max_body_mib = 1\n")
    with Server(database_url, tmp_path / "server.log", workers=2, args=("--config", str(config))) as server:
        server.start()
        statuses = [validate(server.url, server.api_key()) for _ in range(6)]
        assert statuses == [404] + [429] * 5  # a budget of 1 failure (default: 100)
        upload = httpx.post(f"{server.url}/promo_codes", content=b"x" * (3 * 1024 * 1024 // 2), timeout=30)
        assert upload.status_code == 413  # over 1 MiB (default: 64)
        assert '"logger": "promopool.access"' in server.log()  # off by default


def test_the_guessing_budgets_hold_across_the_workers_of_a_server(database_url: str, tmp_path: Path) -> None:
    settings = {"guess_budget": "5", "public_fetch_per_minute": "3"}
    with Server(database_url, tmp_path / "server.log", workers=2, **settings) as server:
        server.start()
        key = server.api_key()
        # 20 failed guesses, each on a new connection (either worker): 5 pass, as with one worker
        assert [validate(server.url, key) for _ in range(20)] == [404] * 5 + [429] * 15

        pool = httpx.post(
            f"{server.url}/v1/pools", json={"name": "front", "public_fetch": True}, headers=auth(key)
        )
        codes = [f"F{i}" for i in range(10)]
        httpx.post(f"{server.url}/v1/pools/{pool.json()['id']}/codes", json=codes, headers=auth(key))
        shop = httpx.get(f"{server.url}/v1/account", headers=auth(key)).json()["public_key"]
        fetches = [
            httpx.get(
                f"{server.url}/promo_codes/fetch",
                params={"shop_id": shop, "id": pool.json()["id"], "did": f"device-{i}"},
                timeout=30,
            ).status_code
            for i in range(8)
        ]
        assert fetches == [200] * 3 + [429] * 5  # 3 a minute per address, for the server


def test_the_metrics_token_holds_on_every_worker(database_url: str, tmp_path: Path) -> None:
    token = "m" * 40
    with Server(database_url, tmp_path / "server.log", workers=2, metrics_token=token) as server:
        server.start()
        for _ in range(4):  # new connections: either worker
            assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 401
            scraped = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {token}"})
            assert scraped.status_code == 200
        assert "/metrics is open" not in server.log()


def test_a_second_server_on_a_busy_port_refuses_to_start(database_url: str, tmp_path: Path) -> None:
    with Server(database_url, tmp_path / "first.log", workers=2) as first:
        first.start()
        assert first.process is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOPOOL_")}
        env |= {"PROMOPOOL_DATABASE_URL": f"sqlite:///{tmp_path}/other.db", "PROMOPOOL_PORT": str(first.port)}
        second = subprocess.Popen(
            [sys.executable, "-m", "promopool", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = second.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGTERM)
            second.communicate(timeout=30)
            pytest.fail("a second server started on the busy port")
        assert second.returncode == 1
        assert (out, len(err.splitlines())) == ("", 1), err  # one line, no traceback
        assert f"127.0.0.1:{first.port} is already in use by pid {first.process.pid} (" in err
        assert not (tmp_path / "other.db").exists()  # refused before doing anything
        for _ in range(6):  # every request still goes to the first server
            assert httpx.get(f"{first.url}/v1/account", headers=auth(first.api_key())).status_code == 200


def test_the_port_guard_refuses_a_second_server_before_the_workers_listen() -> None:
    port = free_port()
    guard = listen.hold("127.0.0.1", port)
    assert guard is not None
    with guard:
        with pytest.raises(listen.PortUnavailable, match=f"127.0.0.1:{port} is already in use"):
            listen.hold("127.0.0.1", port)
        with socket.socket() as worker:  # the server's own workers still listen there, as granian's do
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
            with pytest.raises(listen.PortUnavailable, match="already in use by pid"):
                listen.hold("127.0.0.1", port)
    listen.hold("127.0.0.1", port).close()  # free again


IDLE_CONNECTIONS = 1200  # more than granian took at once before (1024), and than a 1024-file limit allows


def open_files_limit(pid: int) -> tuple[str, str]:
    """The soft and hard open-file limits of a process, from /proc."""
    line = next(
        x for x in Path(f"/proc/{pid}/limits").read_text().splitlines() if x.startswith("Max open files")
    )
    soft, hard = line.split()[3:5]
    return soft, hard


def request_with_stalled_body(url: str, api_key: str) -> socket.socket:
    """A request whose body stops after its first bytes."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /v1/pools HTTP/1.1\r\nHost: promopool\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {api_key}\r\nContent-Length: 100\r\n\r\n".encode()
        + b'{"name": "sl'
    )
    return sock


def answer_within(sock: socket.socket, seconds: float) -> bytes:
    sock.settimeout(seconds)
    try:
        return sock.recv(4096)
    except TimeoutError:
        return b"(no answer)"


def test_slow_clients_do_not_take_the_server_down(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < IDLE_CONNECTIONS + 500:
        pytest.skip(f"the open-file limit ({hard}) is too low for {IDLE_CONNECTIONS} connections")
    if soft != resource.RLIM_INFINITY and soft < IDLE_CONNECTIONS + 500:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE_CONNECTIONS + 500), hard))
    settings = {"header_timeout_seconds": "3", "body_timeout_seconds": "1", "max_requests": "4"}
    url = f"sqlite:///{tmp_path}/promopool.db"
    with Server(url, tmp_path / "server.log", open_files=1024, **settings) as server:
        server.start()
        key = server.api_key()
        [worker] = server.workers()
        soft_limit, hard_limit = open_files_limit(worker)
        assert soft_limit == hard_limit  # raised from 1024 to what the system allows (granian does it too)

        # Connections that never send a byte, or stop in the middle of their headers: a probe on a new
        # connection is still answered at once, and the server closes them after the header timeout.
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(IDLE_CONNECTIONS)]
        for sock in idle[::2]:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: promopool\r\n")
        opened = time.monotonic()
        probe = httpx.get(f"{server.url}/health", timeout=2)
        assert probe.status_code == 200 and time.monotonic() - opened < 2

        # Bodies that stall: with max_requests of them in progress another request is answered 503 at once;
        # each gets 408 after the body timeout, and the server serves on.
        stalled = [request_with_stalled_body(server.url, key) for _ in range(4)]
        time.sleep(0.5)
        busy = httpx.get(f"{server.url}/v1/pools", headers=auth(key), timeout=2)
        assert (busy.status_code, busy.headers["retry-after"]) == (503, "1")
        assert busy.json()["error"]["code"] == "server_busy"
        for sock in stalled:
            assert answer_within(sock, 3).startswith(b"HTTP/1.1 408 "), "a stalled body was not cut"
            assert answer_within(sock, 3) == b""  # and its connection closed
            sock.close()
        assert httpx.get(f"{server.url}/v1/pools", headers=auth(key), timeout=2).status_code == 200

        # A body that arrives slowly but steadily, each part within the body timeout, is not cut.
        with socket.create_connection(("127.0.0.1", server.port)) as steady:
            body = b'{"name": "steady", "max_uses": 1}'
            steady.sendall(
                b"POST /v1/pools HTTP/1.1\r\nHost: promopool\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            )
            for part in (body[:10], body[10:20], body[20:]):
                time.sleep(0.6)
                steady.sendall(part)
            assert answer_within(steady, 5).startswith(b"HTTP/1.1 201 ")

        # The idle connections were closed by the header timeout (3 s after they opened).
        for sock in idle:
            assert answer_within(sock, max(0.1, opened + 6 - time.monotonic())) == b""
            sock.close()
