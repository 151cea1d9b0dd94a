"""`promopool claim POOL --count N -o FILE --idempotency-key K` (claimfile.py), on both engines: N codes into
the file, and a run stopped anywhere — a file cut mid-chunk or mid-line, chunks claimed but never written, a
kill -9 — continued by the same command, without claiming a code twice or losing one."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promopool.cli import app
from promopool.storage import open_store
from tests.helpers import issued_values

runner = CliRunner()


def promopool(database_url: str, *args: str, exit_code: int = 0) -> str:
    result = runner.invoke(app, ["--database-url", database_url, *args], catch_exceptions=False)
    assert result.exit_code == exit_code, result.output
    return result.output


def new_pool(database_url: str, tmp_path: Path, codes: int) -> str:
    """A pool of the default account holding ``codes`` codes; its id."""
    promopool(database_url, "migrate")
    pool_id = promopool(database_url, "pools", "create", f"send-{codes}").strip()
    values = tmp_path / f"values-{codes}.txt"
    values.write_text("".join(f"S{i:07d}\n" for i in range(codes)))
    promopool(database_url, "import", pool_id, str(values))
    return pool_id


def handed_out(database_url: str, pool_id: str) -> list[str]:
    async def read() -> list[str]:
        store = open_store(database_url)
        await store.connect()
        try:
            return await issued_values(store, int(pool_id))
        finally:
            await store.close()

    return asyncio.run(read())


def codes_in(path: Path) -> list[str]:
    text = path.read_text()
    assert text.endswith("\n")
    return text.splitlines()


def test_claims_count_codes_and_continues_a_cut_file(database_url: str, tmp_path: Path) -> None:
    pool_id = new_pool(database_url, tmp_path, 2_600)
    out = tmp_path / "codes.txt"
    run = (
        "claim",
        pool_id,
        "--count",
        "2500",
        "-o",
        str(out),
        "--idempotency-key",
        "spring",
        "--chunk-size",
        "1000",
    )
    assert "claimed 2500 codes" in promopool(database_url, *run)
    whole = out.read_bytes()
    codes = codes_in(out)
    assert codes == [f"S{i:07d}" for i in range(2_500)]  # the pool's queue order
    assert sorted(handed_out(database_url, pool_id)) == codes
    # Cut inside chunk 1 and mid-line: chunk 1 is written again from its replay, chunk 2 (claimed, no longer
    # in the file) likewise; nothing new is claimed.
    out.write_bytes(whole[: len(whole) // 2] + b"S00")
    assert "continued after 1000" in promopool(database_url, *run)
    assert out.read_bytes() == whole
    # A finished run claims nothing more; another count for the same key is refused (its last chunk's key was
    # used for another count) and leaves the file as it was.
    promopool(database_url, *run)
    assert out.read_bytes() == whole
    longer = ("claim", pool_id, "--count", "2600", *run[4:])
    assert "idempotency_key_reused" in promopool(database_url, *longer, exit_code=1)
    assert out.read_bytes() == whole
    assert sorted(handed_out(database_url, pool_id)) == codes


def test_a_run_refused_leaves_the_file_and_every_claimed_code_in_it(
    database_url: str, tmp_path: Path
) -> None:
    pool_id = new_pool(database_url, tmp_path, 2_600)
    out = tmp_path / "codes.txt"
    run = ("claim", pool_id, "-o", str(out), "--idempotency-key", "k", "--chunk-size", "1000")
    promopool(database_url, *run, "--count", "3000", exit_code=1)  # chunk 2 wants 1000 of the last 600
    assert sorted(codes_in(out)) == sorted(handed_out(database_url, pool_id))
    assert len(codes_in(out)) == 2_000
    # A smaller count than the file holds: refused, the file kept.
    kept = out.read_bytes()
    assert "more than --count" in promopool(database_url, *run, "--count", "1500", exit_code=1)
    assert out.read_bytes() == kept


def test_another_runs_file_is_refused_and_nothing_claimed(database_url: str, tmp_path: Path) -> None:
    pool_id = new_pool(database_url, tmp_path, 2_600)
    out = tmp_path / "codes.txt"
    first = ("claim", pool_id, "-o", str(out), "--chunk-size", "1000", "--count", "1000")
    promopool(database_url, *first, "--idempotency-key", "spring")
    kept, claimed = out.read_bytes(), sorted(handed_out(database_url, pool_id))
    # Another key on the same file, and the same key on a file that is not what it claimed.
    assert "does not end with the codes" in promopool(
        database_url, *first[:-1], "2000", "--idempotency-key", "autumn", exit_code=1
    )
    assert out.read_bytes() == kept
    out.write_text("".join(f"X{i}\n" for i in range(1000)))
    assert "does not end with the codes" in promopool(
        database_url, *first[:-1], "2000", "--idempotency-key", "spring", exit_code=1
    )
    assert sorted(handed_out(database_url, pool_id)) == claimed


def test_the_run_needs_a_key_count_and_file(database_url: str, tmp_path: Path) -> None:
    pool_id = new_pool(database_url, tmp_path, 10)
    out = tmp_path / "codes.txt"
    assert "--idempotency-key" in promopool(
        database_url, "claim", pool_id, "--count", "5", "-o", str(out), exit_code=2
    )
    assert "go together" in promopool(database_url, "claim", pool_id, "--count", "5", exit_code=2)
    assert "go together" in promopool(database_url, "claim", pool_id, "-o", str(out), exit_code=2)
    assert not out.exists() and handed_out(database_url, pool_id) == []


@pytest.mark.slow
def test_a_run_killed_mid_way_is_continued_by_the_same_command(database_url: str, tmp_path: Path) -> None:
    """kill -9 of the CLI once the file has some lines, then the same command: exactly N distinct codes in the
    file, and every code the database records as handed out is one of them."""
    count = 50_000
    pool_id = new_pool(database_url, tmp_path, 60_000)
    out = tmp_path / "codes.txt"
    command = [sys.executable, "-m", "promopool", "--database-url", database_url, "claim", pool_id]
    command += [
        "--count",
        str(count),
        "-o",
        str(out),
        "--idempotency-key",
        "campaign",
        "--chunk-size",
        "1000",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "stderr.txt"
    with log.open("wb") as stderr:
        running = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size > 0) and running.poll() is None:
            assert time.monotonic() < deadline, "the run wrote nothing in a minute"
            time.sleep(0.002)
        running.send_signal(signal.SIGKILL)
        running.wait()
    assert running.returncode == -signal.SIGKILL, log.read_text()
    written = len(out.read_bytes().splitlines())
    assert 0 < written < count  # killed mid-way
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    codes = codes_in(out)
    assert len(codes) == len(set(codes)) == count
    assert set(handed_out(database_url, pool_id)) == set(codes)
