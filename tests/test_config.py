"""Typed settings: sources in order, and a bad value fails naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promopool.config import ConfigError, Settings, documented_settings


def test_defaults() -> None:
    settings = Settings.load(environ={})
    assert settings.database_url == "sqlite:///promopool.db"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, 1)


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "promopool.toml"
    config.write_text('port = 9000\nworkers = 3\ndatabase_url = "postgresql://db/promo"\n')
    env = {"PROMOPOOL_CONFIG": str(config), "PROMOPOOL_WORKERS": "5"}
    settings = Settings.load(environ=env, overrides={"port": 9100, "host": None})
    assert (settings.port, settings.workers, settings.database_url) == (9100, 5, "postgresql://db/promo")


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"PROMOPOOL_PORT": "eighty"}, "PROMOPOOL_PORT"),
        ({"PROMOPOOL_PORT": "70000"}, "port"),
        ({"PROMOPOOL_WORKERS": "0"}, "workers"),
        ({"PROMOPOOL_DATABASE_URL": "mysql://x"}, "database_url"),
        ({"PROMOPOOL_LOG_LEVEL": "loud"}, "log_level"),
        ({"PROMOPOOL_IDEMPOTENCY_TTL_HOURS": "1"}, "idempotency_ttl_hours"),
        ({"PROMOPOOL_AUTH_CACHE_SECONDS": "soon"}, "PROMOPOOL_AUTH_CACHE_SECONDS"),
        ({"PROMOPOOL_METRICS_TOKEN": " "}, "metrics_token"),
        # a standby would take no claim: promopool connects to the primary among the hosts
        ({"PROMOPOOL_DATABASE_URL": "postgresql://h1,h2/db?target_session_attrs=standby"}, "database_url"),
    ],
)
def test_bad_value_names_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Settings.load(environ=environ)


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "promopool.toml"
    config.write_text("prot = 80\n")
    with pytest.raises(ConfigError, match="prot: unknown setting"):
        Settings.load(environ={}, file=config)


def non_default(name: str, default: object) -> object:
    """A valid value other than the default, for any setting (a new kind of setting needs a line here)."""
    special: dict[str, object] = {
        "database_url": "postgresql://db-host/promopool",
        "host": "0.0.0.0",
        "log_level": "debug",
        "max_keyspace_fill": 1e-3,
        "header_timeout_seconds": 45.0,
    }
    if name in special:
        return special[name]
    if isinstance(default, bool):
        return not default
    if isinstance(default, int | float):
        return default * 2 + 1
    if default is None:  # the optional secrets and tokens
        return "s" * 40
    raise AssertionError(f"no non-default value for {name} = {default!r}: add one to this test")


def toml_value(value: object) -> str:
    return json.dumps(value) if isinstance(value, str | bool) else repr(value)


def test_a_server_hands_every_setting_of_its_config_file_to_its_workers(tmp_path: Path) -> None:
    """Each setting, given a non-default value in a config file, arrives in a worker as given: the way
    `promopool serve` hands them over (``worker_environ``) and the way a worker reads them (``of_worker``)."""
    wanted = {name: non_default(name, default) for name, default, _ in documented_settings()}
    config = tmp_path / "promopool.toml"
    config.write_text("".join(f"{name} = {toml_value(value)}\n" for name, value in wanted.items()))
    resolved = Settings.load(environ={}, file=config)
    worker = Settings.of_worker({"PATH": "/usr/bin", **resolved.worker_environ()})
    assert {name: getattr(worker, name) for name in wanted} == wanted
