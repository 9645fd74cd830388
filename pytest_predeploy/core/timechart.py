"""A small time-series chart as inline SVG: one line per series over time, threshold lines and
phase markers. No script and no external resource, so the Markdown baseline and the HTML report
stay self-contained; every number drawn is also written out as text in the same document.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from html import escape

_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_WIDTH, _HEIGHT, _LEFT, _TOP, _RIGHT, _BOTTOM = 560, 200, 64, 22, 12, 36
#: More series than this are drawn as the first ones and a note: a chart with dozens of lines reads as none.
MAX_SERIES = 8


@dataclass
class Line:
    """One series: its legend label and its (time, value) points; None values break the line."""

    label: str
    points: list[tuple[datetime, float | None]] = field(default_factory=list)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def time_series_svg(
    title: str,
    lines: list[Line],
    *,
    thresholds: list[tuple[str, float]] | None = None,
    markers: list[tuple[str, datetime]] | None = None,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
) -> str:
    """Render ``lines`` over time with dashed ``thresholds`` (label, value) and vertical phase
    ``markers`` (label, time). Without any finite value the chart says "no data" instead of
    drawing an empty axis that could read as zero."""
    thresholds = thresholds or []
    markers = markers or []
    shown = lines[:MAX_SERIES]
    times = [t for line in shown for t, v in line.points if _finite(v)] + [t for _, t in markers]
    values = [v for line in shown for _, v in line.points if v is not None and _finite(v)]
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    legend_rows = (len(shown) + 2) // 3
    height = _HEIGHT + 8 + 16 * legend_rows + (14 if len(lines) > MAX_SERIES else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="predeploy-chart" width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="11" role="img">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{_WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{_LEFT}" y="14" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    if not values or not times:
        out.append(f'<text x="{_LEFT + plot_w / 2}" y="{_TOP + plot_h / 2}" text-anchor="middle" fill="#cf222e">no data</text>')
        out.append("</svg>")
        return "\n".join(out)
    t0, t1 = min(times), max(times)
    span = (t1 - t0).total_seconds() or 1.0
    low = min(values + [v for _, v in thresholds] + [0.0])
    high = max(values + [v for _, v in thresholds])
    if high == low:
        high = low + (abs(low) or 1.0)
    high += (high - low) * 0.1

    def x_of(t: datetime) -> float:
        return _LEFT + plot_w * (t - t0).total_seconds() / span

    def y_of(v: float) -> float:
        return _TOP + plot_h - plot_h * (v - low) / (high - low)

    out.append(f'<text x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end" font-size="9">{escape(fmt(high))}</text>')
    out.append(f'<text x="{_LEFT - 4}" y="{_TOP + plot_h}" text-anchor="end" font-size="9">{escape(fmt(low))}</text>')
    out.append(f'<text x="{_LEFT}" y="{_TOP + plot_h + 12}" font-size="9">{t0.strftime("%H:%M:%S")}</text>')
    out.append(f'<text x="{_LEFT + plot_w}" y="{_TOP + plot_h + 12}" text-anchor="end" font-size="9">{t1.strftime("%H:%M:%S")}</text>')
    for index, (label, when) in enumerate(markers):
        x = x_of(when)
        out.append(f'<line class="marker" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_h}" stroke="#888" stroke-dasharray="2 2"/>')
        out.append(f'<text x="{x:.1f}" y="{_TOP + plot_h + 22 + 10 * (index % 2)}" text-anchor="middle" font-size="9">{escape(label)}</text>')
    for label, value in thresholds:
        y = y_of(value)
        out.append(f'<line class="threshold" x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" stroke="#d62728" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{_LEFT + plot_w - 2}" y="{y - 3:.1f}" text-anchor="end" font-size="9" fill="#d62728">{escape(label)} {escape(fmt(value))}</text>')
    for index, line in enumerate(shown):
        colour = _COLOURS[index % len(_COLOURS)]
        segment: list[str] = []
        for when, reading in [*line.points, (t1, None)]:
            if reading is None or not _finite(reading):
                if len(segment) > 1:
                    out.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="{colour}" stroke-width="2"/>')
                elif len(segment) == 1:
                    cx, cy = segment[0].split(",")
                    out.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colour}"/>')
                segment = []
                continue
            segment.append(f"{x_of(when):.1f},{y_of(reading):.1f}")
        x = _LEFT + (index % 3) * 170
        y = _HEIGHT + 12 + 16 * (index // 3)
        out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{x + 22}" y="{y}">{escape(line.label[:28])}</text>')
    if len(lines) > MAX_SERIES:
        out.append(
            f'<text x="{_LEFT}" y="{height - 4}" font-size="9">first {MAX_SERIES} of {len(lines)} series shown; all values are in the JSON export</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
