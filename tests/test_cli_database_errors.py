"""A database URL with a typo, run as an operator runs it (a real ``promopool`` process): one line naming the
database (never its password) and what to do, no traceback, a non-zero exit; on every command."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pgserver
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow  # a process per command (test_cli.py has the quick in-process check)

COMMANDS = [["migrate"], ["pools", "list"], ["serve"]]
PASSWORD = "s3cret-Pw"


def promopool(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOPOOL_")}
    env["PROMOPOOL_DATABASE_URL"] = url
    if args == ("serve",):  # should it start after all, not on a port someone else uses
        args = ("serve", "--port", str(free_port()))
    return subprocess.run(
        [sys.executable, "-m", "promopool", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output and "╭" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert PASSWORD not in output, output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def with_path(
    url: str, user: str | None = None, password: str | None = None, database: str | None = None
) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    name = user if user is not None else parts.username or ""
    userinfo = name + (f":{password}" if password else "")
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", path, parts.query, ""))


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0] if c[0] != "pools" else "pools-list")
def test_postgres_no_such_database_or_role(postgres_server_url: str, command: list[str]) -> None:
    no_database = with_path(postgres_server_url, password=PASSWORD, database="nosuchdb_pp")
    line = assert_one_line(promopool(no_database, *command), 'database "nosuchdb_pp" does not exist')
    assert "createdb nosuchdb_pp" in line and "PROMOPOOL_DATABASE_URL" in line
    assert with_path(postgres_server_url, database="nosuchdb_pp") in line  # the URL, less its password
    no_role = with_path(postgres_server_url, user="nosuchrole_pp", password=PASSWORD)
    line = assert_one_line(promopool(no_role, *command), 'role "nosuchrole_pp" does not exist')
    assert "createuser nosuchrole_pp" in line


@pytest.fixture(scope="module")
def password_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL whose role ``app`` must give its password (the shared one trusts everyone):
    the URL of its socket, without a password."""
    server = pgserver.get_server(Path(tempfile.mkdtemp(prefix="pp-password-")), cleanup_mode="delete")
    try:
        server.psql("CREATE ROLE app LOGIN PASSWORD 'the-right-one';")
        hba = Path(server.pgdata) / "pg_hba.conf"
        hba.write_text("local all app scram-sha-256\n" + hba.read_text())
        server.psql("SELECT pg_reload_conf();")
        parts = urlsplit(server.get_uri())
        yield urlunsplit((parts.scheme, "app@", parts.path, parts.query, ""))
    finally:
        server.cleanup()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0] if c[0] != "pools" else "pools-list")
def test_postgres_wrong_password(password_postgres: str, command: list[str]) -> None:
    wrong = with_path(password_postgres, password=PASSWORD)
    line = assert_one_line(promopool(wrong, *command), 'password authentication failed for user "app"')
    assert "fix the password in PROMOPOOL_DATABASE_URL" in line and password_postgres in line


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0] if c[0] != "pools" else "pools-list")
def test_sqlite_wrong_paths(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "promopool.db"
    line = assert_one_line(promopool(f"sqlite:///{missing}", *command), "cannot open SQLite database")
    assert f"mkdir -p {missing.parent}" in line and f"sqlite:///{missing}" in line
    other_file = tmp_path / "notes.txt"
    other_file.write_text("not a database, but long enough to have a header's worth of bytes\n" * 10)
    line = assert_one_line(promopool(f"sqlite:///{other_file}", *command), "file is not a database")
    assert "PROMOPOOL_DATABASE_URL" in line
    assert_one_line(promopool(f"sqlite:///{tmp_path}", *command), "is a directory")
    # a directory no one may write in, root included
    assert_one_line(promopool("sqlite:////proc/promopool.db", *command), "cannot write in /proc")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in any directory")
def test_sqlite_unwritable_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = assert_one_line(promopool(f"sqlite:///{locked}/promopool.db", "migrate"), "cannot write in")
        assert str(locked) in line
    finally:
        locked.chmod(0o700)
