"""The README is tested: every setting is documented, and the curl quickstart works as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from promopool.config import documented_settings
from tests.test_concurrency import free_port

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
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOPOOL_")}
    env["PROMOPOOL_PORT"] = str(port)
    server = subprocess.Popen(
        [sys.executable, "-m", "promopool", "serve"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        key = None
        for line in server.stdout:
            if match := re.search(r"API key:\s+(pp_\S+)", line):
                key = match.group(1)
                break
        assert key, "first serve did not print the default account's API key"
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        script = "set -e\n" + "\n".join(quickstart_lines())
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env={**env, "PROMOPOOL": base, "KEY": key},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert '"inserted":3' in done.stdout
        assert '"code":"SPRING-0001"' in done.stdout
        assert '"available":2,"issued":1' in done.stdout
        assert (tmp_path / "promopool.db").exists()  # the embedded default, in the working directory
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
