"""A latency histogram as a small self-contained SVG (for pytest-html and the Markdown
report). Hand-written rather than matplotlib: one plot kind, no 40 MB dependency, and
the output is plain text that diffs and redacts like the rest of the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 300, 56, 16, 28, 44
BINS = 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")

Series = Sequence[tuple[float, int]]  # (value in ms, count)


def latency_histogram_svg(title: str, series: Mapping[str, Series],
                          thresholds_ms: Mapping[str, float]) -> str:
    """Counts per log-spaced latency bin, one colour per series, SLO lines dashed."""
    values = [v for points in series.values() for v, c in points if c] + list(
        thresholds_ms.values())
    if not values:
        return _frame(title, ['<text x="50%" y="50%" text-anchor="middle">no samples</text>'])
    low = math.log10(max(0.1, min(values)) / 1.2)
    high = math.log10(max(values) * 1.2)
    width = (high - low) / BINS
    binned = {name: _bin(points, low, width) for name, points in series.items()}
    peak = max((max(bins) for bins in binned.values() if bins), default=1) or 1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(log_ms: float) -> float:
        return LEFT + (log_ms - low) / (high - low) * plot_w

    parts = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
             'stroke="#333"/>',
             f'<text x="{LEFT - 8}" y="{TOP + 4}" text-anchor="end" font-size="11">{peak}</text>',
             f'<text x="{LEFT - 8}" y="{TOP + plot_h}" text-anchor="end" font-size="11">0</text>']
    for tick in _ticks(low, high):
        parts.append(f'<line x1="{x(math.log10(tick)):.1f}" y1="{TOP + plot_h}" '
                     f'x2="{x(math.log10(tick)):.1f}" y2="{TOP + plot_h + 4}" stroke="#333"/>'
                     f'<text x="{x(math.log10(tick)):.1f}" y="{TOP + plot_h + 16}" '
                     f'text-anchor="middle" font-size="11">{_duration(tick)}</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{TOP + plot_h + 30}" text-anchor="end" '
                 'font-size="10" fill="#555">latency (log scale); bars: traces per bin</text>')
    bar_w = plot_w / BINS / max(1, len(binned))
    for index, (name, bins) in enumerate(binned.items()):
        colour = COLOURS[index % len(COLOURS)]
        for k, count in enumerate(bins):
            if count:
                h = count / peak * plot_h
                parts.append(f'<rect x="{x(low + k * width) + index * bar_w:.1f}" '
                             f'y="{TOP + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                             f'fill="{colour}" opacity="0.8"/>')
        parts.append(f'<rect x="{LEFT + 8 + index * 170}" y="{HEIGHT - 18}" width="10" '
                     f'height="10" fill="{colour}"/><text x="{LEFT + 22 + index * 170}" '
                     f'y="{HEIGHT - 9}" font-size="11">{escape(name)}</text>')
    for index, (name, ms) in enumerate(thresholds_ms.items()):
        colour = COLOURS[index % len(COLOURS)]
        at = x(math.log10(ms))
        # Labels of lines in the right half go to their left, so none runs off the plot.
        anchor, dx = ("end", -3) if at > LEFT + plot_w / 2 else ("start", 3)
        parts.append(f'<line x1="{at:.1f}" y1="{TOP}" x2="{at:.1f}" y2="{TOP + plot_h}" '
                     f'stroke="{colour}" stroke-dasharray="5,4"/><text x="{at + dx:.1f}" '
                     f'y="{TOP + 10 + 12 * index}" text-anchor="{anchor}" '
                     f'font-size="10">{escape(name)}</text>')
    return _frame(title, parts)


def _ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks (ms) between 10**low and 10**high."""
    return [m * 10 ** d for d in range(math.floor(low), math.ceil(high) + 1) for m in (1, 2, 5)
            if low <= math.log10(m * 10 ** d) <= high]


def _duration(ms: float) -> str:
    return f"{ms:g} ms" if ms < 1000 else f"{ms / 1000:g} s"


def _bin(points: Series, low: float, width: float) -> list[int]:
    bins = [0] * BINS
    for value, count in points:
        k = int((math.log10(max(value, 1e-3)) - low) / width)
        bins[min(BINS - 1, max(0, k))] += count
    return bins


def _frame(title: str, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">'
            f'<rect width="100%" height="100%" fill="white"/>'
            f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13">'
            f'{escape(title)}</text>{"".join(parts)}</svg>')


def sweep_svg(title: str, rates: Sequence[float], latency_ms: Mapping[str, Sequence[float | None]],
              attainment: Sequence[float | None], target: float, peak: float | None) -> str:
    """Latency percentiles (left axis, ms) and attainment (right axis, %) against offered
    rate, the attainment target dashed and the peak rate marked. A None value (a step
    with no sample of that figure) leaves a gap in its line."""
    plot_w, plot_h = WIDTH - LEFT - 48, HEIGHT - TOP - BOTTOM
    if not rates:
        return _frame(title, ['<text x="50%" y="50%" text-anchor="middle">no steps</text>'])
    top = max([v for series in latency_ms.values() for v in series if v] + [1.0]) * 1.15
    low_r, high_r = min(rates), max(rates)
    span = (high_r - low_r) or 1.0

    def x(rate: float) -> float:
        return LEFT + (rate - low_r) / span * plot_w

    def y(value: float, ceiling: float) -> float:
        return TOP + plot_h - value / ceiling * plot_h

    parts = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
             'stroke="#333"/>', f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" '
             f'y2="{TOP + plot_h}" stroke="#333"/>', f'<line x1="{LEFT + plot_w}" y1="{TOP}" '
             f'x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#333"/>']
    for fraction in (0, 0.5, 1):
        parts.append(f'<text x="{LEFT - 6}" y="{y(top * fraction, top) + 4:.1f}" '
                     f'text-anchor="end" font-size="10">{top * fraction:.0f} ms</text>'
                     f'<text x="{LEFT + plot_w + 6}" y="{y(fraction, 1) + 4:.1f}" '
                     f'font-size="10">{fraction:.0%}</text>')
    for rate in rates:
        parts.append(f'<text x="{x(rate):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                     f'font-size="10">{rate:g}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h + 30}" text-anchor="middle" '
                 'font-size="10" fill="#555">offered rate (req/s)</text>')
    named = [*latency_ms.items(), ("attainment", attainment)]
    for index, (name, values) in enumerate(named):
        colour = COLOURS[index % len(COLOURS)]
        ceiling = 1.0 if name == "attainment" else top
        points = " ".join(f"{x(r):.1f},{y(v, ceiling):.1f}"
                          for r, v in zip(rates, values, strict=True) if v is not None)
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                     'stroke-width="2"/>')
        parts.append(f'<rect x="{LEFT + 8 + index * 130}" y="{HEIGHT - 14}" width="10" '
                     f'height="10" fill="{colour}"/><text x="{LEFT + 22 + index * 130}" '
                     f'y="{HEIGHT - 5}" font-size="11">{escape(name)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(target, 1):.1f}" '
                 f'y2="{y(target, 1):.1f}" stroke="#d62728" stroke-dasharray="5,4"/>')
    if peak is not None:
        parts.append(f'<line x1="{x(peak):.1f}" x2="{x(peak):.1f}" y1="{TOP}" '
                     f'y2="{TOP + plot_h}" stroke="#2ca02c" stroke-dasharray="2,3"/>'
                     f'<text x="{x(peak) + 3:.1f}" y="{TOP + 10}" font-size="10">'
                     f'peak {peak:g} req/s</text>')
    return _frame(title, parts)
