"""Sign-in protections in a real browser, under the Content Security Policy.

An operator sets up the authenticator on first sign-in; the demo operator signs in with the
demo key; five wrong passwords lock the address out. Every page visited must run without a
single CSP violation (inline script or style, eval) and without JavaScript errors.
"""

from __future__ import annotations

import base64
import re
import time

import pytest
from django_otp.oath import TOTP

from orgs.demo import DEMO_PASSWORD, DEMO_TOTP_KEY_HEX, seed_organisations
from tests.e2e.helpers import page_errors
from tests.factories import MembershipFactory, OrganisationFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None

PASSWORD = "correct horse battery"  # tests.factories.UserFactory
# Registered before any page script, by the browser itself: it sees every blocked inline script,
# style or eval as the page runs.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " " + (event.blockedURI || "inline"));
});
"""


@pytest.fixture
def problems(page):
    """CSP violations and JavaScript errors of every page the test opens: there must be none."""
    page.add_init_script(RECORD_VIOLATIONS)
    return page_errors(page)


def _violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


def _code(key: bytes, after_step: int = -1) -> str:
    totp = TOTP(key)
    totp.time = time.time()
    if totp.t() <= after_step:
        totp.time += 30 * (after_step + 1 - totp.t())
    return f"{totp.token():06d}"


def _password(page, base_url: str, email: str, password: str) -> None:
    page.goto(f"{base_url}/connexion/")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()


def test_an_operator_sets_up_the_authenticator_at_first_sign_in(page, live_server, problems):
    operator = MembershipFactory(organisation=OrganisationFactory(is_operator=True))

    _password(page, live_server.url, operator.user.email, PASSWORD)

    expect(page.get_by_role("heading", level=1)).to_have_text("Activer la double authentification")
    expect(page.get_by_text("Les comptes de l'opérateur doivent utiliser")).to_be_visible()
    qr = page.locator(".qr-figure svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] > 100
    # Nothing else opens before the set-up: the operator pages send back here.
    page.goto(f"{live_server.url}/organisations/")
    expect(page).to_have_url(re.compile(r"/mon-compte/double-authentification/\?next="))

    # The person types the key shown as text into their app, which then shows the code.
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    page.get_by_label("Code affiché par l'application").fill("000000")
    page.get_by_role("button", name="Activer").click()
    expect(page.locator(".errorlist")).to_contain_text("Code incorrect ou expiré")
    time.sleep(1.1)  # the wait after a wrong code
    page.get_by_label("Code affiché par l'application").fill(_code(key))
    page.get_by_role("button", name="Activer").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Codes de secours")
    expect(page.locator(".backup-codes li")).to_have_count(10)
    page.get_by_role("link", name="Continuer").click()
    expect(page).to_have_url(f"{live_server.url}/organisations/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Organisations")
    assert _violations(page) == []
    assert problems == []


def test_the_demo_operator_signs_in_with_the_demo_key_and_every_page_runs_under_the_policy(
    page, live_server, problems
):
    seed_organisations()
    base = live_server.url

    _password(page, base, "claire.martin@medias-cite.demo", DEMO_PASSWORD)
    expect(page.get_by_role("heading", level=1)).to_have_text("Vérification en deux étapes")
    page.get_by_label("Code de vérification").fill(_code(bytes.fromhex(DEMO_TOTP_KEY_HEX)))
    page.get_by_role("button", name="Vérifier").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Claire")

    for path, heading in [
        ("/organisations/", "Organisations"),
        ("/commandes/a-valider/", None),
        ("/connexions-bloquees/", "Connexions bloquées"),
        ("/mon-compte/", "Mon compte"),
        ("/remboursements/lots/", None),
    ]:
        page.goto(f"{base}{path}")
        if heading:
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        assert _violations(page) == [], path

    # The API docs start Swagger UI from script files.
    page.goto(f"{base}/api/v1/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Aptic API")
    assert _violations(page) == []
    assert problems == []


def test_five_wrong_passwords_lock_the_address_out_with_a_french_message(page, live_server):
    member = MembershipFactory(organisation=OrganisationFactory(is_funder=True))
    for _attempt in range(5):
        _password(page, live_server.url, member.user.email, "pas le bon")

    expect(page.get_by_role("alert")).to_contain_text("Trop de tentatives de connexion échouées")
    _password(page, live_server.url, member.user.email, PASSWORD)

    expect(page.get_by_role("alert")).to_contain_text("Trop de tentatives de connexion échouées")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connexion")
