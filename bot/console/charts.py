"""Small SVG charts drawn on the server: no JavaScript, no chart library."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

HEIGHT, LEFT, BOTTOM, TOP = 180, 36, 22, 10


def _frame(labels: list[str], top_label: str, width: int) -> list[str]:
    plot_h = HEIGHT - BOTTOM - TOP
    parts = [
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{width}" y2="{TOP + plot_h}" class="axis"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{width}" y2="{TOP}" class="grid"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h / 2}" x2="{width}" y2="{TOP + plot_h / 2}" class="grid"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" class="tick" text-anchor="end">{escape(top_label)}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + plot_h + 4}" class="tick" text-anchor="end">0</text>',
    ]
    step = (width - LEFT) / max(len(labels), 1)
    for index, label in enumerate(labels):
        if (len(labels) - 1 - index) % 7 == 0:  # today, and every week back from it
            x = LEFT + step * index + step / 2
            anchor = "end" if index == len(labels) - 1 else "middle"
            parts.append(
                f'<text x="{x + step / 2 if anchor == "end" else x:.1f}" y="{HEIGHT - 6}" class="tick" '
                f'text-anchor="{anchor}">{escape(label)}</text>'
            )
    return parts


def _svg(parts: list[str], title: str, width: int) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def rate_chart(days: Sequence[date], rates: Sequence[float | None], title: str, width: int = 1100) -> Markup:
    """One bar per day, its height the rate (0–100 %); a day with no final message is a grey tick."""
    plot_h = HEIGHT - BOTTOM - TOP
    parts = _frame([d.strftime("%d %b") for d in days], "100%", width)
    step = (width - LEFT) / max(len(days), 1)
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
    return _svg(parts, title, width)


def count_chart(days: Sequence[date], counts: Sequence[int], title: str, width: int = 540) -> Markup:
    """One bar per day, scaled to the largest count."""
    plot_h = HEIGHT - BOTTOM - TOP
    peak = max([*counts, 1])
    parts = _frame([d.strftime("%d %b") for d in days], str(peak), width)
    step = (width - LEFT) / max(len(days), 1)
    for index, (day, count) in enumerate(zip(days, counts, strict=True)):
        h = plot_h * count / peak
        x = LEFT + step * index + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" class="count">'
            f"<title>{day.isoformat()}: {count}</title></rect>"
        )
    return _svg(parts, title, width)
