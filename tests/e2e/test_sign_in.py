"""Signing in through the real log-in form, as each kind of demo person, in a real browser."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from orgs.demo import DEMO_PASSWORD, seed_organisations
from tests.e2e.helpers import enter_second_factor, second_factor_ready

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None

SECTIONS = ("Opérateur du dispositif", "Commanditaire", "Structure relais", "Lieu qualifié")
ADMIN_NAV = ("Membres", "Journal")


@dataclass(frozen=True)
class Person:
    email: str
    first_name: str
    organisation: str
    role: str  # the member role's French label
    sections: tuple[str, ...]  # home sections for the organisation's roles

    @property
    def is_admin(self) -> bool:
        return self.role == "Administrateur"


OPERATOR_ADMIN = Person(
    "claire.martin@medias-cite.demo",
    "Claire",
    "Médias-Cité",
    "Administrateur",
    ("Opérateur du dispositif",),
)
FUNDER_ADMIN = Person(
    "marc.roux@bordeaux.demo", "Marc", "Ville de Bordeaux", "Administrateur", ("Commanditaire",)
)
DISTRIBUTOR_AGENT = Person(
    "julien.petit@ccas-bordeaux.demo", "Julien", "CCAS de Bordeaux", "Agent", ("Structure relais",)
)
PROVIDER_AGENT = Person(
    "lea.fontaine@cap-numerique.demo", "Léa", "Cap Numérique Mérignac", "Agent", ("Lieu qualifié",)
)
# Sophie acts first for the CCAS (organisations come by name), then switches to France services.
TWO_ORGS_FIRST = Person(
    "sophie.laurent@demo.aptic.fr", "Sophie", "CCAS de Bordeaux", "Agent", ("Structure relais",)
)
TWO_ORGS_SECOND = Person(
    "sophie.laurent@demo.aptic.fr",
    "Sophie",
    "France services Bègles",
    "Administrateur",
    ("Structure relais",),
)


@pytest.fixture
def demo_logins():
    """Seed the demo organisations and people; the logins as {(email, organisation): role}."""
    return {(email, org): role for email, _password, org, role in seed_organisations()}


def sign_in(page, base_url: str, email: str, password: str = DEMO_PASSWORD) -> None:
    device = second_factor_ready(email) if password == DEMO_PASSWORD else None
    page.goto(f"{base_url}/connexion/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connexion")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    if device is not None:
        enter_second_factor(page, device)


def assert_home_for(page, base_url: str, person: Person) -> None:
    expect(page).to_have_url(f"{base_url}/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Bonjour {person.first_name}")
    # "en tant que Agent" or, with elision, "en tant qu'agent": both say the right role.
    organisation = re.escape(person.organisation)
    expect(page.locator("main .lead")).to_contain_text(
        re.compile(
            rf"Vous agissez pour {organisation} en tant qu(e |['\u2019]){person.role}",
            re.IGNORECASE,
        )
    )
    main = page.locator("main")
    for section in SECTIONS:
        heading = main.get_by_role("heading", level=2, name=section, exact=True)
        expect(heading).to_have_count(1 if section in person.sections else 0)
    nav = page.get_by_role("navigation", name="Navigation principale")
    expect(nav.get_by_role("link", name="Accueil", exact=True)).to_be_visible()
    for entry in ADMIN_NAV:
        expect(nav.get_by_role("link", name=entry, exact=True)).to_have_count(
            1 if person.is_admin else 0
        )


@pytest.mark.parametrize(
    "person",
    [OPERATOR_ADMIN, FUNDER_ADMIN, DISTRIBUTOR_AGENT, PROVIDER_AGENT, TWO_ORGS_FIRST],
    ids=["operator-admin", "funder-admin", "distributor-agent", "provider-agent", "two-orgs"],
)
def test_sign_in_shows_the_organisation_and_role(page, live_server, demo_logins, person):
    assert demo_logins[(person.email, person.organisation)] == person.role  # the demo agrees

    sign_in(page, live_server.url, person.email)

    assert_home_for(page, live_server.url, person)
    switcher = page.get_by_label("Organisation", exact=True)
    if person.email != TWO_ORGS_FIRST.email:
        expect(switcher).to_have_count(0)
        expect(page.locator(".site-header")).to_contain_text(person.organisation)
        return

    # The two-organisation person switches to the other one.
    assert demo_logins[(TWO_ORGS_SECOND.email, TWO_ORGS_SECOND.organisation)] == "Administrateur"
    expect(switcher.locator("option:checked")).to_have_text(TWO_ORGS_FIRST.organisation)
    switcher.select_option(label=TWO_ORGS_SECOND.organisation)
    page.get_by_role("button", name="Changer").click()

    expect(page.get_by_role("status")).to_contain_text(
        f"Vous agissez maintenant pour {TWO_ORGS_SECOND.organisation}"
    )
    assert_home_for(page, live_server.url, TWO_ORGS_SECOND)
    expect(switcher.locator("option:checked")).to_have_text(TWO_ORGS_SECOND.organisation)

    # The choice sticks for the rest of the session.
    page.reload()
    assert_home_for(page, live_server.url, TWO_ORGS_SECOND)


def test_wrong_password_shows_the_error_and_stays_on_the_log_in_page(
    page, live_server, demo_logins
):
    sign_in(page, live_server.url, OPERATOR_ADMIN.email, password="pas-le-bon-mot-de-passe")

    expect(page).to_have_url(f"{live_server.url}/connexion/")
    expect(page.get_by_role("alert")).to_contain_text("Adresse e-mail ou mot de passe incorrect.")
    expect(page.get_by_label("Adresse e-mail")).to_have_value(OPERATOR_ADMIN.email)
    expect(page.get_by_label("Mot de passe")).to_have_value("")
    expect(page.get_by_role("button", name="Se déconnecter")).to_have_count(0)

    # Home stays out of reach.
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/connexion/\?next=/$"))


def test_log_out_returns_to_the_log_in_page(page, live_server, demo_logins):
    sign_in(page, live_server.url, FUNDER_ADMIN.email)
    assert_home_for(page, live_server.url, FUNDER_ADMIN)

    page.get_by_role("button", name="Se déconnecter").click()

    expect(page).to_have_url(f"{live_server.url}/connexion/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connexion")
    expect(page.get_by_role("button", name="Se déconnecter")).to_have_count(0)
    page.goto(f"{live_server.url}/")
    expect(page).to_have_url(re.compile(r"/connexion/\?next=/$"))
