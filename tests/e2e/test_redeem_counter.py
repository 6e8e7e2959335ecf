"""The provider's counter in a real browser: cheques scanned back to back at scanner speed as soon
as the page is there, each verdict within 300 ms of its Enter, a cheque scanned twice counted once;
then the basket is redeemed, the receipt shown and the redemption cancelled. And the public cheque
page, as a beneficiary sees it on a phone."""

from __future__ import annotations

import re
import sys

import pytest

from tests.e2e.helpers import page_errors, sign_in
from tests.e2e.test_counter import screenshot
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.redemption.test_counter_views import typo
from vouchers.codes import display

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None

VERDICT_BUDGET_MS = 300
PHONE = {"width": 375, "height": 812}
ACTIVE_NAME = "document.activeElement && document.activeElement.name"


@pytest.fixture
def server_thread_not_starved():
    """Let the live server's thread run while Playwright types.

    The live server is a thread of the test process, beside Playwright's client, which holds the
    GIL while it sends keystrokes; each database call of the server then waits up to the switch
    interval (5 ms) to get it back. A real server has its own processes. A shorter interval
    gives the thread the share of the CPU a separate process would have.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    yield
    sys.setswitchinterval(previous)


@pytest.fixture
def errors(page):
    """JavaScript errors of the page: there must be none (answers the page shows on purpose,
    such as refusals, are logged by the browser as failed resources and are not counted)."""
    return page_errors(page)


def test_scans_back_to_back_fill_the_basket_once_each_and_are_redeemed_then_cancelled(
    page, live_server, errors, server_thread_not_starved
):
    world = handed_out_cheques(booklets=1, size=5)
    member, site = accredited_provider_member(services=[world.service])
    valid = world.codes[:4]
    mistyped = typo(world.codes[4])
    # As scanners and people send them: the QR code's URL, lower case, printed with dashes.
    scans = [
        f"{live_server.url}/c/{valid[0]}",
        valid[1].lower(),
        mistyped,
        display(valid[2]),
        valid[3],
        f"{live_server.url}/c/{valid[1]}",  # the same cheque again
    ]
    sign_in(page, live_server.url, member.user.email)

    page.goto(f"{live_server.url}/encaisser/?timings=1")
    # No waiting: a handheld scanner types each code then Enter within milliseconds.
    for text in scans:
        page.keyboard.type(text, delay=0)
        page.keyboard.press("Enter")

    basket = page.locator("#redeem-basket")
    expect(basket.locator("input[name=codes]")).to_have_count(4)
    refused = page.locator("[data-refused]")
    expect(refused).to_contain_text("Code mal saisi (vérifiez les caractères)")
    # A function, not an expression string: Playwright evals expression strings in the page,
    # which the Content Security Policy refuses.
    page.wait_for_function(
        "count => (window.__verdictTimings || []).length === count", arg=len(scans)
    )
    timings = page.evaluate("window.__verdictTimings")

    print("\nEnter → verdict (ms):")
    for text, timing in zip(scans, timings, strict=True):
        print(f"  {timing['ms']:7.1f}  {text}")
    assert [t["code"] for t in timings] == [
        valid[0],
        valid[1],
        mistyped,
        valid[2],
        valid[3],
        valid[1],
    ]
    slow = [t for t in timings if t["ms"] > VERDICT_BUDGET_MS]
    assert not slow, f"verdicts slower than {VERDICT_BUDGET_MS} ms after Enter: {slow}"

    assert sorted(
        basket.locator("input[name=codes]").evaluate_all("inputs => inputs.map(i => i.value)")
    ) == sorted(valid)
    expect(basket.locator(f'[data-code="{valid[1]}"]')).to_have_count(1)
    expect(refused.locator("[data-code]")).to_have_count(1)
    expect(page.locator("#redeem-last")).to_contain_text("Déjà dans le panier")
    expect(page.locator("input[name=code]")).to_have_value("")
    assert page.evaluate(ACTIVE_NAME) == "code"  # the field kept the focus all along
    expect(page.locator("[data-basket-summary]")).to_have_text("4 chèques · 40,00\u00a0€")
    screenshot(page, "redeem-counter-mixed")

    page.get_by_role("button", name="Encaisser 4 chèques (40,00\u00a0€)").click()
    expect(page).to_have_url(re.compile(r"/encaissements/\d+/$"))
    receipt = page.locator(".redemption-receipt")
    expect(receipt).to_contain_text("40,00\u00a0€")
    expect(receipt).to_contain_text(site.name)
    expect(receipt).to_contain_text(world.service.name)
    expect(receipt.locator(".redemption-code")).to_have_count(4)
    screenshot(page, "redeem-receipt")

    # Cancelling takes a second step that says what it undoes; keeping it changes nothing.
    page.get_by_role("link", name="Annuler cet encaissement").click()
    confirmation = page.get_by_role("region", name="Annuler cet encaissement ?")
    expect(confirmation).to_contain_text("Les 4 chèques redeviendront utilisables")
    expect(confirmation).to_contain_text("40,00\u00a0€")
    screenshot(page, "redeem-receipt-cancel-confirmation")
    confirmation.get_by_role("link", name="Garder l'encaissement").click()
    expect(page.get_by_role("region", name="Annuler cet encaissement ?")).to_have_count(0)
    expect(receipt).not_to_contain_text("Encaissement annulé")

    page.get_by_role("link", name="Annuler cet encaissement").click()
    page.get_by_role("button", name="Confirmer l'annulation").click()
    expect(page.locator(".messages")).to_contain_text("Encaissement annulé")
    expect(receipt).to_contain_text("Encaissement annulé")
    expect(page.get_by_role("link", name="Annuler cet encaissement")).to_have_count(0)
    expect(page.get_by_role("button", name="Confirmer l'annulation")).to_have_count(0)
    screenshot(page, "redeem-receipt-cancelled")
    assert errors == []


def test_the_public_cheque_page_reads_well_on_a_phone(browser, live_server):
    from tests.e2e.conftest import TIMEOUT_MS

    world = handed_out_cheques(booklets=1, size=5)
    accredited_provider_member(services=[world.service])
    context = browser.new_context(locale="fr-FR", viewport=PHONE, is_mobile=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        for name, code, title in [
            ("public-valid", world.codes[0], "Ce chèque est valable"),
            ("public-mistyped", typo(world.codes[1]), "Code mal saisi"),
        ]:
            page.goto(f"{live_server.url}/c/{code}")
            expect(page.get_by_role("heading", level=1)).to_contain_text(title)
            # Nothing wider than the phone: no sideways scrolling.
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            screenshot(page, name)
        page.goto(f"{live_server.url}/c/{world.codes[0]}")
        expect(page.locator(".public-places-list li")).to_have_count(1)
        expect(page.locator(".public-value")).to_have_text("10,00\u00a0€")
    finally:
        context.close()
