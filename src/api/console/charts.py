"""SVG charts drawn by the server: one bar per month against a threshold line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 560
HEIGHT = 220
LEFT = 44
BOTTOM = 28
TOP = 16


@dataclass(frozen=True)
class Bar:
    label: str
    #: Percent 0-100; None: no data that month (no bar, a dash).
    value: float | None


def bar_chart(title: str, bars: Sequence[Bar], threshold: float, no_data: str) -> Markup:
    """Bars in percent, a dashed threshold line; bars under it are drawn as breaches.
    Accessible: a <title> and a <desc> listing every value."""
    plot_h = HEIGHT - BOTTOM - TOP
    plot_w = WIDTH - LEFT - 8
    slot = plot_w / max(1, len(bars))
    bar_w = min(48.0, slot * 0.6)

    def y(pct: float) -> float:
        return TOP + plot_h * (1 - max(0.0, min(100.0, pct)) / 100)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-labelledby="t-{id(bars)} d-{id(bars)}">',
        f'<title id="t-{id(bars)}">{escape(title)}</title>',
        f'<desc id="d-{id(bars)}">'
        + escape("; ".join(f"{b.label}: {_pct(b.value, no_data)}" for b in bars))
        + f" ({escape(_pct(threshold, no_data))})</desc>",
    ]
    for tick in (0, 25, 50, 75, 100):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - 8}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/><text class="axis" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick}%</text>'
        )
    for i, bar in enumerate(bars):
        x = LEFT + slot * i + (slot - bar_w) / 2
        centre = x + bar_w / 2
        if bar.value is not None:
            css = "bar ok" if bar.value >= threshold else "bar below"
            parts.append(
                f'<rect class="{css}" x="{x:.1f}" y="{y(bar.value):.1f}" width="{bar_w:.1f}" '
                f'height="{y(0) - y(bar.value):.1f}"><title>{escape(bar.label)}: '
                f"{escape(_pct(bar.value, no_data))}</title></rect>"
                f'<text class="value" x="{centre:.1f}" y="{y(bar.value) - 3:.1f}" '
                f'text-anchor="middle">{bar.value:g}</text>'
            )
        else:
            parts.append(
                f'<text class="value" x="{centre:.1f}" y="{y(0) - 3:.1f}" '
                'text-anchor="middle">-</text>'
            )
        parts.append(
            f'<text class="axis" x="{centre:.1f}" y="{HEIGHT - 10}" '
            f'text-anchor="middle">{escape(bar.label)}</text>'
        )
    parts.append(
        f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - 8}" y1="{y(threshold):.1f}" '
        f'y2="{y(threshold):.1f}"/><text class="threshold-label" x="{WIDTH - 10}" '
        f'y="{y(threshold) - 4:.1f}" text-anchor="end">{threshold:g}%</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def _pct(value: float | None, no_data: str) -> str:
    return no_data if value is None else f"{value:g}%"
