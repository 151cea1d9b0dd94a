"""`promopool claim POOL --count N -o FILE --idempotency-key K` (claimfile.py), on both engines: N codes into
the file, and a run stopped anywhere — a file cut mid-chunk or mid-line, chunks claimed but never written, a
kill -9 — continued by the same command, without claiming a code twice or losing one."""

from __future__ import annotations

import asyncio
import csv
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


def recipients_file(tmp_path: Path, count: int) -> Path:
    """``count`` recipients, one a line, with the things a real list holds: blank lines, a CRLF line end, a
    recipient CSV must quote, and a recipient named twice."""
    lines = [f"customer-{i}" for i in range(count - 2)] + ['Doe, "Jane"', "customer-7"]
    lines[10] += "\r"
    path = tmp_path / "recipients.txt"
    path.write_text("\n".join(lines[:500]) + "\n\n  \n" + "\n".join(lines[500:]) + "\n")
    return path


def rows_in(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as rows:
        return [(recipient, code) for recipient, code in csv.reader(rows)]


def test_claims_each_recipient_its_code_and_continues_a_cut_file(database_url: str, tmp_path: Path) -> None:
    pool_id = new_pool(database_url, tmp_path, 2_600)
    recipients = recipients_file(tmp_path, 2_500)
    out = tmp_path / "codes.csv"
    run = ("claim", pool_id, "--recipients", str(recipients), "-o", str(out), "--chunk-size", "1000")
    keyed = (*run, "--idempotency-key", "spring")
    assert "claimed codes for 2500 recipients" in promopool(database_url, *keyed)
    whole = out.read_bytes()
    rows = rows_in(out)
    wanted = [f"customer-{i}" for i in range(2_498)] + ['Doe, "Jane"', "customer-7"]
    assert [recipient for recipient, _ in rows] == wanted  # the input's order, blank lines skipped
    assert b'"Doe, ""Jane"""' in whole
    codes = dict(rows[:-1])
    assert rows[-1] == ("customer-7", codes["customer-7"])  # named again: the same code
    assert len(set(codes.values())) == len(codes) == 2_499
    assert sorted(handed_out(database_url, pool_id)) == sorted(codes.values())
    # Another run (another key, another file) for the same list: the same codes, nothing new claimed.
    again = tmp_path / "again.csv"
    promopool(database_url, *run[:5], str(again), "--chunk-size", "1000", "--idempotency-key", "again")
    assert again.read_bytes() == whole
    # Cut inside chunk 1 and mid-line: continued after chunk 0, to the same file; nothing new claimed.
    out.write_bytes(whole[: len(whole) // 2] + b"customer-1")
    assert "continued after 1000" in promopool(database_url, *keyed)
    assert out.read_bytes() == whole
    promopool(database_url, *keyed)  # finished: nothing more
    assert out.read_bytes() == whole
    assert sorted(handed_out(database_url, pool_id)) == sorted(codes.values())


def test_a_bad_recipient_line_refuses_the_run_with_nothing_claimed(database_url: str, tmp_path: Path) -> None:
    pool_id = new_pool(database_url, tmp_path, 2_600)
    recipients = tmp_path / "recipients.txt"
    recipients.write_text("".join(f"c{i}\n" for i in range(1_500)) + "bad\x07one\n" + "c-last\n")
    out = tmp_path / "codes.csv"
    run = ("claim", pool_id, "--recipients", str(recipients), "-o", str(out), "--idempotency-key", "k")
    assert "line 1501" in promopool(database_url, *run, "--chunk-size", "1000", exit_code=1)
    recipients.write_bytes(b"c1\n\xff\n")
    assert "line 2: not UTF-8" in promopool(database_url, *run, exit_code=1)
    recipients.write_text("\n \n")
    assert "no recipient" in promopool(database_url, *run, exit_code=1)
    assert not out.exists() and handed_out(database_url, pool_id) == []


def test_recipients_refuse_count_and_another_lists_file(database_url: str, tmp_path: Path) -> None:
    pool_id = new_pool(database_url, tmp_path, 30)
    recipients = tmp_path / "recipients.txt"
    recipients.write_text("".join(f"c{i}\n" for i in range(20)))
    out = tmp_path / "codes.csv"
    run = ("claim", pool_id, "--recipients", str(recipients), "-o", str(out), "--idempotency-key", "k")
    assert "exclude each other" in promopool(database_url, *run, "--count", "5", exit_code=2)
    assert "go together" in promopool(database_url, *run[:4], exit_code=2)
    assert not out.exists() and handed_out(database_url, pool_id) == []
    promopool(database_url, *run, "--chunk-size", "10")
    kept, claimed = out.read_bytes(), sorted(handed_out(database_url, pool_id))
    # The same file continued with another list (its first chunk names other recipients): refused.
    recipients.write_text("".join(f"other{i}\n" for i in range(25)))
    assert "does not end with the recipients" in promopool(
        database_url, *run, "--chunk-size", "10", exit_code=1
    )
    assert out.read_bytes() == kept and sorted(handed_out(database_url, pool_id)) == claimed
