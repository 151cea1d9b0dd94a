"""The signed-in admin of a request, apart from the pages so that any page module can name it without
importing ``pages.py`` (which imports them)."""

from __future__ import annotations

from promopool.domain import Account, ApiKeyInfo
from promopool.domain.errors import Forbidden
from promopool.web.session import Session, Signer


class Admin:
    """The signed-in account of a request (as its key may act on it), the key, and the CSRF token."""

    def __init__(self, account: Account, key: ApiKeyInfo, session: Session, signer: Signer) -> None:
        self.account = account
        self.key = key  # the API key this session was opened with
        self.session = session
        self.csrf = signer.csrf_token(session)
        self._signer = signer

    def check(self, token: str | None) -> None:
        if not self._signer.csrf_ok(self.session, token):
            raise Forbidden("the form has expired or did not come from this site: reload the page and retry")
