"""Charts as inline SVG, drawn on the server: pure functions from figures to markup.

    bar_chart([BarRow("Bảng sảnh", (0.86, 0.25))], [DELIVERED, POLLED], title="…", value_label=vi.percent,
              maximum=1.0)
    line_chart(["06/05", "07/05"], [(SHOWN, [7200.0, 6900.0])], title="…", value_label=str)

No script and no chart library: the page shows (and prints) the same figures the API
answers, with nothing fetched from anywhere. Every text goes through `render.escape`, so a
slogan or a board name is text inside the SVG, never markup. Colours are presentation
attributes (`fill=`), not `style=`: the dashboard's CSP allows no inline styles, and
classes let the stylesheet restyle them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from displayd.web.render import Markup, escape, join, tag

WIDTH = 680
FONT = 12
NO_DATA = "Không có số liệu trong khoảng thời gian này."


@dataclass(frozen=True)
class Series:
    name: str
    css: str     # class of its marks: `series-<css>`
    colour: str  # fill or stroke, as an attribute


@dataclass(frozen=True)
class BarRow:
    label: str
    values: tuple[float | None, ...]  # one per series; None draws no bar and says "—"
    key: str = ""                     # `data-key` of the row's group, for tests and scripts


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round axis steps from 0 covering `maximum`: `nice_ticks(7200)` → `[0, 2000, 4000, 6000, 8000]`."""
    if not maximum > 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    steps = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 10) for i in range(steps + 1)]


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def _n(value: float) -> str:
    """A coordinate: short, and never `1e-05`."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(width: float, height: float, title: str, body: Markup, css: str) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css)}" role="img" '
                  f'viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}" '
                  f'font-size="{FONT}">{tag("title", title)}{body}</svg>')


def _text(x: float, y: float, text: str, **attrs: object) -> Markup:
    return tag("text", text, x=_n(x), y=_n(y), **attrs)


def _empty(title: str, css: str) -> Markup:
    return _svg(WIDTH, 40, title, _text(WIDTH / 2, 24, NO_DATA, text_anchor="middle", class_="no-data",
                                        fill="#5b6475"), css)


def _legend(series: Sequence[Series], y: float) -> Markup:
    parts, x = [], 0.0
    for s in series:
        parts.append(Markup(f'<rect x="{_n(x)}" y="{_n(y - 9)}" width="10" height="10" fill="{escape(s.colour)}" '
                            f'class="series-{escape(s.css)}"/>'))
        parts.append(_text(x + 14, y, s.name, class_="legend"))
        x += 24 + len(s.name) * FONT * 0.6
    return Markup(f'<g class="legend">{join(parts)}</g>')


def bar_chart(rows: Sequence[BarRow], series: Sequence[Series], *, title: str, value_label: Callable[[float], str],
              maximum: float | None = None, axis_label: Callable[[float], str] | None = None,
              css: str = "bars", label_chars: int = 95) -> Markup:
    """Horizontal bars, one group per row (a bar per series), each row's label above its bars
    (long slogans get the whole width) and each value written after its bar. Bars scale to
    `maximum` (default: the largest value, rounded up to a tick)."""
    values = [v for row in rows for v in row.values if v is not None]
    if not rows or not series:
        return _empty(title, css)
    ticks = nice_ticks(maximum if maximum is not None else max(values, default=0.0))
    top = ticks[-1] if ticks[-1] > 0 else 1.0
    left, right = 4.0, 84.0
    plot = WIDTH - left - right
    bar, gap = 13.0, 3.0
    y = 22.0 if len(series) > 1 else 6.0
    parts = [_legend(series, 14)] if len(series) > 1 else []
    grid_top = y
    for row in rows:
        group = [tag("title", row.label), _text(left, y + FONT, truncate(row.label, label_chars), class_="label")]
        by = y + FONT + 5
        for s, value in zip(series, row.values, strict=True):
            if value is None:
                group.append(_text(left, by + bar - 3, "—", class_="value none"))
            else:
                length = max(0.0, min(value, top)) / top * plot
                group.append(Markup(
                    f'<rect x="{_n(left)}" y="{_n(by)}" width="{_n(length)}" height="{_n(bar)}" '
                    f'fill="{escape(s.colour)}" class="series-{escape(s.css)}" data-value="{escape(value)}"/>'))
                group.append(_text(left + length + 4, by + bar - 3, value_label(value), class_="value"))
            by += bar + gap
        parts.append(Markup(f'<g class="row" data-key="{escape(row.key)}">{join(group)}</g>'))
        y = by + 8
    axis = axis_label or value_label
    grid = []
    for tick in ticks:
        x = left + tick / top * plot
        grid.append(Markup(f'<line x1="{_n(x)}" y1="{_n(grid_top)}" x2="{_n(x)}" y2="{_n(y)}" stroke="#d9dee8" '
                           f'class="grid"/>'))
        grid.append(_text(x, y + FONT + 2, axis(tick), text_anchor="start" if tick == 0 else "middle", class_="tick",
                          fill="#5b6475"))
    body = join([Markup(f'<g class="grid">{join(grid)}</g>'), *parts])
    return _svg(WIDTH, y + FONT + 8, title, body, css)


def line_chart(labels: Sequence[str], lines: Sequence[tuple[Series, Sequence[float]]], *, title: str,
               value_label: Callable[[float], str], css: str = "lines", height: float = 260) -> Markup:
    """One line per series over `labels` (days), on a shared axis from 0; a dot per point while
    they are few enough to tell apart, and at most about 12 x-axis labels."""
    if not labels or not lines:
        return _empty(title, css)
    left, right, top_pad, bottom = 64.0, 16.0, 24.0, 28.0
    plot_w, plot_h = WIDTH - left - right, height - top_pad - bottom
    ticks = nice_ticks(max((v for _, values in lines for v in values), default=0.0))
    top = ticks[-1] if ticks[-1] > 0 else 1.0
    count = len(labels)

    def x(i: int) -> float:
        return left + (plot_w / 2 if count == 1 else i * plot_w / (count - 1))

    def y(v: float) -> float:
        return top_pad + plot_h - max(0.0, v) / top * plot_h

    parts = [_legend([s for s, _ in lines], 14)]
    for tick in ticks:
        parts.append(Markup(f'<line x1="{_n(left)}" y1="{_n(y(tick))}" x2="{_n(WIDTH - right)}" y2="{_n(y(tick))}" '
                            f'stroke="#d9dee8" class="grid"/>'))
        parts.append(_text(left - 6, y(tick) + 4, value_label(tick), text_anchor="end", class_="tick",
                           fill="#5b6475"))
    step = max(1, math.ceil(count / 12))
    for i in range(0, count, step):
        parts.append(_text(x(i), height - 10, labels[i], text_anchor="middle", class_="tick", fill="#5b6475"))
    for s, values in lines:
        if len(values) != count:
            raise ValueError(f"series {s.name!r} has {len(values)} values for {count} labels")
        points = " ".join(f"{_n(x(i))},{_n(y(v))}" for i, v in enumerate(values))
        mark = [Markup(f'<polyline points="{points}" fill="none" stroke="{escape(s.colour)}" stroke-width="2" '
                       f'class="series-{escape(s.css)}"/>')]
        if count <= 62:
            mark += [Markup(f'<circle cx="{_n(x(i))}" cy="{_n(y(v))}" r="2.5" fill="{escape(s.colour)}" '
                            f'class="series-{escape(s.css)}">{tag("title", f"{labels[i]}: {value_label(v)}")}'
                            f'</circle>') for i, v in enumerate(values)]
        parts.append(Markup(f'<g class="line" data-series="{escape(s.css)}">{join(mark)}</g>'))
    return _svg(WIDTH, height, title, join(parts), css)
