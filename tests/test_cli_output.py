"""What the CLI prints, for people and for scripts: --version, --json documents, plain tables off a
terminal, and what ``serve`` says at every start; on both engines."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from promopool.cli import app
from promopool.config import Settings
from tests.conftest import free_port
from tests.helpers import cli, runner, with_password

BOX_DRAWING = re.compile("[\u2500-\u257f]")


def run_json(database_url: str, *args: str) -> Any:
    return json.loads(cli(database_url, *args, "--json"))


def test_version_is_the_installed_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"promopool {version('promopool')}\n"


def test_migrate_creates_the_default_account_once(database_url: str) -> None:
    first = run_json(database_url, "migrate")
    assert first["applied"] and first["applied"] == sorted(first["applied"])
    default = first["default_account"]
    assert default["account"] == "default" and default["api_key"].startswith("pp_")
    assert run_json(database_url, "migrate") == {"applied": [], "default_account": None}
    # the README's PostgreSQL order: migrate, then use the default account straight away
    assert run_json(database_url, "pools", "list") == []


def test_every_data_command_prints_one_json_document(database_url: str, tmp_path: Path) -> None:
    cli(database_url, "migrate")
    shop = run_json(database_url, "accounts", "create", "shop")
    assert shop["account"] == "shop" and shop["api_key"].startswith("pp_") and shop["public_key"]
    pool = run_json(database_url, "pools", "create", "spring <b>")
    assert set(pool) == {"id"} and isinstance(pool["id"], int)
    pool_id = str(pool["id"])
    assert run_json(database_url, "profile-dbs", "create", "crm") == {"id": 1}
    codes = tmp_path / "codes.txt"
    codes.write_text("A1\nA2\nA1\nbad\x01code\n")
    report = run_json(database_url, "import", pool_id, str(codes))
    assert report == {
        "inserted": 2,
        "duplicates": 1,
        "invalid": 1,
        "invalid_samples": [{"line": 4, "reason": "control_character"}],
    }
    job = run_json(database_url, "generate", pool_id, "5", "--length", "10")
    assert job["state"] == "succeeded" and job["done"] == 5 and job["error"] is None
    claimed = run_json(database_url, "claim", pool_id, "--idempotency-key", "k1")
    assert claimed == {"code": "A1", "pool": pool["id"], "replayed": False}
    again = run_json(database_url, "claim", pool_id, "--idempotency-key", "k1")
    assert again == {"code": "A1", "pool": pool["id"], "replayed": True}
    listing = run_json(database_url, "pools", "list")
    assert listing == [{"id": pool["id"], "name": "spring <b>", "available": 6, "issued": 1, "redeemed": 0}]


def test_tables_are_plain_text_when_stdout_is_not_a_terminal(database_url: str) -> None:
    cli(database_url, "migrate")
    pool_id = cli(database_url, "pools", "create", "[bold]spring[/bold]").strip()
    listing = cli(database_url, "pools", "list")
    assert not BOX_DRAWING.search(listing), listing
    lines = [line.split() for line in listing.splitlines() if line.strip()]
    header = ["id", "name", "available", "issued", "redeemed"]
    assert lines == [header, [pool_id, "[bold]spring[/bold]", "0", "0", "0"]]


def test_serve_names_version_database_and_admin_url_at_every_start(
    database_url: str, served: list[Settings]
) -> None:
    # (The test server trusts every local connection, so a password is accepted and must not be shown.)
    url = with_password(database_url, "s3cret-pw")
    port = free_port()
    outputs = [cli(url, "serve", "--port", str(port)) for _ in range(2)]
    assert len(served) == 2
    for output in outputs:
        assert f"promopool {version('promopool')}" in output
        shown = re.search(r"database:\s+(\S+)", output)
        assert shown is not None and "s3cret-pw" not in output
        assert urlsplit(shown.group(1)).path == urlsplit(database_url).path
        assert f"admin pages: http://127.0.0.1:{port}/admin/" in output
    assert "Created the 'default' account" in outputs[0]
    assert "Created the 'default' account" not in outputs[1]


def test_serve_after_migrate_finds_the_default_account(database_url: str, served: list[Settings]) -> None:
    assert "API key:" in cli(database_url, "migrate")
    output = cli(database_url, "serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert "Created the 'default' account" not in output
    assert re.search(r"admin pages: http://127\.0\.0\.1:\d+/admin/", output)
    assert served[0].host == "0.0.0.0"
