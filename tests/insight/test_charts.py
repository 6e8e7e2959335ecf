"""The SVG charts: accessible, scriptless, with French numbers and one mark per figure."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from django.utils import translation

from insight.charts import (
    BAR,
    CENTS,
    LINE,
    PERCENT,
    STACKED,
    Chart,
    Series,
    format_tick,
    format_value,
    nice_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def _french():
    with translation.override("fr"):
        yield


def _parse(chart: Chart) -> ET.Element:
    return ET.fromstring(str(chart.svg()))  # noqa: S314 - our own markup


def _chart(**kwargs) -> Chart:
    defaults = {
        "id": "essai",
        "title": "Chèques encaissés par mois",
        "categories": ["janv. 2026", "févr. 2026", "mars 2026"],
        "series": [Series("Encaissés", [1234, 0, 56])],
    }
    return Chart(**{**defaults, **kwargs})


def test_numbers_are_written_the_french_way():
    assert format_value(1234567) == "1\u00a0234\u00a0567"
    assert format_value(123456, CENTS) == "1\u00a0234,56\u00a0€"
    assert format_value(45.3, PERCENT) == "45,3\u00a0%"
    assert format_tick(150000, CENTS) == "1\u00a0500\u00a0€"
    assert format_tick(2.5, PERCENT) == "2,5\u00a0%"


@pytest.mark.parametrize(
    ("maximum", "expected"),
    [(0, [0, 1]), (3, [0, 1, 2, 3]), (1234, [0, 500, 1000, 1500]), (7, [0, 2, 4, 6, 8])],
)
def test_axis_values_are_round_and_reach_the_highest_figure(maximum, expected):
    assert nice_ticks(maximum) == expected


def test_a_percentage_axis_may_use_decimal_steps():
    assert nice_ticks(0.8, integer=False) == [0, 0.2, 0.4, 0.6, 0.8]


def test_the_chart_is_an_image_named_by_its_title_and_description():
    root = _parse(_chart())

    assert root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert title.text == "Chèques encaissés par mois"
    assert "3 catégories" in desc.text and "janv. 2026" in desc.text


def test_each_figure_is_one_bar_with_its_value_and_a_french_tooltip():
    root = _parse(_chart())
    bars = root.findall(f".//{SVG}rect[@data-value]")

    assert [bar.get("data-value") for bar in bars] == ["1234", "0", "56"]
    assert [bar.find(f"{SVG}title").text for bar in bars] == [
        "janv. 2026 : 1\u00a0234",
        "févr. 2026 : 0",
        "mars 2026 : 56",
    ]
    # The tallest bar is the largest figure; a zero is a flat bar.
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[0] > heights[2] > heights[1] == 0
    assert "1\u00a0500" in [t.text for t in root.iter(f"{SVG}text")]  # axis reaches 1 500


def test_there_is_no_script_no_style_and_labels_are_escaped():
    markup = str(_chart(categories=["<b>&", "x", "y"], title='"<script>"').svg())

    assert "<script" not in markup.replace("&lt;script&gt;", "")
    assert "style=" not in markup
    assert "on" + "click" not in markup
    assert "&lt;b&gt;&amp;" in markup


def test_stacked_bars_pile_up_and_a_legend_names_each_series():
    chart = _chart(
        kind=STACKED,
        series=[Series("Atelier", [2, 1, 0]), Series("Initiation", [2, 3, 4])],
    )
    root = _parse(chart)
    first_month = [
        b
        for b in root.findall(f".//{SVG}rect[@data-value]")
        if b.get("data-category") == "janv. 2026"
    ]

    bottom, top = first_month
    assert float(bottom.get("height")) == pytest.approx(float(top.get("height")))
    assert float(top.get("y")) + float(top.get("height")) == pytest.approx(float(bottom.get("y")))
    legend = [t.text for t in root.findall(f".//{SVG}g[@class='legend']/{SVG}text")]
    assert legend == ["Atelier", "Initiation"]
    assert top.find(f"{SVG}title").text == "janv. 2026 — Initiation : 2"


def test_a_line_chart_has_a_point_per_month_and_series():
    chart = _chart(
        kind=LINE,
        series=[Series("Émis", [10, 20, 30]), Series("Encaissés", [1, 2, 3])],
    )
    root = _parse(chart)

    assert len(root.findall(f".//{SVG}polyline")) == 2
    points = root.findall(f".//{SVG}circle")
    assert [p.get("data-value") for p in points] == ["10", "20", "30", "1", "2", "3"]
    assert float(points[2].get("cy")) < float(points[0].get("cy"))  # higher figure, higher point


def test_many_categories_get_slanted_labels():
    categories = [f"Lieu {n}" for n in range(12)]
    chart = _chart(categories=categories, series=[Series("Encaissés", list(range(12)))], kind=BAR)
    labels = [t for t in _parse(chart).iter(f"{SVG}text") if t.text in categories]

    assert len(labels) == 12 and all("rotate(-40" in t.get("transform") for t in labels)


def test_table_rows_and_totals_hold_the_same_figures_as_the_chart():
    chart = _chart(unit=CENTS, series=[Series("Montant", [150000, 0, 2550])])

    assert chart.rows[0] == ("janv. 2026", [(150000, "1\u00a0500,00\u00a0€")])
    assert chart.totals == [(152550, "1\u00a0525,50\u00a0€")]
    assert _chart(unit=PERCENT, series=[Series("Taux", [50, 0, 25])]).totals is None


def test_an_empty_chart_says_so_and_a_series_must_fit_the_categories():
    assert _chart(series=[Series("Encaissés", [0, 0, 0])]).is_empty
    assert not _chart().is_empty
    with pytest.raises(ValueError, match="a value per category"):
        _chart(series=[Series("Encaissés", [1, 2])])


def test_a_long_label_is_cut_on_the_axis_and_whole_in_the_tooltip():
    name = "Espace public numérique de la médiathèque"
    root = _parse(_chart(categories=[name, "b", "c"]))

    axis = [t.text for t in root.findall(f".//{SVG}g[@class='axis axis-x']/{SVG}text")]
    assert axis[0] == "Espace public numériq…"
    assert root.find(f".//{SVG}rect[@data-value]/{SVG}title").text == f"{name} : 1\u00a0234"


def test_labels_too_long_for_their_bar_are_slanted_and_short_ones_are_not():
    states = ["Brouillon", "Envoyée", "En cours d'examen", "Qualifié", "Compléments demandés"]
    slanted = _parse(_chart(categories=states, series=[Series("Demandes", [0, 1, 0, 2, 1])]))
    upright = _parse(_chart())

    assert all(
        "rotate" in (t.get("transform") or "")
        for t in slanted.findall(f".//{SVG}g[@class='axis axis-x']/{SVG}text")
    )
    assert not any(
        t.get("transform") for t in upright.findall(f".//{SVG}g[@class='axis axis-x']/{SVG}text")
    )


def test_a_stacked_chart_names_even_a_single_series():
    chart = _chart(kind=STACKED, series=[Series("Lieu A", [2, 0, 1])])
    legend = _parse(chart).findall(f".//{SVG}g[@class='legend']/{SVG}text")

    assert [t.text for t in legend] == ["Lieu A"]
