"""Settlement in a real browser: an operator computes last month's batch, a second operator
approves it and exports the SEPA transfer, downloads the XML, and a provider downloads its
statement. Celery tasks run eagerly, on commit, inside the live server's requests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from orgs.models import Accreditation, BankStatus, MemberRole, Membership, Organisation
from redemption.models import BatchStatus, Payout, Redemption, SettlementBatch
from redemption.services.redeem import cheques_redeem
from redemption.services.settlement import previous_month_end
from tests.e2e.helpers import page_errors, sign_in
from tests.factories import MembershipFactory
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import actor_for, operator_membership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
STATEMENT_TIMEOUT_MS = 30_000  # computing and rendering the statements in the request


@dataclass(frozen=True)
class World:
    claire: Membership  # operator admin who computes
    karim: Membership  # the second operator admin who approves
    cap: Membership  # provider agent: 3 cheques last month
    cabane: Membership  # provider agent: 2 cheques last month
    pessac: Membership  # provider whose new IBAN is not verified yet: held


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _rename(member: Membership, name: str) -> None:
    Organisation.objects.filter(pk=member.organisation_id).update(name=name)


@pytest.fixture
def world() -> World:
    cheques = handed_out_cheques(booklets=1, size=10)
    providers = []
    for name, count in (
        ("Cap Numérique Mérignac", 3),
        ("La Cabane du Web", 2),
        ("EPN de Pessac", 1),
    ):
        member, site = accredited_provider_member(services=[cheques.service])
        _rename(member, name)
        offset = sum(len(p[1]) for p in providers)
        codes = cheques.codes[offset : offset + count]
        for code in codes:
            cheques_redeem(
                actor=actor_for(member), codes=[code], service=cheques.service, site=site
            )
        providers.append((member, codes))
    # Redeemed last month, within the period the batch form proposes by default.
    last_month = datetime.combine(
        previous_month_end() - timedelta(days=5), time(11), tzinfo=timezone.get_current_timezone()
    )
    Redemption.objects.update(created_at=last_month)
    pessac = providers[2][0]
    Accreditation.objects.filter(organisation=pessac.organisation).update(
        bank_status=BankStatus.UNVERIFIED
    )
    claire = operator_membership()
    karim = MembershipFactory(organisation=claire.organisation, role=MemberRole.ADMIN)
    return World(
        claire=claire,
        karim=karim,
        cap=providers[0][0],
        cabane=providers[1][0],
        pessac=pessac,
    )


@pytest.fixture
def new_page(browser):
    """Pages in contexts of their own (another person at another computer)."""
    from tests.e2e.conftest import TIMEOUT_MS

    contexts = []

    def make():
        context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str) -> None:
    """Save a screenshot when APTIC_SCREENSHOTS names a folder (to look at the pages)."""
    folder = os.environ.get("APTIC_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def open_nav(page, name: str) -> None:
    nav = page.get_by_role("navigation", name="Navigation principale")
    nav.get_by_role("link", name=name, exact=True).click()


def download(page, link, folder) -> bytes:
    with page.expect_download() as info:
        link.click()
    saved = folder / info.value.suggested_filename
    info.value.save_as(saved)
    return saved.read_bytes()


def test_two_operators_settle_last_month_and_the_provider_downloads_its_statement(
    new_page, live_server, world, tmp_path
):
    base = live_server.url
    period_end = previous_month_end()
    reference = f"REM-{period_end:%Y-%m-%d}"

    # 1. Claire computes the batch of the previous period, proposed by default.
    claire = new_page()
    claire_errors = page_errors(claire)
    sign_in(claire, base, world.claire.user.email)
    open_nav(claire, "Remboursements")
    expect(claire.get_by_role("heading", level=1)).to_have_text("Lots de remboursement")
    expect(claire.get_by_label("Encaissements jusqu'au")).to_have_value(f"{period_end:%Y-%m-%d}")
    claire.get_by_role("button", name="Calculer le lot").click()

    expect(claire).to_have_url(re.compile(r"/remboursements/lots/\d+/$"))
    expect(claire.get_by_role("heading", level=1)).to_have_text(f"Lot {reference}")
    expect(claire.get_by_role("status").first).to_contain_text(f"Lot {reference} créé")
    # Computed in the request (eager task on commit), or the poll reloads the page when done.
    expect(claire.locator(".lead .badge")).to_have_text("À approuver", timeout=30_000)
    totals = claire.locator(".settlement-totals")
    expect(totals).to_contain_text("50,00\u00a0€")  # 30 € + 20 €; Pessac's 10 € is held
    expect(totals).to_contain_text("10,00\u00a0€")
    payouts = claire.locator(".settlement-payouts tbody tr")
    expect(payouts).to_have_count(2)
    expect(payouts.first).to_contain_text("Cap Numérique Mérignac")
    expect(payouts.first).to_contain_text("•••• 0189")
    held = claire.get_by_role("region", name="Lieux retenus")
    expect(held).to_contain_text("EPN de Pessac")
    expect(held).to_contain_text("Coordonnées bancaires à vérifier")
    # Four eyes: the creator is not offered the approval.
    expect(claire.get_by_role("button", name="Approuver le lot")).to_have_count(0)
    expect(claire.locator("main")).to_contain_text("un autre opérateur doit l'approuver")

    # 2. Karim, at another computer, approves and exports the transfer.
    karim = new_page()
    karim_errors = page_errors(karim)
    sign_in(karim, base, world.karim.user.email)
    open_nav(karim, "Remboursements")
    screenshot(karim, "settlement-batch-list")
    karim.get_by_role("link", name=reference, exact=True).click()
    screenshot(karim, "settlement-batch-to-approve")
    karim.get_by_role("button", name="Approuver le lot").click()
    expect(karim.get_by_role("status").first).to_contain_text(f"Lot {reference} approuvé")
    expect(karim.locator(".lead .badge")).to_have_text("Approuvé")
    execution = karim.get_by_label("Date d'exécution du virement")
    tomorrow = timezone.localdate() + timedelta(days=1)
    expect(execution).to_have_value(f"{tomorrow:%Y-%m-%d}")
    karim.get_by_role("button", name="Exporter le virement SEPA").click()
    expect(karim.get_by_role("status").first).to_contain_text("Virement SEPA du lot")
    expect(karim.locator(".lead .badge")).to_have_text("Virement exporté")
    expect(karim.locator(".timeline [aria-current=step]")).to_contain_text("Virement exporté")
    screenshot(karim, "settlement-batch-detail")

    # 3. The SEPA file: two transfers, the batch's total.
    xml = download(
        karim, karim.get_by_role("link", name="Télécharger le virement SEPA (XML)"), tmp_path
    )
    root = ET.fromstring(xml)  # noqa: S314 - the file our server just wrote
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert header.find("p:NbOfTxs", NS).text == "2"
    assert header.find("p:CtrlSum", NS).text == "50.00"
    assert len(root.findall(".//p:CdtTrfTxInf", NS)) == 2

    # 4. The provider follows its payout and downloads its statement.
    cap = new_page()
    cap_errors = page_errors(cap)
    sign_in(cap, base, world.cap.user.email)
    open_nav(cap, "Remboursements")
    expect(cap.get_by_role("heading", level=1)).to_have_text("Remboursements")
    current = cap.get_by_role("region", name="En cours")
    expect(current).to_contain_text(reference)
    expect(current).to_contain_text("30,00\u00a0€")
    expect(current).to_contain_text("Virement émis")
    expect(cap.locator("main")).not_to_contain_text("20,00\u00a0€")  # not La Cabane's
    screenshot(cap, "settlement-provider-payouts")
    pdf_link = cap.get_by_role("link", name=f"Relevé {reference} en PDF")
    expect(pdf_link).to_be_visible(timeout=STATEMENT_TIMEOUT_MS)
    pdf = download(cap, pdf_link, tmp_path)
    assert pdf.startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
        ).stdout.decode()
        assert reference in text

    # The held provider sees why, on its own page.
    pessac = new_page()
    pessac_errors = page_errors(pessac)
    sign_in(pessac, base, world.pessac.user.email)
    open_nav(pessac, "Remboursements")
    held = pessac.get_by_role("region", name="Remboursement retenu")
    expect(held).to_contain_text("Coordonnées bancaires à vérifier")
    expect(held).to_contain_text(f"10,00\u00a0€ pour 1 encaissement, retenus du lot {reference}")
    screenshot(pessac, "settlement-provider-held")

    # Nothing is in flight any more: the database agrees with the pages.
    batch = SettlementBatch.objects.get()
    assert batch.status == BatchStatus.EXPORTED
    assert (batch.created_by, batch.approved_by) == (world.claire.user, world.karim.user)
    assert Payout.objects.get(provider=world.cap.organisation).amount_cents == 3000
    assert claire_errors == [] and karim_errors == [] and cap_errors == [] and pessac_errors == []


class HeldComputation:
    """The computation task held back, as a busy worker would, and run on the next poll.

    It runs in the test's thread while the browser's poll request waits, so no request is in
    flight at the server meanwhile; that poll then finds the batch computed.
    """

    def __init__(self):
        self.batch_ids: list[int] = []
        self.failures: list[BaseException] = []

    def delay(self, batch_id: int) -> None:
        self.batch_ids.append(batch_id)

    def on_poll(self, route) -> None:
        from redemption.services.settlement import batch_compute

        try:
            while self.batch_ids:
                batch_compute(batch_id=self.batch_ids.pop(0))
        except BaseException as exc:  # reported by the test, not lost in Playwright's dispatcher
            self.failures.append(exc)
        finally:
            route.continue_()


def test_the_batch_page_shows_the_computation_then_reloads_when_it_is_done(
    new_page, live_server, world, monkeypatch
):
    from redemption import tasks

    held = HeldComputation()
    monkeypatch.setattr(tasks, "compute_batch", held)
    page = new_page()
    errors = page_errors(page)
    sign_in(page, live_server.url, world.claire.user.email)
    page.goto(f"{live_server.url}/remboursements/lots/")
    page.get_by_role("button", name="Calculer le lot").click()

    progress = page.locator("#batch-progress")
    expect(page.locator(".lead .badge")).to_have_text("En calcul")
    expect(progress).to_contain_text("Calcul en cours…")
    expect(progress).to_have_attribute("hx-trigger", "every 2s")
    expect(page.get_by_role("heading", name="Virements")).to_have_count(0)
    assert held.batch_ids == [SettlementBatch.objects.get().pk]

    # The next poll runs the computation, finds the batch computed and reloads the page.
    page.route(re.compile(r"/remboursements/lots/\d+/calcul/$"), held.on_poll)
    expect(page.locator(".lead .badge")).to_have_text("À approuver", timeout=15_000)
    expect(page.locator(".settlement-payouts tbody tr")).to_have_count(2)
    expect(page.locator("#batch-progress")).not_to_have_attribute("hx-get", re.compile(".*"))
    assert held.failures == []
    assert errors == []
