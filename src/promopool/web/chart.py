"""Geometry of the pool page's activity chart, drawn as inline SVG by ``chart.html`` (no script, no CDN).

Three panels share one time axis: claims with redemptions in front, imports, and the available stock as a
line that runs on, dashed, into a forecast zone at the right at the recent claim rate. Each panel has its own
scale (imports come in thousands, claims in ones). The page draws the chart twice, for a wide and a narrow
viewport (``WIDE``, ``NARROW``), so that labels keep their size on a phone instead of shrinking with the
picture; CSS shows one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from promopool.service.activity import RANGES, ActivitySeries, Bucket

WIDE = 760
NARROW = 330
LEFT = 46  # room for the y-axis labels
RIGHT = 10
TITLE = 16  # a panel's title line
PANEL = 64  # a panel's plot height
GAP = 10
AXIS = 20  # room for the time labels
FORECAST = 0.2  # of the plot's width, right of "now"
CHAR = 6.4  # a label character's width at the tick font size, for keeping labels apart
LABEL_GAP = 8


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    width: float
    y: float
    height: float
    front_y: float  # the narrower bar in front (redemptions); height 0 for none
    front_height: float
    title: str


@dataclass(frozen=True, slots=True)
class Panel:
    key: str  # the CSS class of its marks
    title: str
    top: float  # y of the plot's top
    base: float  # y of its zero line
    peak: int  # the value at ``top``
    bars: list[Bar]


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    label: str
    anchor: str = "start"  # SVG text-anchor
    today: bool = False


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    left: int
    right: float  # x of the plot's right edge
    now_x: float
    bottom: float  # y of the last panel's base (the ticks hang below it)
    panels: list[Panel]
    stock: Panel
    stock_line: str  # SVG points, oldest first, ending now
    forecast_line: str  # SVG points from now on: "" when nothing is being claimed
    runout: Tick | None  # where the forecast reaches zero, within the chart
    ticks: list[Tick]
    today_x: float  # where today's span starts (a band behind it)
    hourly: bool


def nice(value: int) -> int:
    """The smallest 1/2/5 x 10^n at least ``value`` (a readable axis top)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _when(bucket: Bucket, hourly: bool) -> str:
    return f"{bucket.start:%a %d %b %H:00} UTC" if hourly else f"{bucket.start:%a %d %b} (UTC)"


class _Axis:
    def __init__(self, series: ActivitySeries, width: int) -> None:
        self.start = series.buckets[0].start
        self.span = series.buckets[0].span
        self.count = len(series.buckets)
        plot = width - LEFT - RIGHT
        self.slot = plot * (1 - FORECAST) / self.count
        self.right = float(width - RIGHT)

    def x(self, moment: datetime) -> float:
        return LEFT + (moment - self.start) / self.span * self.slot

    def moment(self, x: float) -> datetime:
        return self.start + self.span * ((x - LEFT) / self.slot)


def _panel(key: str, title: str, top: float, values: list[tuple[int, int, str]], axis: _Axis) -> Panel:
    """Bars of (value, front value, tooltip) per bucket."""
    peak = nice(max([1, *(max(v, f) for v, f, _ in values)]))
    base = top + PANEL
    bars = []
    for i, (value, front, title_text) in enumerate(values):
        height, front_height = PANEL * value / peak, PANEL * front / peak
        width = max(axis.slot - (1 if axis.slot > 3 else 0.3), 0.6)
        x = LEFT + i * axis.slot
        bars.append(Bar(x, width, base - height, height, base - front_height, front_height, title_text))
    return Panel(key, title, top, base, peak, bars)


def _ticks(series: ActivitySeries, axis: _Axis, width: int) -> tuple[list[Tick], float]:
    """Day labels along the axis, today's always kept (and kept inside the picture); where today starts."""
    today = series.now.replace(hour=0, minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    wanted = (len(f"{today:%a %d}") * CHAR + LABEL_GAP) if width >= WIDE else (3 * CHAR + LABEL_GAP)
    every = 1
    while axis.slot * (24 if axis.span < day else 1) * every < wanted:
        every += 1
    first = axis.start.replace(hour=0)
    labels: list[Tick] = []
    moment = first + day if first < axis.start else first
    end = axis.moment(axis.right)
    while moment < end:
        x = axis.x(moment)
        if moment == today:
            label_width = len("today") * CHAR
            anchor = "end" if x + label_width > axis.right else "start"
            labels.append(Tick(axis.right if anchor == "end" else x, "today", anchor, today=True))
        elif (moment - first).days % every == 0:
            text = f"{moment:%a %d}" if width >= WIDE else f"{moment:%d}"
            if x + len(text) * CHAR + LABEL_GAP <= axis.right:  # one that would be cut off is left out
                labels.append(Tick(x, text))
        moment += day
    return _apart(labels), axis.x(today)


def _apart(labels: list[Tick]) -> list[Tick]:
    """The labels, dropping any that would overlap one kept before it; today's is never dropped."""

    def extent(tick: Tick) -> tuple[float, float]:
        width = len(tick.label) * CHAR
        return (tick.x - width, tick.x) if tick.anchor == "end" else (tick.x, tick.x + width)

    kept = [t for t in labels if t.today]
    for tick in labels:
        if tick.today:
            continue
        low, high = extent(tick)
        if all(high + LABEL_GAP <= extent(k)[0] or low >= extent(k)[1] + LABEL_GAP for k in kept):
            kept.append(tick)
    return sorted(kept, key=lambda t: t.x)


def activity_chart(series: ActivitySeries, width: int = WIDE) -> Chart:
    """The chart of ``series`` drawn ``width`` units wide."""
    axis = _Axis(series, width)
    hourly = series.buckets[0].span < timedelta(days=1)
    buckets = series.buckets
    top = float(TITLE)
    claims = _panel(
        "claims",
        "Claims and redemptions" if width >= WIDE else "Claims, redemptions",
        top,
        [
            (b.claims, b.redemptions, f"{_when(b, hourly)}: {b.claims} claimed, {b.redemptions} redeemed")
            for b in buckets
        ],
        axis,
    )
    top = claims.base + GAP + TITLE
    imports = _panel(
        "imports",
        "Codes imported" if width >= WIDE else "Imported",
        top,
        [(b.imports, 0, f"{_when(b, hourly)}: {b.imports} imported") for b in buckets],
        axis,
    )
    top = imports.base + GAP + TITLE
    peak = nice(max([1, series.available, *(b.stock for b in buckets)]))
    title = "Available codes (estimated) and run-out forecast" if width >= WIDE else "Available, forecast"
    stock = Panel("stock", title, top, top + PANEL, peak, [])

    def y(value: float) -> float:
        return stock.base - PANEL * value / peak

    now_x = axis.x(series.now)
    points = [(LEFT + (i + 1) * axis.slot, y(b.stock)) for i, b in enumerate(buckets[:-1])]
    points.append((now_x, y(series.available)))
    forecast, runout = "", None
    if series.trend.claims_per_day > 0 and series.available > 0:
        empty_at = series.now + timedelta(days=series.available / series.trend.claims_per_day)
        end_x = axis.x(empty_at)
        if end_x <= axis.right:
            forecast = f"{now_x:.1f},{y(series.available):.1f} {end_x:.1f},{stock.base:.1f}"
            label = f"runs out {empty_at:%a %d %H:00}"
            anchor = "end" if end_x + len(label) * CHAR > axis.right else "start"
            runout = Tick(end_x, label, anchor)
        else:  # still stocked at the right edge
            days_to_edge = (axis.moment(axis.right) - series.now) / timedelta(days=1)
            left_at_edge = series.available - series.trend.claims_per_day * days_to_edge
            forecast = f"{now_x:.1f},{y(series.available):.1f} {axis.right:.1f},{y(left_at_edge):.1f}"
    ticks, today_x = _ticks(series, axis, width)
    return Chart(
        width=width,
        height=int(stock.base + AXIS),
        left=LEFT,
        right=axis.right,
        now_x=now_x,
        bottom=stock.base,
        panels=[claims, imports],
        stock=stock,
        stock_line=" ".join(f"{px:.1f},{py:.1f}" for px, py in points),
        forecast_line=forecast,
        runout=runout,
        ticks=ticks,
        today_x=max(today_x, LEFT),
        hourly=hourly,
    )


def chart_context(series: ActivitySeries) -> dict[str, Any]:
    """What ``chart.html`` reads: the series, its totals, the chart at both widths, the ranges offered."""
    return {
        "series": series,
        "ranges": RANGES,
        "totals": {
            "claims": sum(b.claims for b in series.buckets),
            "redemptions": sum(b.redemptions for b in series.buckets),
            "imports": sum(b.imports for b in series.buckets),
        },
        "charts": [activity_chart(series, WIDE), activity_chart(series, NARROW)],
    }
