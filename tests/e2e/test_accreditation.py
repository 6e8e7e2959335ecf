"""Accreditation in a real browser: a provider admin fills every step of the application and
sends it, an operator approves it with an end date, the provider sees it qualified."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from orgs.demo import minimal_pdf
from orgs.models import Accreditation, AccreditationStatus, BankStatus, MemberRole
from tests.e2e.helpers import sign_in
from tests.e2e.test_counter import screenshot
from tests.factories import MembershipFactory, OrganisationFactory, ServiceCategoryFactory
from tests.orgs.test_accreditation import _point_storage_to

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None


@pytest.fixture(autouse=True)
def private_dir(tmp_path):
    folder = tmp_path / "private"
    folder.mkdir()
    previous = _point_storage_to(str(folder))
    yield folder
    _point_storage_to(previous)


@pytest.fixture
def people():
    provider = MembershipFactory(
        organisation=OrganisationFactory(
            name="Cap Numérique Mérignac",
            address="12 avenue de la Marne",
            postcode="33700",
            city="Mérignac",
            is_funder=False,
            is_provider=True,
        ),
        role=MemberRole.ADMIN,
        user__full_name="Paul Garcia",
    )
    operator = MembershipFactory(
        organisation=OrganisationFactory(name="Médias-Cité", is_funder=False, is_operator=True),
        role=MemberRole.ADMIN,
        user__full_name="Claire Martin",
    )
    for name in ("Démarches administratives en ligne", "Prendre en main un smartphone"):
        ServiceCategoryFactory(name=name)
    return provider, operator


def save_and_continue(page) -> None:
    page.get_by_role("button", name="Enregistrer et continuer").click()


def sign_out(page) -> None:
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_role("button", name="Se connecter")).to_be_visible()


def test_a_provider_applies_and_an_operator_approves(page, live_server, people):
    provider, operator = people
    base = live_server.url
    sign_in(page, base, provider.user.email)

    page.get_by_role("navigation", name="Navigation principale").get_by_role(
        "link", name="Qualification"
    ).click()
    page.get_by_role("button", name="Commencer ma demande").click()

    # 1. The applicant: name and e-mail come from the account.
    expect(page.get_by_role("heading", name="Vos coordonnées")).to_be_visible()
    expect(page.get_by_label("Votre nom")).to_have_value("Paul Garcia")
    page.get_by_label("Votre téléphone").fill("05 56 12 34 56")
    screenshot(page, "accreditation-1-applicant")
    save_and_continue(page)

    # Sending too early lists what is missing; nothing is sent.
    page.get_by_role("link", name="Revenir au récapitulatif").click()
    page.get_by_role("button", name="Envoyer ma demande").click()
    expect(page.get_by_text("Votre demande est incomplète")).to_be_visible()
    expect(page.locator(".accr-missing")).to_contain_text("Au moins un lieu d'accueil")
    screenshot(page, "accreditation-overview-incomplete")
    page.get_by_role("link", name="Compléter : Votre structure").click()

    # 2. The organisation: prefilled from the organisation; a wrong SIRET is caught.
    expect(page.get_by_label("Raison sociale")).to_have_value("Cap Numérique Mérignac")
    page.get_by_label("SIRET").fill("12345678901234")
    page.get_by_label("Forme juridique").fill("Association loi 1901")
    save_and_continue(page)
    expect(page.get_by_text("Ce numéro SIRET n'est pas valide")).to_be_visible()
    screenshot(page, "accreditation-2-organisation-error")
    page.get_by_label("SIRET").fill(provider.organisation.siret)
    save_and_continue(page)

    # 3. The legal representative.
    page.get_by_label("Nom du représentant légal").fill("Martine Lacoste")
    page.get_by_label("Qualité").fill("Présidente")
    save_and_continue(page)

    # 4. Sites: the first one starts from the organisation's address.
    expect(page.get_by_role("heading", name="Lieux et services")).to_be_visible()
    page.get_by_role("link", name="Ajouter un lieu").click()
    expect(page.get_by_label("Adresse")).to_have_value("12 avenue de la Marne")
    page.get_by_label("Horaires d'accueil").fill("Du mardi au samedi, de 9 h à 18 h")
    page.get_by_label("Démarches administratives en ligne").check()
    page.get_by_label("Prendre en main un smartphone").check()
    screenshot(page, "accreditation-4-site")
    page.get_by_role("button", name="Enregistrer le lieu").click()
    expect(page.locator(".accr-site")).to_contain_text("Démarches administratives en ligne")
    screenshot(page, "accreditation-4-sites")
    page.get_by_role("link", name="Continuer : pièces justificatives").click()

    # 5. Documents: a small generated PDF.
    page.get_by_label("Type de pièce").select_option(
        label="Extrait Kbis ou avis de situation SIRENE"
    )
    page.get_by_label("Fichier").set_input_files(
        {"name": "kbis.pdf", "mimeType": "application/pdf", "buffer": minimal_pdf("Kbis")}
    )
    page.get_by_role("button", name="Ajouter la pièce").click()
    expect(page.get_by_role("link", name="kbis.pdf")).to_be_visible()
    screenshot(page, "accreditation-5-documents")
    page.get_by_role("link", name="Continuer : coordonnées bancaires").click()

    # 6. Bank details, checked with schwifty: a typo is caught on the field.
    page.get_by_label("IBAN").fill("FR76 3000 6000 0112 3456 7890 188")
    page.get_by_label("BIC").fill("AGRIFRPP")
    save_and_continue(page)
    expect(page.get_by_text("Cet IBAN n'est pas valide")).to_be_visible()
    screenshot(page, "accreditation-6-bank-error")
    page.get_by_label("IBAN").fill("FR76 3000 6000 0112 3456 7890 189")
    save_and_continue(page)

    # 7. The charter, then the overview: everything done, the application goes.
    page.get_by_label(re.compile("J'accepte la charte")).check()
    page.get_by_label(re.compile("J'accepte les conditions")).check()
    screenshot(page, "accreditation-7-charter")
    save_and_continue(page)
    expect(page.get_by_text("Tout est prêt.")).to_be_visible()
    screenshot(page, "accreditation-overview-ready")
    page.get_by_role("button", name="Envoyer ma demande").click()
    expect(page.get_by_text("Demande envoyée à Médias-Cité.")).to_be_visible()
    screenshot(page, "accreditation-submitted")
    accreditation = Accreditation.objects.get(organisation=provider.organisation)
    assert accreditation.status == AccreditationStatus.SUBMITTED
    sign_out(page)

    # The operator opens the queue and approves with an end date.
    sign_in(page, base, operator.user.email)
    page.get_by_role("navigation", name="Navigation principale").get_by_role(
        "link", name="Qualifications"
    ).click()
    screenshot(page, "accreditation-queue")
    page.get_by_role("link", name="Cap Numérique Mérignac").click()
    expect(page.get_by_text("FR76 3000 6000 0112 3456 7890 189")).to_be_visible()
    screenshot(page, "accreditation-review")
    end = timezone.localdate() + timedelta(days=700)
    page.get_by_label("Qualifié jusqu'au").fill(f"{end:%Y-%m-%d}")
    page.get_by_role("button", name="Qualifier la structure").click()
    expect(page.get_by_text("est qualifié")).to_be_visible()
    screenshot(page, "accreditation-review-approved")
    accreditation.refresh_from_db()
    assert accreditation.status == AccreditationStatus.APPROVED
    assert accreditation.bank_status == BankStatus.VERIFIED
    sign_out(page)

    # The provider sees the accreditation and its end date.
    sign_in(page, base, provider.user.email)
    page.goto(f"{base}/qualification/")
    expect(page.get_by_text(f"Qualifié jusqu'au {end:%d/%m/%Y}")).to_be_visible()
    screenshot(page, "accreditation-approved")
