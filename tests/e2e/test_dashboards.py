"""Dashboards in a real browser: each role opens its dashboard from the navigation, the charts
are drawn, and every bar or point shows the same figure as the chart's table view."""

from __future__ import annotations

import re

import pytest

from insight.services import insight_refresh
from tests.e2e.helpers import sign_in
from tests.insight.helpers import funded_world
from tests.vouchers.helpers import operator_membership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None


def french_number(text: str) -> float:
    """« 1 234,50 € » → 1234.5; « 60,0 % » → 60.0."""
    cleaned = re.sub(r"[\s\u00a0\u202f€%]", "", text).replace(",", ".")
    return float(cleaned)


def check_chart(page, chart_id: str) -> int:
    """Every mark of the chart against its table view; returns the number of non-zero marks."""
    figure = page.locator(f"figure#{chart_id}")
    svg = figure.locator("svg[role='img']")
    expect(svg).to_be_visible()
    box = svg.bounding_box()
    assert box["width"] > 300 and box["height"] > 100, box
    figure.get_by_text("Tableau des valeurs").click()
    table = figure.locator("table")
    expect(table).to_be_visible()
    headers = table.locator("thead th").all_inner_texts()[1:]
    rows = {
        row.locator("th").inner_text(): row.locator("td").all_inner_texts()
        for row in table.locator("tbody tr").all()
    }
    marks = svg.locator("[data-value]")
    non_zero = 0
    assert marks.count() == len(rows) * len(headers)
    for index in range(marks.count()):
        mark = marks.nth(index)
        value = float(mark.get_attribute("data-value"))
        shown = rows[mark.get_attribute("data-category")][
            headers.index(mark.get_attribute("data-series"))
        ]
        expected = value / 100 if "€" in shown else value
        assert french_number(shown) == pytest.approx(expected), (chart_id, shown, value)
        assert shown in mark.locator("title").text_content()
        non_zero += value > 0
    return non_zero


def open_dashboard(page, base_url: str, email: str, heading: str) -> None:
    sign_in(page, base_url, email)
    page.get_by_role("navigation", name="Navigation principale").get_by_role(
        "link", name="Tableau de bord"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)


@pytest.fixture
def world():
    world = funded_world(booklets=3, redeem_per_booklet=2)
    insight_refresh()
    return world


def test_a_funder_reads_its_charts_and_their_tables_agree(live_server, page, world):
    open_dashboard(
        page, live_server.url, world.funder.user.email, "Tableau de bord du commanditaire"
    )

    assert page.locator("svg.chart").count() == 8
    for chart_id in ("par-service", "par-structure", "par-age", "par-situation"):
        assert check_chart(page, chart_id) > 0
    assert check_chart(page, "cheques-par-mois") >= 3  # issued, handed out, redeemed months
    assert check_chart(page, "taux-encaissement") == 3
    expect(page.locator(".figures")).to_contain_text("Chèques encaissés")


def test_a_distributor_reads_its_stock_and_agents(live_server, page, world):
    open_dashboard(
        page, live_server.url, world.funder.user.email, "Tableau de bord du commanditaire"
    )
    page.get_by_role("link", name="Structure relais").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Tableau de bord de la structure relais"
    )

    assert check_chart(page, "stock") == 1
    assert check_chart(page, "remises-par-agent") == 1  # the booklets of one agent
    assert check_chart(page, "remises-par-mois") == 3


def test_a_provider_reads_its_redemptions_and_a_bad_filter_is_explained(live_server, page, world):
    open_dashboard(
        page, live_server.url, world.provider.user.email, "Tableau de bord du lieu qualifié"
    )

    assert check_chart(page, "par-service") == 2
    assert check_chart(page, "montant-par-mois") == 3
    page.get_by_label("Du mois").fill("2026-06")
    page.get_by_label("au mois").fill("2026-01")
    page.get_by_role("button", name="Afficher").click()
    expect(page.get_by_text("Le mois de fin doit suivre le mois de début.")).to_be_visible()
    assert page.locator("svg.chart").count() == 0


def test_an_operator_reads_every_funder_and_the_fraud_signals(live_server, page, world):
    operator = operator_membership()
    open_dashboard(page, live_server.url, operator.user.email, "Tableau de bord de l'opérateur")

    assert check_chart(page, "par-service") == 2
    assert check_chart(page, "qualifications") == 1
    assert check_chart(page, "scans-refuses") == 1
    page.get_by_label("Commanditaire").select_option(label=world.funder.organisation.name)
    page.get_by_role("button", name="Afficher").click()
    assert check_chart(page, "par-structure") == 1
