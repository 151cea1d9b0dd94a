"""Templates (Jinja2, autoescaped) from this package's ``templates/`` folder, rendered to HTML responses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from litestar import MediaType, Response

from promopool.web.forms import UTC_HINT, utc_input

# Pages carry the account's data: never cached, never framed, nothing loaded from elsewhere.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"
        " frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
}


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")  # a narrow no-break space groups thousands


def _days(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 365:
        return "over a year"
    if value >= 10:
        return f"{value:.0f} days"
    if value >= 1:
        return f"{value:.1f} days"
    return f"{value * 24:.1f} hours"


ENV = Environment(
    loader=PackageLoader("promopool.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(when=_when, number=_number, days=_days, utc_input=utc_input)
ENV.globals.update(utc_hint=UTC_HINT)


def render(template: str, *, status_code: int = 200, **context: Any) -> Response[str]:
    html = ENV.get_template(template).render(**context)
    return Response(html, status_code=status_code, media_type=MediaType.HTML, headers=SECURITY_HEADERS)
