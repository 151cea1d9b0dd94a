"""Real `promopool serve` processes, on both engines: what holds for a whole server, whatever worker answers
a request — the settings of its config file, the guessing budgets — and what it does on a busy port, with
slow clients, and for /metrics."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from promopool import listen
from tests.reliability.servers import Server
from tests.test_concurrency import free_port

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
