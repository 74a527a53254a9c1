"""Inline SVG charts for the workspace's pages: no JavaScript, no image files.

Each function returns markup (a jinja2 Markup, safe to place in a template):
the numbers are formatted here and every label is escaped. A chart has a
<title> for screen readers and tooltips on its points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 560, 160
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 34, 8, 10, 22
COLOR = "#2f80ed"


def _frame(title: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>{body}</svg>'
    )


def _axis_label(x: float, y: float, text: str, anchor: str = "middle") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="10" fill="#7b8794" text-anchor="{anchor}">{escape(text)}</text>'


def _gridlines(lo: float, hi: float, ticks: Sequence[float]) -> str:
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = []
    for tick in ticks:
        y = PAD_TOP + plot_h * (1 - (tick - lo) / (hi - lo))
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7eb"/>')
        parts.append(_axis_label(PAD_LEFT - 4, y + 3, f"{tick:g}", "end"))
    return "".join(parts)


def _nice_range(values: Sequence[float]) -> tuple[float, float]:
    """A scale around the values with some room, on round numbers (98.7..101.2 -> 95..105)."""
    low, high = min(values), max(values)
    pad = max((high - low) * 0.2, abs(high) * 0.02, 1.0)
    step = 10 ** math.floor(math.log10(pad))
    return math.floor((low - pad) / step) * step, math.ceil((high + pad) / step) * step


def line(
    points: Sequence[tuple[date, float | None]], title: str, lo: float | None = None, hi: float | None = None
) -> Markup:
    """A line over days (missing values break the line), on lo..hi (by default: around the values)."""
    known = [(d, v) for d, v in points if v is not None]
    if not known:
        return _frame(title, _axis_label(WIDTH / 2, HEIGHT / 2, "-"))
    if lo is None or hi is None:
        lo, hi = _nice_range([float(v) for _, v in known])
    first, last = known[0][0], known[-1][0]
    span = max((last - first).days, 1)
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def xy(d: date, v: float) -> tuple[float, float]:
        v = min(max(float(v), lo), hi)
        return PAD_LEFT + plot_w * (d - first).days / span, PAD_TOP + plot_h * (1 - (v - lo) / (hi - lo))

    segments: list[list[tuple[float, float]]] = [[]]
    for d, v in points:
        if v is None:
            segments.append([])
        else:
            segments[-1].append(xy(d, v))
    paths = "".join(
        f'<polyline fill="none" stroke="{COLOR}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in seg)}"/>'
        for seg in segments
        if seg
    )
    x, y = xy(*known[-1])
    dot = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{COLOR}"><title>{escape(f"{known[-1][0]}: {known[-1][1]:g}")}</title></circle>'
    labels = _axis_label(PAD_LEFT, HEIGHT - 6, str(first), "start") + _axis_label(
        WIDTH - PAD_RIGHT, HEIGHT - 6, str(last), "end"
    )
    return _frame(title, _gridlines(lo, hi, (lo, round((lo + hi) / 2, 6), hi)) + paths + dot + labels)


def bars(values: Sequence[tuple[date, float]], title: str) -> Markup:
    """One bar per period (weeks of usage), scaled to the largest."""
    if not values:
        return _frame(title, _axis_label(WIDTH / 2, HEIGHT / 2, "-"))
    top = max((float(v) for _, v in values), default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / len(values)
    parts = [_gridlines(0, top, (0, top))]
    for i, (d, v) in enumerate(values):
        h = plot_h * float(v) / top
        x = PAD_LEFT + i * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{PAD_TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" fill="{COLOR}">'
            f"<title>{escape(f'{d}: {float(v):g}')}</title></rect>"
        )
    parts.append(_axis_label(PAD_LEFT, HEIGHT - 6, str(values[0][0]), "start"))
    parts.append(_axis_label(WIDTH - PAD_RIGHT, HEIGHT - 6, str(values[-1][0]), "end"))
    return _frame(title, "".join(parts))
