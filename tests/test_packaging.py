"""The Dockerfile, compose.yaml and the systemd unit, tested as far as this machine can (no image registry):
the files parse and are wired together, the image's HEALTHCHECK probes a real server on both engines, and
the unit passes ``systemd-analyze verify``. ``packaging/check-dockerfile`` runs the Dockerfile's steps
(about a minute: not part of the suite)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.conftest import free_port
from tests.reliability.servers import Server

ROOT = Path(__file__).parent.parent
UNIT = ROOT / "packaging" / "promopool.service"


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    found, pending = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        found.append((keyword, rest.strip()))
        pending = ""
    return found


def only(keyword: str) -> str:
    [arguments] = [rest for found, rest in dockerfile() if found == keyword]
    return arguments


def image_env() -> dict[str, str]:
    pairs = [pair for keyword, rest in dockerfile() if keyword == "ENV" for pair in shlex.split(rest)]
    return dict(pair.split("=", 1) for pair in pairs)


def healthcheck_command() -> list[str]:
    command: list[str] = json.loads(only("HEALTHCHECK").partition(" CMD ")[2])
    return command


def test_dockerfile_runs_serve_as_a_user_with_its_data_in_a_volume() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    keywords = [keyword for keyword, _ in steps]
    assert keywords.index("USER") < keywords.index("CMD")
    assert only("USER") not in ("root", "0")
    assert json.loads(only("CMD")) == ["promopool", "serve", "--host", "0.0.0.0"]
    assert any(keyword == "RUN" and rest == "pip install ." for keyword, rest in steps)
    database = urlsplit(image_env()["PROMOPOOL_DATABASE_URL"])
    assert database.scheme == "sqlite"
    assert os.path.dirname(database.path.removeprefix("/")) == only("VOLUME")
    command = healthcheck_command()
    assert command[0] == "python" and "/health/ready" in command[-1] and "curl" not in command


def test_the_image_healthcheck_probes_readiness(database_url: str, tmp_path: Path) -> None:
    """The HEALTHCHECK's own command, run as the image runs it: passes against a ready server, fails when
    nothing answers."""
    command = [sys.executable, *healthcheck_command()[1:]]
    with Server(database_url, tmp_path / "server.log") as server:
        server.start()
        env = {**os.environ, "PROMOPOOL_PORT": str(server.port)}
        assert subprocess.run(command, env=env, timeout=10, check=False).returncode == 0
    nobody = {**os.environ, "PROMOPOOL_PORT": str(free_port())}
    failed = subprocess.run(command, env=nobody, timeout=10, capture_output=True, check=False)
    assert failed.returncode != 0


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def test_compose_wires_promopool_to_postgresql() -> None:
    services = compose()["services"]
    postgres, promopool = services["postgres"], services["promopool"]
    assert postgres["image"] == "postgres:15"
    assert promopool["build"] == "."
    url = urlsplit(promopool["environment"]["PROMOPOOL_DATABASE_URL"])
    env = postgres["environment"]
    assert url.scheme == "postgresql" and url.hostname == "postgres"
    assert (url.username, url.password) == (env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
    assert url.path == "/" + env["POSTGRES_DB"]
    assert promopool["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    [volume] = postgres["volumes"]
    name, target = volume.split(":")
    assert name in compose()["volumes"] and target == "/var/lib/postgresql/data"
    assert any(port.endswith(":8080") for port in promopool["ports"])


def unit() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            name, _, value = line.partition("=")
            settings.setdefault(name, []).append(value)
    return settings


def test_the_unit_is_sandboxed() -> None:
    settings = unit()
    assert settings["DynamicUser"] == ["yes"] or settings.get("User", ["root"]) != ["root"]
    for name, value in [("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes")]:
        assert settings[name] == [value], name
    [state] = settings["StateDirectory"]
    assert f"PROMOPOOL_DATABASE_URL=sqlite:///%S/{state}/" in " ".join(settings["Environment"])
    assert settings["ExecStart"][0].endswith("/promopool serve")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: this environment's promopool stands for the one the
    # unit expects in /opt/promopool/venv.
    installed = Path(sys.executable).parent / "promopool"
    text = UNIT.read_text()
    assert "/opt/promopool/venv/bin/promopool" in text
    (tmp_path / UNIT.name).write_text(text.replace("/opt/promopool/venv/bin/promopool", str(installed)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / UNIT.name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
