"""Small SVG charts drawn on the server: no JavaScript, no chart library."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 180, 36, 22, 10


def _frame(labels: list[str], top_label: str) -> list[str]:
    plot_h = HEIGHT - BOTTOM - TOP
    parts = [
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH}" y2="{TOP + plot_h}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{WIDTH}" y2="{TOP}" class="grid"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h / 2}" x2="{WIDTH}" y2="{TOP + plot_h / 2}" class="grid"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" class="tick" text-anchor="end">{escape(top_label)}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h + 4}" class="tick" text-anchor="end">0</text>',
    ]
    step = (WIDTH - LEFT) / max(len(labels), 1)
    for index, label in enumerate(labels):
        if index % 7 == 0 or index == len(labels) - 1:
            x = LEFT + step * index + step / 2
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" class="tick" text-anchor="middle">{escape(label)}</text>')
    return parts


def _svg(parts: list[str], title: str) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def rate_chart(days: Sequence[date], rates: Sequence[float | None], title: str) -> Markup:
    """One bar per day, its height the rate (0–100 %); a day with no final message is a grey tick."""
    plot_h = HEIGHT - BOTTOM - TOP
    parts = _frame([d.strftime("%d %b") for d in days], "100%")
    step = (WIDTH - LEFT) / max(len(days), 1)
    for index, (day, rate) in enumerate(zip(days, rates, strict=True)):
        x = LEFT + step * index + step * 0.15
        if rate is None:
            parts.append(f'<rect x="{x:.1f}" y="{TOP + plot_h - 2}" width="{step * 0.7:.1f}" height="2" class="none"/>')
            continue
        h = plot_h * rate
        css = "good" if rate >= 0.9 else "fair" if rate >= 0.6 else "bad"
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" class="{css}">'
            f"<title>{day.isoformat()}: {rate:.0%} delivered</title></rect>"
        )
    return _svg(parts, title)


def count_chart(days: Sequence[date], counts: Sequence[int], title: str) -> Markup:
    """One bar per day, scaled to the largest count."""
    plot_h = HEIGHT - BOTTOM - TOP
    peak = max([*counts, 1])
    parts = _frame([d.strftime("%d %b") for d in days], str(peak))
    step = (WIDTH - LEFT) / max(len(days), 1)
    for index, (day, count) in enumerate(zip(days, counts, strict=True)):
        h = plot_h * count / peak
        x = LEFT + step * index + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" class="count">'
            f"<title>{day.isoformat()}: {count}</title></rect>"
        )
    return _svg(parts, title)
