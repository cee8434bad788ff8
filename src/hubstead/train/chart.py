"""The training curve as an SVG line chart: train loss and eval loss on the left axis, the headline eval metric on
its own right axis, steps along the bottom, ticks, a legend. Deterministic (same points, same bytes), escaped, no
script: the run page shows it live and the pushed repo keeps it as ``training_curve.svg``. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from hubstead.train.metrics import eval_metric_name

_COLOURS = {"loss": "#2563eb", "eval_loss": "#ea580c", "metric": "#16a34a"}
_FONT = 'font-family="sans-serif" font-size="11"'


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 2.5 or 5 times a power of ten) covering ``low``..``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks: list[float] = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def _label(value: float) -> str:
    return f"{value:.4g}"


def loss_chart_svg(points: Sequence[Mapping[str, Any]], width: int = 640, height: int = 320,
                   title: str = "Training curve") -> str:
    """The chart of ``points`` (metric lines as :func:`hubstead.train.metrics.parse_metric_lines` reads them)."""
    width, height = max(int(width), 240), max(int(height), 160)
    left, right, top, bottom = 56, 56, 28, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    metric = eval_metric_name(points)
    series: list[tuple[str, str, str, list[tuple[float, float]]]] = []  # (key, label, colour, points)
    for key, label in (("loss", "train loss"), ("eval_loss", "eval loss")):
        xy = [(float(p["step"]), float(p[key])) for p in points if isinstance(p.get(key), int | float)]
        if xy:
            series.append((key, label, _COLOURS[key], xy))
    metric_xy = [(float(p["step"]), float(p[metric])) for p in points
                 if metric and isinstance(p.get(metric), int | float)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<title>{escape(title)}</title>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{left}" y="16" {_FONT} font-weight="bold">{escape(title)}</text>']
    if not series and not metric_xy:
        out.append(f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" {_FONT} text-anchor="middle" fill="#6b7280">'
                   "No metrics yet</text></svg>")
        return "\n".join(out)
    steps = [x for *_, xy in series for x, _ in xy] + [x for x, _ in metric_xy]
    x_ticks = nice_ticks(min(steps + [0.0]), max(steps))
    x_lo, x_hi = x_ticks[0], x_ticks[-1]
    losses = [y for *_, xy in series for _, y in xy] or [0.0, 1.0]
    y_ticks = nice_ticks(min(0.0, min(losses)), max(losses))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def sx(x: float) -> float:
        return left + (x - x_lo) / ((x_hi - x_lo) or 1.0) * plot_w

    def sy(y: float, lo: float, hi: float) -> float:
        return top + plot_h - (y - lo) / ((hi - lo) or 1.0) * plot_h

    # Axes, grid and ticks.
    out.append(f'<g class="axes" stroke="#9ca3af" stroke-width="1">'
               f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>'
               f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/></g>')
    for x in x_ticks:
        px = sx(x)
        out.append(f'<line x1="{px:.1f}" y1="{top + plot_h}" x2="{px:.1f}" y2="{top + plot_h + 4}" '
                   'stroke="#9ca3af"/>'
                   f'<text x="{px:.1f}" y="{top + plot_h + 16}" {_FONT} text-anchor="middle">{_label(x)}</text>')
    for y in y_ticks:
        py = sy(y, y_lo, y_hi)
        out.append(f'<line x1="{left}" y1="{py:.1f}" x2="{left + plot_w}" y2="{py:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{left - 6}" y="{py + 4:.1f}" {_FONT} text-anchor="end">{_label(y)}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 32}" {_FONT} text-anchor="middle">step</text>')
    out.append(f'<text x="14" y="{top + plot_h / 2:.1f}" {_FONT} text-anchor="middle" '
               f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">loss</text>')
    legend: list[tuple[str, str]] = []
    for key, label, colour, xy in series:
        out.append(_polyline(key, colour, [(sx(x), sy(y, y_lo, y_hi)) for x, y in xy]))
        legend.append((label, colour))
    if metric and metric_xy:
        values = [y for _, y in metric_xy]
        m_ticks = [0.0, 0.25, 0.5, 0.75, 1.0] if 0.0 <= min(values) and max(values) <= 1.0 else nice_ticks(
            min(values), max(values))
        m_lo, m_hi = m_ticks[0], m_ticks[-1]
        for y in m_ticks:
            py = sy(y, m_lo, m_hi)
            out.append(f'<text x="{left + plot_w + 6}" y="{py + 4:.1f}" {_FONT} fill="{_COLOURS["metric"]}">'
                       f'{_label(y)}</text>')
        out.append(f'<line x1="{left + plot_w}" y1="{top}" x2="{left + plot_w}" y2="{top + plot_h}" '
                   f'stroke="{_COLOURS["metric"]}"/>')
        out.append(_polyline("metric", _COLOURS["metric"], [(sx(x), sy(y, m_lo, m_hi)) for x, y in metric_xy],
                             dashed=True))
        legend.append((f"{metric} (right axis)", _COLOURS["metric"]))
    # The legend, under the plot.
    x = float(left)
    for label, colour in legend:
        y = height - 14
        out.append(f'<g class="legend"><line x1="{x:.1f}" y1="{y - 4}" x2="{x + 18:.1f}" y2="{y - 4}" '
                   f'stroke="{colour}" stroke-width="2"/>'
                   f'<text x="{x + 22:.1f}" y="{y}" {_FONT}>{escape(label)}</text></g>')
        x += 40 + 6.5 * len(label)
    out.append("</svg>")
    return "\n".join(out)


def _polyline(key: str, colour: str, xy: list[tuple[float, float]], dashed: bool = False) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    marks = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}"/>' for x, y in xy[:60])
    marks = marks if len(xy) <= 60 else ""
    return (f'<g class="series" data-series="{escape(key)}"><polyline fill="none" stroke="{colour}" stroke-width="2"'
            f'{dash} points="{coords}"/>{marks}</g>')
