"""A database that cannot be opened, said in one line: which one (its URL without the password), the
driver's reason, and what to do about it. Raised as StorageUnavailable by each engine's ``connect``; the CLI
prints the message as it is (a typo in the URL used to print a 170-line traceback).

No driver is imported here: PostgreSQL's errors are told apart by their SQLSTATE.
"""

from __future__ import annotations

import os
import tempfile
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from promopool.domain.errors import StorageUnavailable

FIX = "fix PROMOPOOL_DATABASE_URL"
SECRET_PARAMETERS = {"password", "sslpassword"}


def safe_url(url: str) -> str:
    """``url`` without its password, in the authority or as a query parameter."""
    if not _secrets(url):
        return url  # as given (re-joining would turn sqlite://// into sqlite://)
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}@{hosts}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(name.lower() in SECRET_PARAMETERS for name, _ in pairs):
        query = urlencode([(name, value) for name, value in pairs if name.lower() not in SECRET_PARAMETERS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets(url: str) -> list[str]:
    parts = urlsplit(url)
    found = [unquote(parts.password)] if parts.password else []
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return found + [value for name, value in pairs if name.lower() in SECRET_PARAMETERS and value]


def cannot_open(engine: str, url: str, exc: BaseException, hint: str) -> StorageUnavailable:
    """The error for a database of ``engine`` at ``url`` that ``exc`` kept from opening."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in _secrets(url):  # should a driver ever quote it back
        reason = reason.replace(secret, "***")
    return StorageUnavailable(f"cannot open {engine} database {safe_url(url)}: {reason} — {hint}")


def postgres_hint(url: str, exc: BaseException) -> str:
    """What to do about ``exc``, raised while connecting to the PostgreSQL database at ``url``."""
    parts = urlsplit(url)
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate == "3D000":  # invalid_catalog_name
        name = unquote(parts.path.lstrip("/")) or "NAME"
        return f"create it (createdb {name}) or {FIX}"
    if sqlstate == "28P01":  # invalid_password
        return "fix the password in PROMOPOOL_DATABASE_URL"
    if sqlstate == "28000":  # invalid_authorization_specification: no such role, or refused by pg_hba.conf
        if "does not exist" in str(exc):
            return f"create the role (createuser {unquote(parts.username or 'NAME')}) or {FIX}"
        return f"allow the connection in the server's pg_hba.conf or {FIX}"
    if sqlstate in ("57P03", "53300"):  # starting up or shutting down; too many connections
        return "try again in a moment"
    if type(exc).__name__ == "TargetServerAttributeNotMatched":  # asyncpg's, for target_session_attrs
        return f"no writable primary among the hosts: promote a standby (or wait for the failover), or {FIX}"
    if isinstance(exc, OSError | TimeoutError):
        return f"start PostgreSQL there, or {FIX} (host and port)"
    return FIX


def sqlite_hint(path: str, exc: BaseException) -> str:
    """What to do about ``exc``, raised while opening the SQLite database file at ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    if "not a database" in str(exc):
        return f"{path} is some other file: {FIX} (a new path makes a new database)"
    if os.path.isdir(path):
        return f"{path} is a directory: {FIX}"
    if not os.path.isdir(directory):
        return f"the directory {directory} does not exist: create it (mkdir -p {directory}) or {FIX}"
    try:  # the sure test (permissions, a read-only file system), and only on this failure path
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as cause:
        return f"cannot write in {directory} ({cause.strerror}): make it writable by this user or {FIX}"
    return FIX
