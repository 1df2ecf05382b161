"""A server-rendered SVG bar chart of daily spend. Pure: no I/O, no JavaScript, nothing fetched.

The chart is an image to assistive technology (`role="img"`) named by its `<title>` and described by its
`<desc>`, which states every day's figure, the total and the highest day, so nothing is only visual.
Each bar also carries its own `<title>` (a tooltip on hover). Colours come from app.css classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from html import escape

from markupsafe import Markup

from classroom.budget.policy import money

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 62, 24, 12, 52  # room for the y labels, the x labels and the axis titles
STEPS = (Decimal(1), Decimal(2), Decimal(4), Decimal(5))  # times a power of ten: quarters are whole cents
SUB_DOLLAR = tuple(Decimal(x) for x in ("0.04", "0.08", "0.20", "0.40", "0.80"))


@dataclass(frozen=True)
class Bar:
    """One day's figure."""

    day: date
    amount: Decimal


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest round axis maximum at least `value` whose quarters are whole cents ($1 for nothing spent)."""
    if value <= 0:
        return Decimal(1)
    for candidate in SUB_DOLLAR:
        if candidate >= value:
            return candidate
    power = 0
    while True:
        for step in STEPS:
            if step.scaleb(power) >= value:
                return step.scaleb(power)
        power += 1


def _day(d: date) -> str:
    return f"{d:%b} {d.day}"


def describe(bars: Sequence[Bar]) -> str:
    """The chart in words: the period, every day's figure, the total and the highest day."""
    if not bars:
        return "No days to show."
    total = sum((b.amount for b in bars), Decimal(0))
    top = max(bars, key=lambda b: (b.amount, b.day))
    days = "; ".join(f"{_day(b.day)}: {money(b.amount)}" for b in bars)
    highest = f"highest {money(top.amount)} on {_day(top.day)}" if top.amount > 0 else "nothing spent"
    return (
        f"Spend per day from {_day(bars[0].day)} to {_day(bars[-1].day)}, {len(bars)} days. "
        f"Total {money(total)}; {highest}. {days}."
    )


def _y_axis(scale: Decimal, plot_h: float) -> list[str]:
    parts = [f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h:.2f}"/>']
    for i in range(5):
        value = scale * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.2f}" x2="{WIDTH - RIGHT}" y2="{y:.2f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.2f}" text-anchor="end">{money(value)}</text>')
    middle = TOP + plot_h / 2
    parts.append(
        f'<text class="axis-title" x="14" y="{middle:.2f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {middle:.2f})">Dollars per day</text>'
    )
    return parts


def _bars(bars: Sequence[Bar], scale: Decimal, plot_w: float, plot_h: float) -> list[str]:
    slot = plot_w / len(bars)
    width = max(slot * 0.7, 1.0)
    base = TOP + plot_h
    parts = [f'<line class="axis" x1="{LEFT}" y1="{base:.2f}" x2="{WIDTH - RIGHT}" y2="{base:.2f}"/>']
    label_every = max(1, round(len(bars) / 6))
    for i, b in enumerate(bars):
        h = float(b.amount / scale) * plot_h if b.amount > 0 else 0.0
        x = LEFT + i * slot + (slot - width) / 2
        parts.append(
            f'<rect class="bar" x="{x:.2f}" y="{base - h:.2f}" width="{width:.2f}" height="{h:.2f}">'
            f"<title>{escape(_day(b.day))}: {money(b.amount)}</title></rect>"
        )
        if (len(bars) - 1 - i) % label_every == 0:  # always label the last day (today)
            cx = LEFT + i * slot + slot / 2
            parts.append(
                f'<text class="tick" x="{cx:.2f}" y="{base + 16:.2f}" text-anchor="middle">{_day(b.day)}</text>'
            )
    parts.append(
        f'<text class="axis-title" x="{LEFT + plot_w / 2:.2f}" y="{HEIGHT - 8}" text-anchor="middle">'
        "Day (course time)</text>"
    )
    return parts


def daily_spend_chart(bars: Sequence[Bar], *, title: str, id_prefix: str = "spend") -> Markup:
    """An accessible SVG bar chart, one bar per day, scaled to a round maximum; safe to insert in a page."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    scale = nice_ceiling(max((b.amount for b in bars), default=Decimal(0)))
    ids = escape(id_prefix, quote=True)
    body = _y_axis(scale, plot_h) + (_bars(bars, scale, plot_w, plot_h) if bars else [])
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" role="img" '
        f'aria-labelledby="{ids}-title" aria-describedby="{ids}-desc">'
        f'<title id="{ids}-title">{escape(title)}</title>'
        f'<desc id="{ids}-desc">{escape(describe(bars))}</desc>' + "".join(body) + "</svg>"
    )
    return Markup(svg)  # noqa: S704 - every piece of text above is escaped or a formatted number
