"""The CLI as an operator uses it, on both engines."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from typer.testing import CliRunner

from promopool.cli import app

runner = CliRunner()


def run(database_url: str, *args: str) -> str:
    result = runner.invoke(app, ["--database-url", database_url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_accounts_pools_import_claim(database_url: str, tmp_path: Path) -> None:
    assert "applied migrations: [1, 2, 3" in run(database_url, "migrate")
    assert "database is up to date" in run(database_url, "migrate")
    # (migrate made the 'default' account, which the commands below use; this makes another)
    created = run(database_url, "accounts", "create", "shop")
    assert re.search(r"API key:\s+pp_\S+", created)
    pool_id = run(database_url, "pools", "create", "spring", "--max-uses", "2").strip()
    assert pool_id.isdigit()
    codes = tmp_path / "codes.txt"
    codes.write_text("".join(f"C{i:05d}\n" for i in range(25_000)) + "\nbad\x01code\n")
    first = run(database_url, "import", pool_id, str(codes))
    assert "inserted 25000, duplicates 0, invalid 1" in first
    assert "line 25002: control character" in first
    second = run(database_url, "import", pool_id, str(codes))
    assert "inserted 0, duplicates 25000, invalid 1" in second
    assert run(database_url, "claim", pool_id).strip() == "C00000"
    assert run(database_url, "claim", pool_id, "--idempotency-key", "k").strip() == "C00001"
    assert run(database_url, "claim", pool_id, "--idempotency-key", "k").strip() == "C00001"
    listing = run(database_url, "pools", "list")
    assert re.search(rf"{pool_id}\s.*spring\s.*24998\s.*2\s.*0", listing)


def test_csv_import_and_strict_mode(database_url: str, tmp_path: Path) -> None:
    run(database_url, "accounts", "create", "default")
    pool_id = run(database_url, "pools", "create", "csv").strip()
    sheet = tmp_path / "codes.csv"
    sheet.write_text('code,campaign\nA1,x\n"A,2",y\n')
    assert "inserted 2, duplicates 0, invalid 0" in run(database_url, "import", pool_id, str(sheet))
    bad = tmp_path / "bad.txt"
    bad.write_text("B1\n" + "x" * 200 + "\n")
    result = runner.invoke(app, ["--database-url", database_url, "import", pool_id, str(bad), "--strict"])
    assert result.exit_code == 1
    assert "invalid_code" in result.output
    only_b1 = tmp_path / "b1.txt"
    only_b1.write_text("B1\n")
    assert "inserted 1, duplicates 0" in run(
        database_url, "import", pool_id, str(only_b1)
    )  # B1 was not stored


def test_errors_are_one_line_and_exit_1(database_url: str) -> None:
    run(database_url, "accounts", "create", "default")
    result = runner.invoke(app, ["--database-url", database_url, "claim", "999"])
    assert result.exit_code == 1
    assert "pool_not_found" in result.output
    result = runner.invoke(app, ["--database-url", database_url, "pools", "list", "--account", "nobody"])
    assert result.exit_code == 1 and "no account named 'nobody'" in result.output


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://relative.db"])
def test_bad_database_url_is_named(url: str) -> None:
    result = runner.invoke(app, ["--database-url", url, "migrate"])
    assert result.exit_code in (1, 2)
    assert "database" in result.output.lower() or "sqlite" in result.output.lower()


def test_a_database_that_cannot_be_opened_is_one_line(database_url: str, tmp_path: Path) -> None:
    if database_url.startswith("sqlite"):
        wrong, words = f"sqlite:///{tmp_path}/missing/promopool.db", ["mkdir -p", "missing"]
    else:  # another database name on the same server, and a password that must not be shown
        parts = urlsplit(database_url)
        netloc = f"{parts.username}:s3cret@{parts.netloc.rpartition('@')[2]}"
        wrong = urlunsplit((parts.scheme, netloc, "/nosuchdb_pp", parts.query, ""))
        words = ['database "nosuchdb_pp" does not exist', "createdb nosuchdb_pp"]
    for command in (["migrate"], ["pools", "list"]):
        result = runner.invoke(app, ["--database-url", wrong, *command], catch_exceptions=False)
        assert result.exit_code == 1
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert "cannot open" in result.output and "s3cret" not in result.output
        assert all(word in result.output for word in words), result.output


def test_profile_database_create(database_url: str) -> None:
    run(database_url, "migrate")  # creates the 'default' account
    assert run(database_url, "profile-dbs", "create", "crm").strip() == "1"
    result = runner.invoke(app, ["--database-url", database_url, "profile-dbs", "create", "crm"])
    assert result.exit_code != 0
