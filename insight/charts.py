"""Charts rendered on the server as SVG: bars, grouped or stacked bars, and lines.

No script and no inline style: colours come from classes (``series-0`` … in ``app.css``) and
geometry from SVG presentation attributes, so the pages work under a strict Content Security
Policy and without JavaScript. Each chart is an image with an accessible name (``role="img"``,
``aria-labelledby`` on its ``<title>`` and ``<desc>``); each mark carries its figure in a
``<title>`` (shown on hover) and in ``data-value``; templates show the same figures as a table.
Numbers are written the French way (« 1 234 », « 1 234,00 € », « 45,3 % »).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

COUNT = "count"
CENTS = "cents"
PERCENT = "percent"

BAR = "bar"
STACKED = "stacked"
LINE = "line"

WIDTH = 720
HEIGHT = 320
MARGIN_LEFT = 100
MARGIN_RIGHT = 16
MARGIN_TOP = 16
LEGEND_HEIGHT = 24
MARGIN_BOTTOM = 40
ROTATED_BOTTOM = 120  # room for slanted category labels
LABEL_CHARS = 22  # longer category labels are cut on the axis (whole in titles and tables)
ROTATE_AFTER = 8  # more categories than this: labels are slanted
PALETTE_SIZE = 8  # app.css defines .series-0 … .series-7


def format_value(value: float, unit: str = COUNT) -> str:
    """A figure as shown in titles and tables: « 1 234 », « 1 234,00 € », « 45,3 % »."""
    if unit == CENTS:
        amount = number_format(value / 100, decimal_pos=2, use_l10n=True, force_grouping=True)
        return f"{amount}\u00a0€"
    if unit == PERCENT:
        return f"{number_format(value, decimal_pos=1, use_l10n=True)}\u00a0%"
    return number_format(round(value), use_l10n=True, force_grouping=True)


def format_tick(value: float, unit: str = COUNT) -> str:
    """An axis label: whole euros for money (« 1 500 € »), no decimals unless needed."""
    if unit == CENTS:
        euros = value / 100
        decimals = 0 if float(euros).is_integer() else 2
        amount = number_format(euros, decimal_pos=decimals, use_l10n=True, force_grouping=True)
        return f"{amount}\u00a0€"
    decimals = 0 if float(value).is_integer() else 1
    text = number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True)
    return f"{text}\u00a0%" if unit == PERCENT else text


def nice_ticks(maximum: float, *, count: int = 5, integer: bool = True) -> list[float]:
    """Round axis values from 0 to at least ``maximum``, in steps of 1, 2, 2.5 or 5 x 10^n."""
    if maximum <= 0 or not math.isfinite(maximum):
        return [0, 1] if integer else [0.0, 1.0]
    raw = maximum / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, math.ceil(step))
    top = math.ceil(maximum / step - 1e-9) * step
    ticks = []
    value = 0.0
    while value <= top + step / 1000:
        ticks.append(int(value) if integer or float(value).is_integer() else round(value, 6))
        value += step
    return ticks


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float]


@dataclass
class Chart:
    """A chart's figures and how to draw them; ``svg()`` renders it, ``rows`` feed its table."""

    id: str
    title: str
    categories: Sequence[str]
    series: Sequence[Series]
    kind: str = BAR
    unit: str = COUNT
    category_label: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for series in self.series:
            if len(series.values) != len(self.categories):
                raise ValueError(f"{self.id}: {series.label} has a value per category")

    @property
    def is_empty(self) -> bool:
        return not self.categories or not any(v for s in self.series for v in s.values)

    @property
    def rows(self) -> list[tuple[str, list[tuple[float, str]]]]:
        """Per category: its label and each series' (value, formatted value)."""
        return [
            (
                category,
                [(s.values[i], format_value(s.values[i], self.unit)) for s in self.series],
            )
            for i, category in enumerate(self.categories)
        ]

    @property
    def totals(self) -> list[tuple[float, str]] | None:
        """Per series: the sum over the categories (not for percentages)."""
        if self.unit == PERCENT or len(self.categories) < 2:
            return None
        return [(sum(s.values), format_value(sum(s.values), self.unit)) for s in self.series]

    def svg(self) -> SafeString:
        return render_svg(self)


def _attrs(**attributes: object) -> str:
    parts = []
    for name, value in attributes.items():
        if isinstance(value, float):
            value = f"{value:.2f}".rstrip("0").rstrip(".")
        parts.append(f'{name.rstrip("_").replace("_", "-")}="{escape(str(value))}"')
    return " ".join(parts)


def _tag(name: str, content: str = "", **attributes: object) -> str:
    """An SVG element; ``content`` must already be escaped."""
    attrs = _attrs(**attributes)
    return f"<{name} {attrs}>{content}</{name}>" if content else f"<{name} {attrs}/>"


def _mark_title(chart: Chart, category: str, series: Series, value: float) -> str:
    label = f"{category} — {series.label}" if len(chart.series) > 1 else category
    return f"<title>{escape(label)} : {escape(format_value(value, chart.unit))}</title>"


def render_svg(chart: Chart) -> SafeString:
    """The chart as an accessible SVG image (no script, no style attribute)."""
    n = len(chart.categories)
    stacked = chart.kind == STACKED
    if stacked:
        peak = max((sum(s.values[i] for s in chart.series) for i in range(n)), default=0)
    else:
        peak = max((v for s in chart.series for v in s.values), default=0)
    if chart.unit == PERCENT:
        peak = max(peak, 1)
    ticks = nice_ticks(peak, integer=chart.unit != PERCENT)
    top_value = ticks[-1] or 1

    # A stacked chart names its series even when there is one (e.g. the only organisation).
    legend = len(chart.series) > 1 or stacked
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    longest = max((min(len(c), LABEL_CHARS) for c in chart.categories), default=0)
    rotate = n > ROTATE_AFTER or longest * 8 > plot_width / max(n, 1)
    plot_top = MARGIN_TOP + (LEGEND_HEIGHT if legend else 0)
    plot_bottom = HEIGHT - (ROTATED_BOTTOM if rotate else MARGIN_BOTTOM)
    plot_left, plot_right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    plot_height = plot_bottom - plot_top
    band = (plot_right - plot_left) / max(n, 1)

    def y_of(value: float) -> float:
        return plot_bottom - plot_height * value / top_value

    title_id, desc_id = f"{chart.id}-title", f"{chart.id}-desc"
    description = _(
        "%(kind)s : %(count)s catégories, de %(first)s à %(last)s. "
        "Les valeurs figurent dans le tableau qui accompagne le graphique."
    ) % {
        "kind": {
            BAR: _("Diagramme en barres"),
            STACKED: _("Diagramme en barres empilées"),
            LINE: _("Courbe"),
        }[chart.kind],
        "count": n,
        "first": chart.categories[0] if n else "",
        "last": chart.categories[-1] if n else "",
    }
    svg_attrs = _attrs(
        xmlns="http://www.w3.org/2000/svg",
        class_=f"chart chart-{chart.kind}",
        viewBox=f"0 0 {WIDTH} {HEIGHT}",
        role="img",
        aria_labelledby=f"{title_id} {desc_id}",
        data_chart=chart.id,
    )
    out = [
        f"<svg {svg_attrs}>",
        f'<title id="{escape(title_id)}">{escape(chart.title)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(description)}</desc>',
    ]

    # Grid and value axis.
    out.append('<g class="axis axis-y">')
    for tick in ticks:
        y = y_of(tick)
        out.append(_tag("line", class_="grid", x1=plot_left, x2=plot_right, y1=y, y2=y))
        label = escape(format_tick(tick, chart.unit))
        out.append(_tag("text", label, class_="tick", x=plot_left - 8, y=y + 4, text_anchor="end"))
    out.append("</g>")

    # Category axis.
    out.append('<g class="axis axis-x">')
    out.append(
        _tag("line", class_="baseline", x1=plot_left, x2=plot_right, y1=plot_bottom, y2=plot_bottom)
    )
    for index, category in enumerate(chart.categories):
        x = plot_left + band * (index + 0.5)
        y = plot_bottom + 18
        shown = category if len(category) <= LABEL_CHARS else category[: LABEL_CHARS - 1] + "…"
        if rotate:
            slant = f"rotate(-40 {x:.1f} {y:.1f})"
            out.append(
                _tag(
                    "text",
                    escape(shown),
                    class_="tick",
                    x=x,
                    y=y,
                    text_anchor="end",
                    transform=slant,
                )
            )
        else:
            out.append(_tag("text", escape(shown), class_="tick", x=x, y=y, text_anchor="middle"))
    out.append("</g>")

    # Marks.
    out.append('<g class="marks">')
    if chart.kind == LINE:
        for s_index, series in enumerate(chart.series):
            css = f"series-{s_index % PALETTE_SIZE}"
            points = [(plot_left + band * (i + 0.5), y_of(v)) for i, v in enumerate(series.values)]
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(_tag("polyline", class_=f"line {css}", points=path))
            for (x, y), category, value in zip(
                points, chart.categories, series.values, strict=True
            ):
                out.append(
                    _tag(
                        "circle",
                        _mark_title(chart, category, series, value),
                        class_=f"point {css}",
                        cx=x,
                        cy=y,
                        r=4,
                        data_series=series.label,
                        data_category=category,
                        data_value=value,
                    )
                )
    else:
        group = band * 0.72
        width = group if stacked else group / max(len(chart.series), 1)
        for index, category in enumerate(chart.categories):
            left = plot_left + band * index + (band - group) / 2
            base = 0.0
            for s_index, series in enumerate(chart.series):
                value = series.values[index]
                css = f"bar series-{s_index % PALETTE_SIZE}"
                if stacked:
                    x, y0, y1 = left, y_of(base), y_of(base + value)
                    base += value
                else:
                    x, y0, y1 = left + width * s_index, plot_bottom, y_of(value)
                out.append(
                    _tag(
                        "rect",
                        _mark_title(chart, category, series, value),
                        class_=css,
                        x=x,
                        y=y1,
                        width=max(width - 1, 1),
                        height=max(y0 - y1, 0),
                        data_series=series.label,
                        data_category=category,
                        data_value=value,
                    )
                )
    out.append("</g>")

    if legend:
        out.append('<g class="legend">')
        x = plot_left
        for s_index, series in enumerate(chart.series):
            css = f"legend-key series-{s_index % PALETTE_SIZE}"
            out.append(_tag("rect", class_=css, x=x, y=MARGIN_TOP - 10, width=12, height=12))
            out.append(
                _tag("text", escape(series.label), class_="legend-label", x=x + 16, y=MARGIN_TOP)
            )
            x += 28 + 8 * len(series.label)
        out.append("</g>")
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped
