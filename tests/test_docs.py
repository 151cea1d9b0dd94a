"""The README is tested: every setting is documented, and the curl quickstart works as written."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from promopool.config import documented_settings
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
