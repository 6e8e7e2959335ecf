"""A beneficiary finds where to use their cheques, without an account, in a real browser."""

from __future__ import annotations

import pytest

from tests.factories import accredited_provider

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None


def test_a_visitor_searches_by_postcode_and_sees_the_nearest_place_first(live_server, page):
    accredited_provider("Médiathèque de Pessac", "33600", "Pessac")
    accredited_provider("Cap Numérique Bègles", "33130", "Bègles")
    accredited_provider("La Cabane du Web", "59000", "Lille", departement="59")

    page.goto(f"{live_server.url}/connexion/")
    page.get_by_role("link", name="Où utiliser mes chèques ?").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Où utiliser mes chèques ?")
    expect(page.get_by_role("heading", name="3 lieux qualifiés")).to_be_visible()

    page.get_by_label("Code postal").fill("33000")
    page.get_by_role("button", name="Chercher").click()

    places = page.locator(".public-places-list li .public-place-name strong")
    expect(places).to_have_text(
        ["Cap Numérique Bègles", "Médiathèque de Pessac", "La Cabane du Web"]
    )
    expect(page.get_by_text("Du plus proche au plus éloigné du code postal 33000.")).to_be_visible()

    page.get_by_label("Code postal").fill("99999")
    page.get_by_role("button", name="Chercher").click()
    expect(page.get_by_text("Le code postal 99999 n'existe pas.", exact=False)).to_be_visible()
    expect(places).to_have_count(0)
