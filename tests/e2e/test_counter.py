"""The counter in a real browser: a scanner types the number at full speed as soon as the page is
there, the booklet appears, the agent fills the form and the receipt (and its PDF) come out."""

from __future__ import annotations

import os
import re
from datetime import date

import pytest

from tests.e2e.helpers import page_errors, sign_in
from tests.vouchers.helpers import actor_for
from tests.vouchers.test_counter import PERSON, PROFILE, Counter, build_world
from vouchers.services.distribution import Person, booklet_assign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None

ACTIVE_NAME = "document.activeElement && document.activeElement.name"


def screenshot(page, name: str) -> None:
    """Save a screenshot when APTIC_SCREENSHOTS names a folder (to look at the pages)."""
    folder = os.environ.get("APTIC_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def print_to_pdf(page, name: str) -> None:
    """Print the page as Chromium would on paper, when APTIC_SCREENSHOTS names a folder."""
    folder = os.environ.get("APTIC_SCREENSHOTS")
    if folder:
        page.pdf(path=os.path.join(folder, f"{name}.pdf"), prefer_css_page_size=True)


@pytest.fixture
def world() -> Counter:
    """The same data as tests/vouchers/test_counter.py, committed for the live server."""
    return build_world()


@pytest.fixture
def errors(page):
    """JavaScript errors of the page: there must be none (answers the page shows on purpose,
    such as refusals, are logged by the browser as failed resources and are not counted)."""
    return page_errors(page)


def test_a_scanned_booklet_is_handed_out_and_its_receipt_printed(
    page,
    live_server,
    world,
    errors,
):
    first, second = world.begles
    sign_in(page, live_server.url, world.begles_agent.user.email)

    page.goto(f"{live_server.url}/guichet/")
    # A handheld scanner types the whole number then Enter, within milliseconds, right away.
    page.keyboard.type(second.number.lower().replace("-", ""), delay=0)
    page.keyboard.press("Enter")
    # The next scan comes while the first answer may still be on its way: nothing is lost.
    page.keyboard.type(first.number, delay=0)

    result = page.locator("#counter-result")
    expect(result).to_contain_text(f"Chéquier {second.number}")
    expect(page.locator("input[name=number]")).to_have_value(first.number)
    assert page.evaluate(ACTIVE_NAME) == "number"

    page.keyboard.press("Enter")
    expect(result).to_contain_text(f"Chéquier {first.number}")
    expect(result).to_contain_text("100,00\u00a0€")
    expect(page.locator("input[name=number]")).to_have_value("")
    assert page.evaluate(ACTIVE_NAME) == "number"  # the field kept the focus across the swap
    screenshot(page, "counter-booklet")

    # Sent empty, the form comes back with French errors and the focus on the first one.
    page.get_by_role("button", name="Remettre le chéquier").click()
    expect(result).to_contain_text("Ce champ est obligatoire.")
    assert page.evaluate(ACTIVE_NAME) == "age_bracket"
    screenshot(page, "counter-errors")

    page.get_by_label("60 à 74 ans").check()
    page.get_by_label("Code postal du domicile").fill("33130")
    page.get_by_label(re.compile(r"^Nom\b")).fill(PERSON["last_name"])
    page.get_by_label(re.compile(r"^Prénom\b")).fill(PERSON["first_name"])
    page.get_by_label("Date de naissance").fill(PERSON["birth_date"])
    page.get_by_role("button", name="Remettre le chéquier").click()

    expect(page).to_have_url(re.compile(r"/recus/B-[0-9A-F]+/$"))
    receipt = page.locator(".receipt")
    expect(receipt).to_contain_text(first.number)
    expect(receipt).to_contain_text("Cap Numérique Bègles")
    expect(page.get_by_role("button", name="Imprimer le reçu")).to_be_visible()
    screenshot(page, "receipt")
    pdf_link = page.get_by_role("link", name="Télécharger le PDF")
    print_to_pdf(page, "receipt-print")

    pdf_url = pdf_link.get_attribute("href")
    pdf = page.request.get(f"{live_server.url}{pdf_url}")
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    if os.environ.get("APTIC_SCREENSHOTS"):
        with open(
            os.path.join(os.environ["APTIC_SCREENSHOTS"], "receipt-weasyprint.pdf"), "wb"
        ) as f:
            f.write(pdf.body())
    assert errors == []


def test_a_booklet_of_another_organisation_is_not_found_and_the_field_keeps_focus(
    page,
    live_server,
    world,
    errors,
):
    sign_in(page, live_server.url, world.begles_agent.user.email)
    page.goto(f"{live_server.url}/guichet/")

    page.keyboard.type(world.pessac[0].number, delay=0)
    page.keyboard.press("Enter")

    expect(page.locator("#counter-result")).to_contain_text("Chéquier introuvable")
    assert page.evaluate(ACTIVE_NAME) == "number"
    screenshot(page, "counter-not-found")
    assert errors == []


def test_an_admin_sees_the_limit_and_hands_out_with_a_reason(
    page,
    live_server,
    world,
    errors,
):
    booklet_assign(
        actor=actor_for(world.begles_agent),
        booklet=world.begles[0],
        person=Person(
            PERSON["last_name"], PERSON["first_name"], date.fromisoformat(PERSON["birth_date"])
        ),
        age_bracket=PROFILE["age_bracket"],
        postcode=PROFILE["postcode"],
    )
    booklet = world.pessac[0]
    sign_in(page, live_server.url, world.pessac_admin.user.email)
    page.goto(f"{live_server.url}/guichet/")
    page.keyboard.type(booklet.number, delay=0)
    page.keyboard.press("Enter")
    result = page.locator("#counter-result")
    expect(result).to_contain_text(f"Chéquier {booklet.number}")

    page.get_by_label("60 à 74 ans").check()
    page.get_by_label("Code postal du domicile").fill("33600")
    page.get_by_label(re.compile(r"^Nom\b")).fill("FANTOMAS")
    page.get_by_label(re.compile(r"^Prénom\b")).fill("zebulon")
    page.get_by_label("Date de naissance").fill(PERSON["birth_date"])
    page.get_by_role("button", name="Remettre le chéquier").click()

    expect(result).to_contain_text("Cette personne a déjà reçu 1 chéquier(s) de ce programme")
    reason = page.get_by_label(re.compile(r"^Motif de dérogation"))
    expect(reason).to_be_focused()
    screenshot(page, "counter-limit")
    reason.fill("Chéquier précédent volé")
    page.get_by_role("button", name="Remettre le chéquier").click()

    expect(page).to_have_url(re.compile(r"/recus/B-[0-9A-F]+/$"))
    expect(page.locator(".receipt")).to_contain_text(booklet.number)
    assert errors == []


def _qr_video(path, text: str) -> None:
    """A short Y4M video (Chromium's fake camera input) showing the cover's QR code of ``text``."""
    from PIL import Image

    from vouchers.printing.qr import QUIET_ZONE, qr_matrix

    matrix = qr_matrix(text)  # the very symbol printed on the cover
    side = len(matrix) + 2 * QUIET_ZONE
    qr = Image.new("L", (side, side), 255)
    for row, modules in enumerate(matrix):
        for column, dark in enumerate(modules):
            if dark:
                qr.putpixel((column + QUIET_ZONE, row + QUIET_ZONE), 0)
    qr = qr.resize((side * 8, side * 8), Image.NEAREST).convert("RGB")
    frame = Image.new("RGB", (640, 480), "white")
    frame.paste(qr, ((640 - qr.width) // 2, (480 - qr.height) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (320, 240)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with open(path, "wb") as video:
        video.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(10):
            video.write(b"FRAME\n" + planes)


def test_the_camera_reads_the_cover_qr_code_and_looks_the_booklet_up(
    browser, live_server, world, tmp_path
):
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS

    booklet = world.begles[0]
    video = tmp_path / "cover.y4m"
    _qr_video(video, booklet.number)  # the cover's QR code holds the booklet number
    camera_browser = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = camera_browser.new_context(locale="fr-FR")
        context.set_default_timeout(TIMEOUT_MS)
        context.grant_permissions(["camera"], origin=live_server.url)
        page = context.new_page()
        sign_in(page, live_server.url, world.begles_agent.user.email)
        page.goto(f"{live_server.url}/guichet/")

        page.get_by_role("button", name="Scanner avec la caméra").click()

        expect(page.locator("#counter-result")).to_contain_text(f"Chéquier {booklet.number}")
        expect(page.locator("video")).to_be_hidden()  # the camera closes once it has read
        assert page.evaluate(ACTIVE_NAME) == "number"
    finally:
        camera_browser.close()
