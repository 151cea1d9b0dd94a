"""The README is tested: every setting is documented, the curl quickstart works as written and can be
retried; and the OpenAPI document says what a 503 means on every native write."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promopool.api.app import create_app
from promopool.api.native.openapi import KEYED, REPEATABLE, WRITE_UNAVAILABLE
from promopool.config import Settings, documented_settings
from promopool.storage import open_store
from tests.reliability.servers import first_serve

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    for name, default, description in documented_settings():
        assert description, f"setting {name} has no docstring"
        row = f"| `PROMOPOOL_{name.upper()}` | `{default}` | {description} |"
        assert row in README, f"README lacks (or has a stale) row for {name}:\n{row}"


def quickstart_lines() -> list[str]:
    block = README.split("## Quickstart with curl", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.strip().splitlines() if not line.startswith("export ")]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the quickstart is written for curl")
def test_serve_on_empty_sqlite_and_run_the_curl_quickstart(tmp_path: Path) -> None:
    with first_serve(tmp_path) as server:
        script = "set -e\n" + "\n".join(quickstart_lines())
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env={**server.env, "PROMOPOOL": server.url, "KEY": server.api_key},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert '"inserted":3' in done.stdout
        assert '"code":"SPRING-0001"' in done.stdout
        assert '"available":2,"issued":1' in done.stdout
        assert (tmp_path / "promopool.db").exists()  # the embedded default, in the working directory


WRITES = ("post", "put", "patch", "delete")
SAFE_TO_REPEAT = REPEATABLE.partition("{")[0]


@pytest.fixture
def openapi(tmp_path: Path) -> dict[str, Any]:
    url = f"sqlite:///{tmp_path}/docs.db"
    app = create_app(Settings(database_url=url), store=open_store(url))
    return app.openapi_schema.to_schema()


def native_writes(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/") and method in WRITES:
                yield path, method, operation


def takes_idempotency_key(operation: dict[str, Any]) -> bool:
    return any(
        p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])
    )


def test_every_native_write_says_what_a_503_means(openapi: dict[str, Any]) -> None:
    """A 503 on a write leaves its outcome unknown: its description says so, and how to retry it — with the
    same Idempotency-Key exactly where the operation takes one."""
    keyed = []
    for path, method, operation in native_writes(openapi):
        said = operation["responses"]["503"]["description"]
        assert said.startswith(WRITE_UNAVAILABLE), f"{method} {path}: {said}"
        assert (KEYED in said) == takes_idempotency_key(operation), f"{method} {path}: {said}"
        keyed += [f"{method} {path}"] if takes_idempotency_key(operation) else []
    assert sorted(keyed) == [
        "delete /v1/keys/{key_id}",
        "delete /v1/pools/{pool_id}",
        "delete /v1/pools/{pool_id}/codes/{code}",
        "patch /v1/pools/{pool_id}",
        "patch /v1/pools/{pool_id}/codes/{code}",
        "post /v1/codes/redeem",
        "post /v1/keys",
        "post /v1/leases/{lease_id}/confirm",
        "post /v1/leases/{lease_id}/release",
        "post /v1/pools",
        "post /v1/pools/{pool_id}/claim",
        "post /v1/pools/{pool_id}/codes",
        "post /v1/pools/{pool_id}/generate",
        "post /v1/pools/{pool_id}/webhook/test",
        "post /v1/redemptions/{redemption_id}/rollback",
    ]


def quickstart_commands() -> list[str]:
    """The quickstart's commands, one continued over lines with a backslash as one line."""
    commands, pending = [], ""
    for line in quickstart_lines():
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1]
        else:
            commands.append(pending)
            pending = ""
    return commands


def test_every_write_of_the_quickstart_can_be_retried(openapi: dict[str, Any]) -> None:
    """Each write the quickstart shows carries an Idempotency-Key when its operation takes one; one that
    takes none is documented as safe to repeat as it is."""
    templates = {
        re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"): path for path in openapi["paths"]
    }
    checked = 0
    for line in quickstart_commands():
        method = re.search(r"-X (POST|PUT|PATCH|DELETE)\b", line)
        target = re.search(r'"\$PROMOPOOL(/v1/[^"?]*)', line)
        if method is None or target is None:
            continue
        path = next(path for pattern, path in templates.items() if pattern.match(target[1]))
        operation = openapi["paths"][path][method[1].lower()]
        if takes_idempotency_key(operation):
            assert '-H "Idempotency-Key: ' in line, f"the quickstart sends {method[1]} {path} without a key"
        else:
            assert SAFE_TO_REPEAT in operation["responses"]["503"]["description"], line
        checked += 1
    assert checked == 3  # create the pool, import, claim
