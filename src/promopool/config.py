"""Typed settings from (lowest to highest) defaults, a TOML file, ``PROMOPOOL_*`` environment variables and
command-line flags. A bad value stops the start with a message naming the key."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from promopool.storage import DEFAULT_DATABASE_URL, SUPPORTED_ENGINES

ENV_PREFIX = "PROMOPOOL_"
CONFIG_FILE_ENV = "PROMOPOOL_CONFIG"
# Set by `promopool serve` for its worker processes: the pid of the process that started them.
SERVER_PID_ENV = ENV_PREFIX + "SERVER_PID"
# Set by `promopool serve` for its worker processes: every setting as it resolved them (file, environment,
# flags), in one JSON object, so that a worker runs with exactly the server's settings, new ones included.
SERVE_SETTINGS_ENV = ENV_PREFIX + "SERVE_SETTINGS"
MIB = 1024 * 1024
MIN_SECRET_LENGTH = 32


class ConfigError(ValueError):
    """A setting has a bad value; the message names the key."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    """Where the data lives: sqlite:///path.db (default ./promopool.db) or postgresql://user@host/db."""
    host: str = "127.0.0.1"
    """Address the server listens on."""
    port: int = 8080
    """Port the server listens on."""
    workers: int = 1
    """Server worker processes. SQLite is fastest with 1 (one writer); PostgreSQL scales with more."""
    max_body_mib: int = 16
    """Largest JSON request body, in MiB; larger ones get 413 before being read."""
    max_import_mib: int = 4096
    """Largest streamed text/CSV upload to the import endpoint, in MiB."""
    idempotency_ttl_hours: int = 24
    """How long an Idempotency-Key is remembered (at least)."""
    auth_cache_seconds: float = 5.0
    """How long a verified API key is trusted without asking the database again."""
    db_pool_size: int = 10
    """Database connections per worker (PostgreSQL)."""
    lock_timeout_seconds: float = 5.0
    """Longest wait for a database lock (a pool's row, SQLite's write lock); then 503 `storage_busy`."""
    log_level: str = "info"
    """Server log level: debug, info, warning, error."""
    access_log: bool = False
    """Log one JSON line per HTTP request (method, route, status, duration, request id)."""
    session_secret: str | None = None
    """Signs admin session cookies (32+ chars). Unset: random per `promopool serve`; restart signs out."""
    guess_budget: int = 100
    """Failed validate/redeem attempts per API key and per client address before 429, per server; 0: off."""
    guess_window_seconds: int = 60
    """Seconds in which a spent guess budget refills completely (evenly)."""
    max_keyspace_fill: float = 1e-6
    """Largest share of a pattern's possible codes a pool may hold: the chance a random guess hits one."""
    personaclick_max_body_mib: int = 64
    """Largest PersonaClick upload body (`POST /promo_codes`, JSON), in MiB; larger ones get 413."""
    public_fetch_per_minute: int = 60
    """PersonaClick front-end fetches per client address and minute, then 429, per server; 0: off."""
    header_timeout_seconds: float = 30.0
    """Time a client has to send a request's headers; also how long an idle connection stays open (max 60)."""
    body_timeout_seconds: float = 30.0
    """Longest wait for the next part of a request body; then 408 and the connection is closed."""
    max_requests: int = 1000
    """Requests in progress per worker; beyond it a request gets 503 with Retry-After at once."""
    metrics_token: str | None = None
    """Set: `/metrics` needs `Authorization: Bearer <token>` (else 401). Unset: open to all who reach it."""
    metrics_max_pools: int = 1000
    """Pools whose stock `/metrics` reports (the first by id): bounds its series; the rest are counted."""

    def __post_init__(self) -> None:
        for name, low in (
            ("port", 1),
            ("workers", 1),
            ("max_body_mib", 1),
            ("max_import_mib", 1),
            ("idempotency_ttl_hours", 24),
            ("db_pool_size", 1),
            ("guess_budget", 0),
            ("guess_window_seconds", 1),
            ("personaclick_max_body_mib", 1),
            ("public_fetch_per_minute", 0),
            ("max_requests", 1),
            ("metrics_max_pools", 0),
        ):
            if getattr(self, name) < low:
                raise ConfigError(f"{name}: must be at least {low}, got {getattr(self, name)}")
        if self.port > 65535:
            raise ConfigError(f"port: must be at most 65535, got {self.port}")
        if not 0.001 <= self.header_timeout_seconds <= 60:  # the server's (granian's) range
            raise ConfigError(
                f"header_timeout_seconds: must be in [0.001, 60], got {self.header_timeout_seconds}"
            )
        if self.body_timeout_seconds <= 0:
            raise ConfigError(f"body_timeout_seconds: must be positive, got {self.body_timeout_seconds}")
        if self.auth_cache_seconds < 0:
            raise ConfigError("auth_cache_seconds: must not be negative")
        if not self.lock_timeout_seconds > 0:
            raise ConfigError(f"lock_timeout_seconds: must be positive, got {self.lock_timeout_seconds}")
        scheme = self.database_url.partition(":")[0]
        if scheme not in SUPPORTED_ENGINES:
            raise ConfigError(
                f"database_url: unsupported scheme {scheme!r}; use sqlite:///path.db or postgresql://…"
            )
        _check_session_attrs(self.database_url)
        if self.session_secret is not None and len(self.session_secret) < MIN_SECRET_LENGTH:
            raise ConfigError(f"session_secret: must be at least {MIN_SECRET_LENGTH} characters")
        if self.metrics_token is not None and not self.metrics_token.strip():
            raise ConfigError("metrics_token: must not be empty (leave it unset to keep /metrics open)")
        if not 0 < self.max_keyspace_fill <= 1:
            raise ConfigError(f"max_keyspace_fill: must be in (0, 1], got {self.max_keyspace_fill}")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"log_level: must be debug, info, warning or error, got {self.log_level!r}")

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_mib * MIB

    @property
    def personaclick_max_body_bytes(self) -> int:
        return self.personaclick_max_body_mib * MIB

    @property
    def max_import_bytes(self) -> int:
        return self.max_import_mib * MIB

    @classmethod
    def load(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        file: str | Path | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        path = file or environ.get(CONFIG_FILE_ENV)
        if path:
            values.update(_from_file(Path(path)))
        for field in fields(cls):
            raw = environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _coerce(ENV_PREFIX + field.name.upper(), field.type, raw)
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return replace(cls(), **values)

    def worker_environ(self) -> dict[str, str]:
        """What `promopool serve` puts in its workers' environment: these settings, whole."""
        return {SERVE_SETTINGS_ENV: msgspec.json.encode(self).decode()}

    @classmethod
    def of_worker(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """A server worker's settings: those its `promopool serve` resolved (``worker_environ``); outside
        of one, as ``load`` finds them."""
        environ = os.environ if environ is None else environ
        handed = environ.get(SERVE_SETTINGS_ENV)
        if handed is None:
            return cls.load(environ=environ)
        return msgspec.json.decode(handed, type=cls)


# What a PostgreSQL URL may ask of the server it connects to: promopool writes, so never a standby.
WRITABLE_SESSION_ATTRS = ("read-write", "primary", "any")


def _check_session_attrs(url: str) -> None:
    if not url.startswith("postgres"):
        return
    wanted = [v for k, v in parse_qsl(urlsplit(url).query) if k == "target_session_attrs"]
    for value in wanted:
        if value not in WRITABLE_SESSION_ATTRS:
            raise ConfigError(
                f"database_url: target_session_attrs={value} would connect to a server that takes no"
                " writes; use read-write (the primary among the hosts)"
            )


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    known = {f.name: f for f in fields(Settings)}
    out = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{key}: unknown setting in {path}")
        out[key] = _coerce(key, known[key].type, str(value) if not isinstance(value, str) else value)
    return out


def _coerce(key: str, kind: Any, raw: str) -> Any:
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind == "bool":
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {raw!r}")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ConfigError(f"{key}: expected a number, got {raw!r}") from None
    return raw


def documented_settings() -> list[tuple[str, Any, str]]:
    """(name, default, description) of every setting, for the README table and its test."""
    import ast
    import inspect

    source = inspect.getsource(Settings)
    docs: dict[str, str] = {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    for node, after in zip(body.body, body.body[1:], strict=False):
        documented = isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and documented:
            docs[node.target.id] = str(after.value.value)  # type: ignore[attr-defined]
    return [
        (f.name, None if f.default is MISSING else f.default, docs.get(f.name, "")) for f in fields(Settings)
    ]
