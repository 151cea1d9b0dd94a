"""Typed settings: sources in order, and a bad value fails naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from promopool.config import ConfigError, Settings


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
