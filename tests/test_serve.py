"""Real `promopool serve` processes, on both engines: what holds for a whole server, whatever worker answers
a request — the settings of its config file, the guessing budgets — and what it does on a busy port, with
slow clients, and for /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.reliability.servers import Server

pytestmark = pytest.mark.slow


def validate(url: str, api_key: str, code: str = "NO-SUCH-CODE") -> int:
    """The status of one validate, on a new connection (so that the kernel picks a worker anew)."""
    response = httpx.post(
        f"{url}/v1/codes/validate",
        json={"code": code},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    )
    return response.status_code


def test_settings_of_a_config_file_reach_every_worker(database_url: str, tmp_path: Path) -> None:
    config = tmp_path / "promopool.toml"
    config.write_text("guess_budget = 1\naccess_log = true\npersonaclick_max_body_mib = 1\n")
    with Server(database_url, tmp_path / "server.log", workers=2, args=("--config", str(config))) as server:
        server.start()
        statuses = [validate(server.url, server.api_key()) for _ in range(6)]
        assert 429 in statuses[:3], statuses  # a budget of 1 failure (default: 100)
        upload = httpx.post(f"{server.url}/promo_codes", content=b"x" * (3 * 1024 * 1024 // 2), timeout=30)
        assert upload.status_code == 413  # over 1 MiB (default: 64)
        assert '"logger": "promopool.access"' in server.log()  # off by default


def test_the_metrics_token_holds_on_every_worker(database_url: str, tmp_path: Path) -> None:
    token = "m" * 40
    with Server(database_url, tmp_path / "server.log", workers=2, metrics_token=token) as server:
        server.start()
        for _ in range(4):  # new connections: either worker
            assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 401
            scraped = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {token}"})
            assert scraped.status_code == 200
        assert "/metrics is open" not in server.log()
