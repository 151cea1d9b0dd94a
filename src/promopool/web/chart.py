"""Geometry of the pool page's activity chart (an inline SVG drawn by the template: no script, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass

from promopool.domain.alerts import ActivityPoint

WIDTH = 760
HEIGHT = 180
LEFT = 44  # room for the y-axis labels
BOTTOM = 22  # room for the day labels
TOP = 8
LABEL_WIDTH = 44


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    claims_y: float
    claims_h: float
    redemptions_y: float
    redemptions_h: float
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    left: int
    base: float  # y of the x axis
    top: int
    peak: int  # the y axis' top value
    bars: list[Bar]
    days: list[Tick]
    total_claims: int
    total_redemptions: int


def _nice(value: int) -> int:
    """The smallest 1/2/5 x 10^n at least ``value`` (a readable axis top)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def activity_chart(points: list[ActivityPoint]) -> Chart:
    """Claims (bars) and redemptions (narrower bars in front) per hour."""
    peak = _nice(max([1, *(max(p.claims, p.redemptions) for p in points)]))
    base = HEIGHT - BOTTOM
    span = base - TOP
    slot = (WIDTH - LEFT) / max(len(points), 1)
    bars, days = [], []
    for i, p in enumerate(points):
        x = LEFT + i * slot
        ch = span * p.claims / peak
        rh = span * p.redemptions / peak
        title = f"{p.hour:%a %d %b %H:00} UTC: {p.claims} claimed, {p.redemptions} redeemed"
        bars.append(Bar(x, max(slot - 0.6, 0.6), base - ch, ch, base - rh, rh, title))
        if p.hour.hour == 0 and x < WIDTH - LABEL_WIDTH:  # a label that would be cut off is left out
            days.append(Tick(x, f"{p.hour:%a %d}"))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        base=base,
        top=TOP,
        peak=peak,
        bars=bars,
        days=days,
        total_claims=sum(p.claims for p in points),
        total_redemptions=sum(p.redemptions for p in points),
    )
