"""Charts for the console as inline SVG, drawn on the server: no script, no build
step, nothing fetched (the console's CSP allows none). Pure: data in, markup out,
every text escaped here.

Each chart is a <figure>: the drawing scales to the width it gets (viewBox), and its
legend is HTML beneath, so it wraps on a phone instead of shrinking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

W, H = 560, 180  # the drawing's own units; it scales to the page
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 22  # room for the axes' labels
PLOT_W, PLOT_H = W - LEFT - RIGHT, H - TOP - BOTTOM
PALETTE = ("#2f6fb3", "#d9822b", "#3a9a5b", "#b3261e", "#7a4fb0", "#1f9aa8", "#a6761d", "#5c6b7a")
OUTCOME_COLOURS = {"succeeded": "#3a9a5b", "retry": "#d9822b", "gone": "#7a4fb0", "dead": "#b3261e"}


def _svg(label: str, inner: str) -> str:
    return (
        f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{escape(label)}" '
        f'class="chart"><title>{escape(label)}</title>{inner}</svg>'
    )


def _figure(label: str, inner: str, legend: Sequence[tuple[str, str]], note: str = "") -> str:
    keys = "".join(
        f'<span class="key"><i style="background:{colour}"></i>{escape(name)}</span>'
        for name, colour in legend
    )
    extra = f'<span class="muted">{escape(note)}</span>' if note else ""
    return f"<figure>{_svg(label, inner)}<figcaption>{keys}{extra}</figcaption></figure>"


def _nice(top: float) -> float:
    """A round upper bound for an axis at or above top (1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return 1.0
    scale = 10.0 ** (len(str(int(top))) - 1) if top >= 1 else 1.0
    for step in (1, 2, 5, 10):
        if step * scale >= top:
            return step * scale
    return 10 * scale


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H - min(value, top) / top * PLOT_H


def _number(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value / 1000:g}k"


def _axes(top: float, y_text: str = "{}") -> str:
    """The frame, and the y axis labelled at 0, half and top."""
    parts = [
        f'<line x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{W - RIGHT}" y2="{TOP + PLOT_H}" '
        'stroke="#8a94a0"/>'
    ]
    for v in (0, top / 2, top):
        y = _y(v, top)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#e3e6ea"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5c6b7a">{escape(y_text.format(_number(v)))}</text>'
        )
    return "".join(parts)


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


def _time_ticks(starts: Sequence[int], x_of: dict[int, float]) -> str:
    """About five labels along the time axis, on bucket starts (UTC)."""
    if not starts:
        return ""
    every = max(1, len(starts) // 5)
    return "".join(
        f'<text x="{x_of[s]:.1f}" y="{H - 6}" text-anchor="middle" font-size="11" '
        f'fill="#5c6b7a">{_clock(s)}</text>'
        for s in starts[::every]
    )


def _empty(note: str) -> str:
    return (
        f'<text x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H / 2}" text-anchor="middle" '
        f'font-size="13" fill="#5c6b7a">{escape(note)}</text>'
    )


def histogram(label: str, names: Sequence[str], values: Sequence[int], empty: str) -> str:
    """A bar per bucket, labelled beneath."""
    top = _nice(max(values, default=0))
    width = PLOT_W / max(1, len(values))
    parts = [_axes(top)]
    for i, (name, value) in enumerate(zip(names, values, strict=True)):
        x, y = LEFT + i * width, _y(value, top)
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{width - 2:.1f}" '
            f'height="{TOP + PLOT_H - y:.1f}" fill="{PALETTE[0]}"><title>{escape(name)}: '
            f"{value}</title></rect>"
            f'<text x="{x + width / 2:.1f}" y="{H - 6}" text-anchor="middle" font-size="10" '
            f'fill="#5c6b7a">{escape(name)}</text>'
        )
    if not any(values):
        parts.append(_empty(empty))
    return _figure(label, "".join(parts), [], f"{sum(values)} in all")


def stacked(
    label: str, starts: Sequence[int], series: Mapping[str, Sequence[int]], empty: str
) -> str:
    """A bar per time bucket, its series stacked (colours by outcome where known)."""
    totals = [sum(col) for col in zip(*series.values(), strict=True)] if series else []
    top = _nice(max(totals, default=0))
    width = PLOT_W / max(1, len(starts))
    x_of = {s: LEFT + i * width + width / 2 for i, s in enumerate(starts)}
    colours = {n: OUTCOME_COLOURS.get(n, PALETTE[i % len(PALETTE)]) for i, n in enumerate(series)}
    parts = [_axes(top)]
    for i, start in enumerate(starts):
        base = 0
        for name, values in series.items():
            if not values[i]:
                continue
            y0, y1 = _y(base, top), _y(base + values[i], top)
            parts.append(
                f'<rect x="{LEFT + i * width + 0.5:.1f}" y="{y1:.1f}" '
                f'width="{max(1.0, width - 1):.1f}" height="{y0 - y1:.1f}" '
                f'fill="{colours[name]}"><title>{_clock(start)} {escape(name)}: '
                f"{values[i]}</title></rect>"
            )
            base += values[i]
    parts.append(_time_ticks(starts, x_of))
    if not any(totals):
        parts.append(_empty(empty))
    legend = [(n, colours[n]) for n in series]
    return _figure(label, "".join(parts), legend, f"{sum(totals)} in all, UTC")


def lines(
    label: str,
    starts: Sequence[int],
    series: Mapping[str, Sequence[float]],
    empty: str,
    *,
    percent: bool = False,
) -> str:
    """A line per series over the time buckets; as percentages when percent."""
    scale = 100.0 if percent else 1.0
    top = _nice(max((v * scale for vs in series.values() for v in vs), default=0))
    if percent:
        top = max(top, 100.0)
    step = PLOT_W / max(1, len(starts) - 1)
    x_of = {s: LEFT + i * step for i, s in enumerate(starts)}
    parts = [_axes(top, "{}%" if percent else "{}")]
    legend = []
    for i, (name, values) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        points = " ".join(
            f"{x_of[s]:.1f},{_y(v * scale, top):.1f}" for s, v in zip(starts, values, strict=True)
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
            f"<title>{escape(name)}</title></polyline>"
        )
        legend.append((name, colour))
    parts.append(_time_ticks(starts, x_of))
    if not any(v for vs in series.values() for v in vs):
        parts.append(_empty(empty))
    return _figure(label, "".join(parts), legend, "UTC")


def progress(
    label: str,
    steps: Sequence[tuple[float, float, int]],
    polls: Sequence[tuple[float, str, str]],
    total: int | None,
) -> str:
    """A job's count over time (steps: first seen, last seen, count) with each poll
    marked beneath, coloured by why it was made (the legend names the reasons)."""
    times = [t for a, b, _ in steps for t in (a, b)] + [t for t, _, _ in polls]
    if not times:
        return _figure(label, _axes(1.0) + _empty("no polls yet"), [])
    first, last = min(times), max(times)
    span = max(last - first, 1e-3)
    top = _nice(max([c for _, _, c in steps] + [total or 0], default=0))

    def x(t: float) -> float:
        return LEFT + (t - first) / span * PLOT_W

    parts = [_axes(top)]
    if total:
        y = _y(total, top)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#8a94a0" '
            f'stroke-dasharray="4 3"><title>total: {total}</title></line>'
        )
    if steps:
        points = []
        for seen, until, count in sorted(steps):
            points += [
                f"{x(seen):.1f},{_y(count, top):.1f}",
                f"{x(until):.1f},{_y(count, top):.1f}",
            ]
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{PALETTE[0]}" '
            'stroke-width="2"><title>count</title></polyline>'
        )
    reasons = sorted({why for _, why, _ in polls})
    colours = {why: PALETTE[(i + 1) % len(PALETTE)] for i, why in enumerate(reasons)}
    for t, why, found in polls:
        parts.append(
            f'<circle cx="{x(t):.1f}" cy="{TOP + PLOT_H}" r="4" fill="{colours[why]}">'
            f"<title>{_clock(t)} {escape(why)}: {escape(found)}</title></circle>"
        )
    span_text = f"{_clock(first)} to {_clock(last)} UTC"
    legend = [("count", PALETTE[0])] + [(f"poll: {why}", colours[why]) for why in reasons]
    return _figure(label, "".join(parts), legend, span_text)
