"""Inline SVG charts for the HTML report: bars with a value axis and a "better" marker, and line
charts with ticked, titled axes. No scripts, so the page reads the same in any browser or mail client.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
# Metric names saying which way is better (checked in order: "refusal_rate" is a rate, higher is better).
_LOWER = re.compile(r"(token|latency|_ms|_s$|seconds|cost|price|loss|error|perplexity|overlap|contamina)", re.I)
_HIGHER = re.compile(r"(rate|score|accuracy|precision|recall|f1|win|pass|bleu|rouge|exact)", re.I)


def _esc(value: Any) -> str:
    return html.escape("NULL" if value is None else str(value))


def better_direction(metric: str) -> str | None:
    """'higher', 'lower' or None (unknown) from the metric's name."""
    if _LOWER.search(metric):
        return "lower"
    if _HIGHER.search(metric):
        return "higher"
    return None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def tick_label(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:g}"


def bar_chart(title: str, labels: list[str], values: list[float], shown: list[str], judge: bool = True,
              plot_w: int = 230) -> str:
    """One horizontal bar per contestant from zero, a ticked value axis and (``judge``) the better
    direction with ★ on the best bar when the metric's name tells it. ``shown``: the values as the
    table prints them. The label column is as wide as the longest label."""
    direction = better_direction(title) if judge else None
    bar_h, gap, right, top = 20, 8, 70, 40
    left = int(min(260, 16 + 6.5 * max((len(label) for label in labels), default=4)))
    width = left + plot_w + right
    ticks = nice_ticks(min(0.0, *values), max(0.0, *values))
    low, high = ticks[0], ticks[-1]

    def sx(v: float) -> float:
        return left + (v - low) / (high - low) * plot_w

    axis_y = top + len(values) * (bar_h + gap)
    height = axis_y + 34
    marker = {"higher": "▲ higher is better", "lower": "▼ lower is better"}.get(direction, "")
    best = (max if direction == "higher" else min)(values) if direction else None
    parts = [f'<svg class="chart bar" width="{width}" height="{height}" role="img" aria-label="{_esc(title)}">',
             f'<text x="0" y="15" class="chart-title">{_esc(title)}</text>',
             f'<text x="0" y="30" class="better">{marker}</text>' if marker else ""]
    for t in ticks:
        parts.append(f'<line x1="{sx(t):.1f}" y1="{top - 4}" x2="{sx(t):.1f}" y2="{axis_y}" class="grid"/>'
                     f'<text x="{sx(t):.1f}" y="{axis_y + 14}" text-anchor="middle" class="tick">{tick_label(t)}</text>')
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_w}" y2="{axis_y}" class="axis"/>')
    for i, (label, value, text) in enumerate(zip(labels, values, shown, strict=True)):
        y = top + i * (bar_h + gap)
        x0, x1 = sorted((sx(0.0), sx(value)))
        star = " ★" if best is not None and value == best else ""
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" class="label">{_esc(label)}</text>'
                     f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="{bar_h}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                     f'<text x="{x1 + 4:.1f}" y="{y + 14}" class="value">{text}{star}</text>')
    parts.append(f'<line x1="{sx(0.0):.1f}" y1="{top - 4}" x2="{sx(0.0):.1f}" y2="{axis_y}" class="axis"/></svg>')
    return "".join(parts)


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], x_title: str, y_title: str,
               width: int = 640, height: int = 280) -> str:
    """Lines over a shared x axis; both axes ticked and titled once, a legend top right."""
    points = [p for s in series.values() for p in s]
    if not points:
        return ""
    left, right, top, bottom = 62, 20, 30, 44
    x_ticks = nice_ticks(min(p[0] for p in points), max(p[0] for p in points), 6)
    y_ticks = nice_ticks(min(p[1] for p in points), max(p[1] for p in points), 5)

    def sx(x: float) -> float:
        return left + (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (height - top - bottom)

    base = height - bottom
    parts = [f'<svg class="chart line" width="{width}" height="{height}" role="img" aria-label="{_esc(title)}">',
             f'<text x="0" y="16" class="chart-title">{_esc(title)}</text>']
    for t in y_ticks:
        parts.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{width - right}" y2="{sy(t):.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">{tick_label(t)}</text>')
    for t in x_ticks:
        parts.append(f'<text x="{sx(t):.1f}" y="{base + 15}" text-anchor="middle" class="tick">{tick_label(t)}</text>')
    parts += [f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" class="axis"/>',
              f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base}" class="axis"/>',
              f'<text x="{(left + width - right) / 2:.0f}" y="{height - 6}" text-anchor="middle" '
              f'class="axis-title">{_esc(x_title)}</text>',
              f'<text transform="translate(14,{(top + base) / 2:.0f}) rotate(-90)" text-anchor="middle" '
              f'class="axis-title">{_esc(y_title)}</text>']
    for i, (name, data) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in data)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>'
                  for x, y in (data if len(data) < 40 else [])]
        parts.append(f'<text x="{width - right - 4}" y="{top + 14 * (i + 1)}" text-anchor="end" '
                     f'fill="{colour}" class="label">— {_esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
