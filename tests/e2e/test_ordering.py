"""A funder's order in a real browser, end to end: the form and its live total, the pro-forma,
the operator's approval, issuance and printing (Celery tasks run eagerly, on commit, inside the
live server's requests), the progress bar, and the print-ready PDF the funder downloads."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from io import BytesIO

import pytest
from django.db import connections
from django.utils import timezone
from PIL import Image
from pypdf import PdfReader

from orgs.models import Membership
from tests.e2e.conftest import TIMEOUT_MS
from tests.e2e.helpers import page_errors, sign_in
from tests.factories import ProgrammeFactory, ServiceCategoryFactory
from tests.vouchers.helpers import approved_order, funder_membership, operator_membership
from vouchers import tasks
from vouchers.codes import display
from vouchers.models import Cheque, Order, OrderStatus, Programme

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None

PRINT_TIMEOUT_MS = 60_000  # issuing and laying out the booklets, on a slow machine
DOWNLOAD_LINK = re.compile(r"^Télécharger les chéquiers")
PROGRESS_URL = re.compile(r"/commandes/\d+/impression/$")


@dataclass(frozen=True)
class World:
    funder: Membership
    operator: Membership
    programme: Programme


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    # Logos and print files go to the test's folder (the live server reads the same settings).
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world() -> World:
    """A funder admin, an operator admin and a programme offering booklets of 5 and 10."""
    funder = funder_membership(name="Département de la Gironde")
    programme = ProgrammeFactory(
        name="Chèque APTIC Gironde",
        funder=funder.organisation,
        cheque_value_cents=1000,
        fee_rate_bp=400,
        offers_booklet_of_5=True,
        offers_booklet_of_10=True,
        categories=[ServiceCategoryFactory(name="Premiers pas sur internet")],
    )
    return World(funder=funder, operator=operator_membership(), programme=programme)


@pytest.fixture
def new_page(browser):
    """Pages in contexts of their own (another person at another computer), closed at the end."""
    contexts = []

    def make():
        context = browser.new_context(locale="fr-FR")
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def pdf_text(pdf: bytes) -> str | None:
    if not shutil.which("pdftotext"):
        return None
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True, timeout=60
    ).stdout.decode()


def open_nav(page, name: str) -> None:
    nav = page.get_by_role("navigation", name="Navigation principale")
    nav.get_by_role("link", name=name, exact=True).click()


def test_a_funder_orders_the_operator_approves_and_the_funder_downloads_the_booklets(
    page, new_page, live_server, world, tmp_path
):
    base = live_server.url
    funder_errors = page_errors(page)

    # 1. The funder orders 3 booklets of 10 and 2 of 5, with a logo and a text to print.
    sign_in(page, base, world.funder.user.email)
    open_nav(page, "Commandes")
    page.get_by_role("link", name="Commander des chéquiers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Commander des chéquiers")
    quote = page.locator("#quote")
    expect(quote).to_contain_text("Commandez au moins un chéquier.")  # htmx asked on load

    page.get_by_label("Programme").select_option(label=world.programme.name)
    page.get_by_label("Chéquiers de 10 chèques").fill("3")
    expect(quote).to_contain_text("312,00\u00a0€")  # 300 € and 4 %
    page.get_by_label("Chéquiers de 5 chèques").fill("2")
    expect(quote.locator("dd")).to_have_text(
        ["5 (40 chèques)", "400,00\u00a0€", "16,00\u00a0€", "416,00\u00a0€"]
    )

    logo = tmp_path / "logo.png"
    Image.new("RGB", (240, 96), "darkred").save(logo, format="PNG")
    page.get_by_label("Votre numéro de bon de commande").fill("BC-2026-042")
    page.get_by_label("Texte imprimé sur les chéquiers").fill("Offert par le Département")
    page.get_by_label("Logo imprimé sur la couverture").set_input_files(logo)
    page.get_by_role("button", name="Enregistrer la commande").click()

    expect(page).to_have_url(re.compile(r"/commandes/\d+/$"))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Commande CMD-\d{4}-\d{6}$"))
    reference = heading.inner_text().split()[-1]
    order_url = page.url
    expect(page.get_by_role("status")).to_contain_text(f"Commande {reference} enregistrée")
    expect(page.locator(".lead .badge")).to_have_text("Brouillon")
    details = page.locator("main")
    for shown in ("BC-2026-042", "Offert par le Département", "fourni", "416,00\u00a0€"):
        expect(details).to_contain_text(shown)

    # The pro-forma is a PDF.
    proforma_href = page.get_by_role("link", name="Devis (PDF)").get_attribute("href")
    proforma = page.request.get(f"{base}{proforma_href}")
    assert proforma.status == 200
    assert proforma.headers["content-type"] == "application/pdf"
    assert proforma.body().startswith(b"%PDF")
    text = pdf_text(proforma.body())
    if text is not None:
        assert reference in text
        assert "BC-2026-042" in text

    page.get_by_role("button", name="Envoyer la commande").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Commande {reference} envoyée à Médias-Cité pour validation."
    )
    expect(page.locator(".lead .badge")).to_have_text("Envoyée")
    expect(page.get_by_role("button", name="Envoyer la commande")).to_have_count(0)

    # 2. The operator, at another computer, approves it once paid.
    operator = new_page()
    operator_errors = page_errors(operator)
    sign_in(operator, base, world.operator.user.email)
    open_nav(operator, "À valider")
    expect(operator.get_by_role("heading", level=1)).to_have_text("Commandes à valider")
    operator.get_by_role("link", name=reference, exact=True).click()
    expect(operator.get_by_role("heading", level=1)).to_have_text(f"Commande {reference}")
    operator.get_by_label("Référence du paiement ou du bon de commande").fill("VIR-2026-0042")
    operator.get_by_label("Reçu le").fill(timezone.localdate().isoformat())
    operator.get_by_role("button", name="Valider et émettre les chéquiers").click()
    expect(operator.get_by_role("status")).to_contain_text(f"Commande {reference} validée")

    # 3. Issuance and printing ran in the approval request (eager tasks, on commit): either the
    # file is there at once, or the progress bar shows and the poll swaps the link in.
    progress = operator.locator("#print-progress")
    link = progress.get_by_role("link", name=DOWNLOAD_LINK)
    expect(link.or_(progress.locator("progress"))).to_be_visible()
    expect(link).to_be_visible(timeout=PRINT_TIMEOUT_MS)
    expect(progress).not_to_have_attribute("hx-get", re.compile(".*"))  # the poll stopped
    expect(progress.locator("progress")).to_have_count(0)
    expect(operator.locator(".lead .badge")).to_have_text("Prête à imprimer")
    expect(operator.locator(".timeline [aria-current=step]")).to_contain_text("Prête à imprimer")

    # 4. The funder, back on the order page, downloads the print-ready PDF.
    page.goto(order_url)
    expect(page.locator(".lead .badge")).to_have_text("Prête à imprimer")
    download_link = page.locator("#print-progress").get_by_role("link", name=DOWNLOAD_LINK)
    with page.expect_download() as download_info:
        download_link.click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename.endswith(".pdf")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    pdf = saved.read_bytes()
    assert pdf.startswith(b"%PDF")

    # Each booklet: a cover, then 3 cheques a page.
    assert len(PdfReader(BytesIO(pdf)).pages) == 3 * (1 + 4) + 2 * (1 + 2)

    # Nothing is in flight any more: the test may read the database the pages wrote.
    order = Order.objects.get(reference=reference)
    assert order.status == OrderStatus.PRINTED
    assert order.total_cents == 41_600
    assert order.payment_reference == "VIR-2026-0042"
    assert sorted(order.booklets.values_list("size", flat=True)) == [5, 5, 10, 10, 10]
    cheques = Cheque.objects.filter(booklet__order=order).order_by(
        "booklet__print_position", "position"
    )
    assert cheques.count() == 40
    text = pdf_text(pdf)
    if text is not None:
        assert display(cheques.first().code) in text
        assert display(cheques.last().code) in text
        assert "Offert par le Département" in text
    assert funder_errors == []
    assert operator_errors == []


class HeldTasks:
    """Printing tasks held back, as a busy worker would, and run one at a time on request.

    Issuance still runs eagerly; ``start_printing`` and ``print_chunk`` are queued here instead.
    ``allow()`` lets the next poll of the progress bar run one held task first, in the test's
    thread (in the greenlet Playwright runs route handlers in), while the browser's request
    waits: no request is in flight at the live server meanwhile, whatever the database.
    """

    def __init__(self, monkeypatch):
        self.queue: list[tuple[object, tuple]] = []
        self.allowed = 0
        self.ran: list[str] = []
        self.failures: list[BaseException] = []
        for name in ("start_printing", "print_chunk"):
            monkeypatch.setattr(tasks, name, _Held(self, getattr(tasks, name)))

    def allow(self) -> None:
        self.allowed += 1

    def on_poll(self, route) -> None:
        try:
            if self.allowed and self.queue:
                self.allowed -= 1
                task, args = self.queue.pop(0)
                self.ran.append(task.name)
                task(*args)
        except BaseException as exc:  # reported by the test, not lost in Playwright's dispatcher
            self.failures.append(exc)
        finally:
            # Playwright calls handlers in a greenlet of their own, where Django opened a
            # connection of its own: close it, or PostgreSQL cannot drop the test database.
            connections.close_all()
            route.continue_()


class _Held:
    def __init__(self, held: HeldTasks, task):
        self.held, self.task = held, task

    def delay(self, *args) -> None:
        self.held.queue.append((self.task, args))


def test_the_progress_bar_polls_until_the_booklets_are_laid_out(
    page, live_server, world, monkeypatch
):
    held = HeldTasks(monkeypatch)
    order = approved_order(
        lines={10: 1, 5: 1}, funder=world.funder, operator=world.operator, programme=world.programme
    )  # issued at once (eager), printing held back
    order.refresh_from_db()
    assert order.status == OrderStatus.ISSUED
    assert [task.name for task, _args in held.queue] == ["vouchers.tasks.start_printing"]
    errors = page_errors(page)

    sign_in(page, live_server.url, world.funder.user.email)
    page.route(PROGRESS_URL, held.on_poll)
    page.goto(f"{live_server.url}/commandes/{order.pk}/")
    progress = page.locator("#print-progress")
    expect(page.locator(".lead .badge")).to_have_text("Chéquiers émis")
    expect(progress).to_contain_text("Préparation de la mise en page…")
    expect(progress.locator("progress")).to_be_visible()
    expect(progress).to_have_attribute("hx-trigger", "every 1s")

    held.allow()  # the next poll starts the print run: one chunk to lay out
    expect(progress).to_contain_text("Mise en page : 0 lot(s) sur 1")
    expect(progress.get_by_role("progressbar")).to_have_attribute("value", "0")

    held.allow()  # the next poll lays the chunk out; the run finishes on commit
    link = progress.get_by_role("link", name=DOWNLOAD_LINK)
    expect(link).to_be_visible(timeout=PRINT_TIMEOUT_MS)
    expect(progress).not_to_have_attribute("hx-get", re.compile(".*"))
    expect(progress.locator("progress")).to_have_count(0)
    assert held.failures == []
    assert held.ran == ["vouchers.tasks.start_printing", "vouchers.tasks.print_chunk"]

    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.failure() is None
    with open(download.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    # The poll swaps only the progress bar in; the page, reloaded, shows the order printed.
    page.reload()
    expect(page.locator(".lead .badge")).to_have_text("Prête à imprimer")
    expect(page.locator(".timeline [aria-current=step]")).to_contain_text("Prête à imprimer")
    assert errors == []
