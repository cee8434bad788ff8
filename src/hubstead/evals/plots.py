"""The leaderboard's scatter as an SVG: score (up) against model size (across, parameters on a log scale), one
dot per model, linked to the model's page, verified results green and self-reported blue, and the "best for its
size" frontier (the models no smaller model beats) as a dashed line. Deterministic (same points, same bytes),
every label escaped, no script. Pure: the pages draw it from a board's rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from hubstead.train.chart import nice_ticks

_FONT = 'font-family="sans-serif" font-size="11"'
_VERIFIED = "#16a34a"
_SELF_REPORTED = "#2563eb"
_FRONTIER = "#9333ea"
_LABELLED = 8  # name the dots beside them when there are at most this many (else their tooltips name them)


@dataclass(frozen=True)
class Point:
    """One model on the scatter: its id, parameter count (None or 0: unknown, not drawn), score and link."""

    label: str
    params: int | None
    score: float
    href: str | None = None
    verified: bool = False


def human_params(count: int | None) -> str:
    """A parameter count as people write it: ``124M``, ``1.1B``, ``7B``, ``560k``, ``""`` when unknown."""
    if count is None or count <= 0:
        return ""
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if count >= size:
            value = count / size
            text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return text.removesuffix(".0") + unit
    return str(count)


def _score_label(value: float) -> str:
    return f"{value:.4g}"


def frontier(points: Sequence[Point], higher_is_better: bool = True) -> list[Point]:
    """The models no smaller (or equal-sized) model beats, smallest first: the best score available at each size."""
    sized = sorted((p for p in points if p.params and p.params > 0 and math.isfinite(p.score)),
                   key=lambda p: (p.params, -p.score if higher_is_better else p.score, p.label))
    best: list[Point] = []
    for point in sized:
        if not best or (point.score > best[-1].score if higher_is_better else point.score < best[-1].score):
            best.append(point)
    return best


def _label_spot(label: str, px: float, py: float, right_side: float,
                placed: list[tuple[float, float, float, float]]) -> tuple[float, float, str] | None:
    """Where a dot's name goes: above it, else below it (to its left on the right of the plot), where it overlaps
    no name already placed; None when both would (the dot's tooltip still names it)."""
    anchor = "end" if px > right_side else "start"
    dx = -8 if anchor == "end" else 8
    text_w = 6.2 * len(label)
    for y_text in (py - 6, py + 15):
        x0 = px + dx - text_w if anchor == "end" else px + dx
        box = (x0, y_text - 10, x0 + text_w, y_text + 2)
        if all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in placed):
            placed.append(box)
            return px + dx, y_text, anchor
    return None


def scatter_svg(points: Sequence[Point], width: int = 720, height: int = 380, *, title: str = "Score by model size",
                y_label: str = "score", higher_is_better: bool = True) -> str:
    """The scatter of ``points``; those without a known size or a finite score are counted in a note, not drawn."""
    width, height = max(int(width), 320), max(int(height), 200)
    left, right, top, bottom = 60, 24, 30, 62
    plot_w, plot_h = width - left - right, height - top - bottom
    drawn = [p for p in points if p.params and p.params > 0 and math.isfinite(p.score)]
    left_out = len(points) - len(drawn)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" class="scatter">',
           f"<title>{escape(title)}</title>",
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{left}" y="18" {_FONT} font-weight="bold">{escape(title)}</text>']
    note = (f"{left_out} model{'s' if left_out != 1 else ''} without a known size not drawn" if left_out else "")
    if note:
        out.append(f'<text x="{width - right}" y="18" {_FONT} text-anchor="end" fill="#6b7280" class="note">'
                   f"{escape(note)}</text>")
    if not drawn:
        out.append(f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" {_FONT} text-anchor="middle" fill="#6b7280">'
                   "No results with a known model size to plot</text></svg>")
        return "\n".join(out)

    sizes = [math.log10(p.params or 1) for p in drawn]
    x_lo, x_hi = math.floor(min(sizes)), math.ceil(max(sizes))
    if x_hi <= x_lo:
        x_hi = x_lo + 1
    decades = list(range(x_lo, x_hi + 1))
    step = max(1, math.ceil(len(decades) / 8))
    scores = [p.score for p in drawn]
    y_ticks = nice_ticks(min(scores), max(scores))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def sx(params: int) -> float:
        return left + (math.log10(params) - x_lo) / (x_hi - x_lo) * plot_w

    def sy(score: float) -> float:
        return top + plot_h - (score - y_lo) / ((y_hi - y_lo) or 1.0) * plot_h

    out.append(f'<g class="axes" stroke="#9ca3af" stroke-width="1">'
               f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>'
               f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/></g>')
    for index, power in enumerate(decades):
        px = sx(10**power)
        out.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + plot_h + 4}" stroke="#eef0f3"/>')
        if index % step == 0:
            out.append(f'<text x="{px:.1f}" y="{top + plot_h + 16}" {_FONT} text-anchor="middle" class="x-tick">'
                       f"{human_params(10**power)}</text>")
    for y in y_ticks:
        py = sy(y)
        out.append(f'<line x1="{left}" y1="{py:.1f}" x2="{left + plot_w}" y2="{py:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{left - 6}" y="{py + 4:.1f}" {_FONT} text-anchor="end" class="y-tick">'
                   f"{_score_label(y)}</text>")
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 32}" {_FONT} text-anchor="middle" '
               'class="x-label">model size (parameters, log scale)</text>')
    mid = top + plot_h / 2
    arrow = "↑ higher is better" if higher_is_better else "↓ lower is better"
    out.append(f'<text x="14" y="{mid:.1f}" {_FONT} text-anchor="middle" transform="rotate(-90 14 {mid:.1f})" '
               f'class="y-label">{escape(y_label)} ({arrow})</text>')

    best = frontier(drawn, higher_is_better)
    if len(best) > 1:
        coords: list[str] = []
        for point, following in zip(best, best[1:] + [None], strict=True):
            coords.append(f"{sx(point.params or 1):.1f},{sy(point.score):.1f}")
            if following is not None:  # a step: the best score holds until a larger model beats it
                coords.append(f"{sx(following.params or 1):.1f},{sy(point.score):.1f}")
        out.append(f'<polyline class="frontier" fill="none" stroke="{_FRONTIER}" stroke-width="1.5" '
                   f'stroke-dasharray="5 3" points="{" ".join(coords)}"/>')
    named = len(drawn) <= _LABELLED
    placed: list[tuple[float, float, float, float]] = [(left, 0, left + 7 * len(title), 22)]  # the title
    if note:
        placed.append((width - right - 6.2 * len(note), 0, width, 22))
    for point in sorted(drawn, key=lambda p: (p.params or 0, p.score, p.label)):
        px, py = sx(point.params or 1), sy(point.score)
        colour = _VERIFIED if point.verified else _SELF_REPORTED
        tip = f"{point.label}: {_score_label(point.score)} · {human_params(point.params)} parameters"
        dot = (f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{colour}" fill-opacity="0.85" stroke="#ffffff">'
               f"<title>{escape(tip)}</title></circle>")
        if named and (spot := _label_spot(point.label, px, py, left + plot_w * 0.7, placed)):
            x_text, y_text, anchor = spot
            dot += (f'<text x="{x_text:.1f}" y="{y_text:.1f}" {_FONT} text-anchor="{anchor}" fill="#374151">'
                    f"{escape(point.label)}</text>")
        attrs = (f'class="point" data-model="{escape(point.label)}" data-x="{px:.1f}" data-y="{py:.1f}" '
                 f'data-verified="{"true" if point.verified else "false"}"')
        if point.href:
            out.append(f'<a href="{escape(point.href)}" {attrs}>{dot}</a>')
        else:
            out.append(f"<g {attrs}>{dot}</g>")
    y = height - 12
    x = float(left)
    for label, colour, dashed in (("verified", _VERIFIED, False), ("self-reported", _SELF_REPORTED, False),
                                  ("best for its size", _FRONTIER, True)):
        if dashed:
            mark = (f'<line x1="{x:.1f}" y1="{y - 4}" x2="{x + 18:.1f}" y2="{y - 4}" stroke="{colour}" '
                    'stroke-width="1.5" stroke-dasharray="5 3"/>')
            x_text = x + 22
        else:
            mark = f'<circle cx="{x + 5:.1f}" cy="{y - 4}" r="5" fill="{colour}"/>'
            x_text = x + 14
        out.append(f'<g class="legend">{mark}<text x="{x_text:.1f}" y="{y}" {_FONT}>{label}</text></g>')
        x = x_text + 6.5 * len(label) + 18
    out.append("</svg>")
    return "\n".join(out)
