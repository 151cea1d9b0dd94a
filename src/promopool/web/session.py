"""Admin sessions: a signed cookie, and CSRF tokens bound to it.

The cookie holds ``<payload>.<signature>``: the payload (base64 JSON) names the account, the digest of the
API key used to sign in (the session ends when that key is removed) and an expiry; the signature is
HMAC-SHA256 under the server's ``session_secret``. It is HttpOnly and SameSite=Strict, scoped to /admin,
Secure when the request came over https.

Every form carries a CSRF token, an HMAC of the session payload (so it changes with every sign-in and is
useless without the cookie); uploads send it as ``X-CSRF-Token``. The sign-in form, before any session, is
protected the same way by a short-lived random cookie (double submit).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

SESSION_COOKIE = "promopool_session"
LOGIN_COOKIE = "promopool_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/admin"
SESSION_SECONDS = 12 * 3600
LOGIN_SECONDS = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    account_id: int
    key_hash: str
    expires: int
    payload: str  # the signed text; CSRF tokens derive from it


class Signer:
    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    def _mac(self, purpose: str, text: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}:{text}".encode(), hashlib.sha256).digest())

    def open_session(self, *, account_id: int, key_hash: str, now: float | None = None) -> str:
        """A cookie value for a new session."""
        expires = int((now or time.time()) + SESSION_SECONDS)
        body = {"a": account_id, "k": key_hash, "e": expires, "n": secrets.token_hex(8)}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._mac('session', payload)}"

    def session(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session a cookie value carries, or None when it is absent, forged or expired."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._mac("session", payload)):
            return None
        try:
            body = json.loads(_unb64(payload))
            session = Session(int(body["a"]), str(body["k"]), int(body["e"]), payload)
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return session if session.expires > (now or time.time()) else None

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.payload)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.csrf_token(session))

    # The sign-in form, before there is a session.
    def login_nonce(self) -> str:
        return secrets.token_urlsafe(16)

    def login_token(self, nonce: str) -> str:
        return self._mac("login", nonce)

    def login_ok(self, nonce: str | None, token: str | None) -> bool:
        return bool(nonce) and token is not None and hmac.compare_digest(token, self.login_token(nonce or ""))
