"""An issued order becomes print-ready PDFs that scanners and people can read back."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from datetime import date
from pathlib import Path

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch, reverse
from PIL import Image
from pypdf import PdfReader

from orgs.models import AuditEvent
from tests.factories import ProgrammeFactory
from vouchers.codes import display
from vouchers.models import Booklet, Cheque, OrderStatus, PrintRun, PrintRunStatus
from vouchers.printing import render_order_chunk
from vouchers.printing.design import (
    CHEQUE,
    COVER,
    PAGE_HEIGHT,
    design_cache_clear,
    validity_text,
)
from vouchers.printing.fonts import monospace_font
from vouchers.printing.proforma import render_proforma
from vouchers.services import printing as printing_services
from vouchers.services.printing import (
    CHUNK_BOOKLETS,
    chunk_file_name,
    chunk_title,
    print_chunk_render,
    print_run_finish,
    print_run_start,
)

from .helpers import approved_order, funder_membership, issued_order

pytestmark = pytest.mark.django_db

TOOLS = ("pdftoppm", "pdftotext", "zbarimg")
needs_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in TOOLS),
    reason="needs poppler-utils and zbar-tools: run make test as root to install them",
)
needs_pdftotext = pytest.mark.skipif(
    not shutil.which("pdftotext"),
    reason="needs poppler-utils and zbar-tools: run make test as root to install them",
)
DPI = 150


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "https://aptic.example.fr"


def _print(order, capture) -> PrintRun:
    """Start printing and run every task it queues (tasks are eager in tests)."""
    with capture(execute=True):
        run = print_run_start(order_id=order.pk)
    run.refresh_from_db()
    order.refresh_from_db()
    return run


def _codes(booklet: Booklet) -> list[str]:
    return list(booklet.cheques.order_by("position").values_list("code", flat=True))


def _pdftotext(path: Path) -> str:
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def _rasterise(pdf: Path, folder: Path) -> list[Image.Image]:
    subprocess.run(
        ["pdftoppm", "-r", str(DPI), "-png", str(pdf), str(folder / "page")],
        check=True,
        timeout=120,
    )
    return [Image.open(path) for path in sorted(folder.glob("page-*.png"))]


def _decode(page: Image.Image, *, left_mm: float, top_mm: float, size_mm: float, tmp: Path):
    """Every QR zbar finds in one square of the page (quiet zone included, plus a margin)."""
    scale = DPI / 25.4
    margin = 2
    box = tuple(
        round(value * scale)
        for value in (
            left_mm - margin,
            top_mm - margin,
            left_mm + size_mm + margin,
            top_mm + size_mm + margin,
        )
    )
    crop = tmp / "crop.png"
    page.crop(box).save(crop)
    result = subprocess.run(
        ["zbarimg", "-q", "--raw", str(crop)], capture_output=True, timeout=60, check=False
    )
    return result.stdout.decode().split()


def _logo() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 120), "darkred").save(buffer, format="PNG")
    return SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")


def _in_order(text: str, needles: list[str]) -> bool:
    position = -1
    for needle in needles:
        position = text.find(needle, position + 1)
        if position < 0:
            return False
    return True


@needs_tools
def test_every_printed_qr_decodes_to_its_cheque_and_every_code_is_printed_in_order(
    tmp_path, django_capture_on_commit_callbacks
):
    order = issued_order(lines={5: 1, 10: 1}, print_text="Offert par le Département.", logo=_logo())
    run = _print(order, django_capture_on_commit_callbacks)
    assert run.status == PrintRunStatus.DONE
    pdf = Path(run.file.path)
    assert pdf.suffix == ".pdf"  # one chunk: the run's file is that chunk's PDF

    booklets = list(order.booklets.order_by("print_position"))
    assert [b.size for b in booklets] == [5, 10]
    pages = _rasterise(pdf, tmp_path)
    assert len(pages) == (1 + 2) + (1 + 4)  # each booklet: cover, then 3 cheques a page

    decoded_covers, decoded_cheques = [], {b.number: [] for b in booklets}
    page_iter = iter(pages)
    for booklet in booklets:
        cover = next(page_iter)
        decoded_covers += _decode(
            cover, left_mm=COVER.qr.x, top_mm=COVER.qr.y, size_mm=COVER.qr.size, tmp=tmp_path
        )
        for _ in range(-(-booklet.size // 3)):
            page = next(page_iter)
            for top in CHEQUE.tops:
                decoded_cheques[booklet.number] += _decode(
                    page,
                    left_mm=CHEQUE.left + CHEQUE.qr.x,
                    top_mm=top + CHEQUE.qr.y,
                    size_mm=CHEQUE.qr.size,
                    tmp=tmp_path,
                )

    assert decoded_covers == [b.number for b in booklets]
    for booklet in booklets:
        expected = [f"https://aptic.example.fr/c/{code}" for code in _codes(booklet)]
        assert decoded_cheques[booklet.number] == expected

    text = _pdftotext(pdf)
    printed_codes = [display(code) for b in booklets for code in _codes(b)]
    assert _in_order(text, printed_codes)
    assert _in_order(text, ["1/5", "5/5", "1/10", "10/10"])
    for expected in (
        order.funder.name,
        order.programme.name,
        "Offert par le Département.",
        "50,00 €",
        "100,00 €",
        "Valable jusqu'au",
    ):
        assert expected in text


def test_rendering_a_chunk_again_gives_the_same_bytes_and_replaces_a_half_written_file(
    django_capture_on_commit_callbacks,
):
    order = issued_order(lines={10: 3, 5: 2})
    run = print_run_start(order_id=order.pk)  # its tasks are queued on commit: not run here
    chunk = run.chunks.get()
    name = chunk_file_name(order.reference, chunk.index)
    default_storage.save(name, ContentFile(b"%PDF-1.7 cut short by a killed worker"))

    with django_capture_on_commit_callbacks(execute=True):
        print_chunk_render(chunk_id=chunk.pk)
    chunk.refresh_from_db()
    assert chunk.done_at is not None
    assert chunk.file.name == name  # the same name, not a suffixed copy
    with chunk.file.open("rb") as handle:
        first = handle.read()
    assert first.startswith(b"%PDF-") and len(first) > 10_000

    # A fresh worker: no design or font cached, rendering the same chunk again.
    design_cache_clear()
    monospace_font.cache_clear()
    again = io.BytesIO()
    render_order_chunk(
        order=order,
        first_position=chunk.first_position,
        last_position=chunk.last_position,
        output=again,
        title=chunk_title(order.reference, chunk.index, run.chunks_total),
    )
    assert again.getvalue() == first

    # A retried task finds the chunk done and leaves the file and the counters alone.
    print_chunk_render(chunk_id=chunk.pk)
    run.refresh_from_db()
    assert run.chunks_done == 1
    with chunk.file.open("rb") as handle:
        assert handle.read() == first


_OTHER_PROCESS = textwrap.dedent(
    """
    import io
    import sys
    import django
    django.setup()
    from vouchers.printing.design import DesignData, render_design
    from vouchers.printing.vdp import BookletToPrint, render_booklets
    data = DesignData(
        reference="CMD-2026-000042", funder_name="Ville de Bègles", programme_name="Pass 2027",
        cheque_value_cents=1000, validity="Valable jusqu'au 31/12/2027", print_text="",
        site_url="https://aptic.example.fr", sizes=(5, 10),
    )
    booklets = [
        BookletToPrint("AP26-0000001", ["0123456789ABC", "DEFGHJKMNPQRS", "TVWXYZ0123456",
                                        "789ABCDEFGHJK", "MNPQRSTVWXYZ0"]),
        BookletToPrint("AP26-0000002", ["123456789ABCD"] * 10),
    ]
    output = io.BytesIO()
    render_booklets(render_design(data), booklets, output, title="t")
    sys.stdout.buffer.write(output.getvalue())
    """
)


def test_the_same_booklets_give_the_same_bytes_in_two_fresh_processes():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aptic.settings"}
    outputs = []
    for seed in ("1", "2"):  # different hash seeds: no set or dict order may leak into the file
        env["PYTHONHASHSEED"] = seed
        outputs.append(
            subprocess.run(
                [sys.executable, "-c", _OTHER_PROCESS],
                env=env,
                capture_output=True,
                check=True,
                timeout=180,
                cwd=Path(__file__).resolve().parents[2],
            ).stdout
        )
    assert outputs[0].startswith(b"%PDF-")
    assert outputs[0] == outputs[1]


def test_a_large_order_prints_in_chunks_bundled_in_a_zip_then_is_printed_and_the_funder_told(
    funder_admin, django_capture_on_commit_callbacks
):
    order = issued_order(lines={5: 230}, funder=funder_admin)
    mail.outbox.clear()
    run = _print(order, django_capture_on_commit_callbacks)

    assert CHUNK_BOOKLETS == 100
    assert (run.chunks_total, run.chunks_done, run.status) == (3, 3, PrintRunStatus.DONE)
    assert [(c.first_position, c.last_position) for c in run.chunks.all()] == [
        (1, 100),
        (101, 200),
        (201, 230),
    ]
    assert order.status == OrderStatus.PRINTED and order.printed_at is not None
    assert run.file.name == f"print/{order.reference}/{order.reference}.zip"

    with run.file.open("rb") as handle, zipfile.ZipFile(handle) as archive:
        names = archive.namelist()
        assert names == [f"{order.reference}-part-{i:03d}.pdf" for i in (1, 2, 3)]
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
        readers = [PdfReader(io.BytesIO(archive.read(name))) for name in names]
    page_counts = [len(reader.pages) for reader in readers]
    assert page_counts == [100 * 3, 100 * 3, 30 * 3]
    assert sum(page_counts) == 230 + 230 * 2  # a cover and two cheque pages per booklet
    # The static design is stored once per file: every page draws the same shared resources.
    first = readers[0]
    resources = {page.raw_get("/Resources").idnum for page in first.pages}
    assert len(resources) == 1
    assert first.pages[1].mediabox.height == pytest.approx(PAGE_HEIGHT * 72 / 25.4, abs=0.1)

    events = AuditEvent.objects.filter(target_id=str(order.pk))
    assert events.filter(action="vouchers.order.printed").count() == 1
    assert events.filter(action="vouchers.print_chunk.rendered").count() == 3
    assert events.get(action="vouchers.order.printed").organisation == order.funder

    [email] = [m for m in mail.outbox if order.reference in m.subject]
    assert funder_admin.user.email in email.to
    try:
        path = reverse("vouchers:order_detail", args=[order.pk])
    except NoReverseMatch:
        path = f"/commandes/{order.pk}/"
    assert f"https://aptic.example.fr{path}" in email.body

    # Everything is idempotent: starting or finishing again changes nothing and sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert print_run_start(order_id=order.pk) == run
        print_run_finish(run_id=run.pk)
    assert events.filter(action="vouchers.order.printed").count() == 1
    assert len([m for m in mail.outbox if order.reference in m.subject]) == 1


def test_two_workers_rendering_the_same_chunk_count_it_once(
    monkeypatch, django_capture_on_commit_callbacks
):
    order = issued_order(lines={5: 2})
    run = print_run_start(order_id=order.pk)
    chunk = run.chunks.get()
    render = printing_services.render_order_chunk

    def render_while_another_worker_finishes_first(**kwargs):
        monkeypatch.setattr(printing_services, "render_order_chunk", render)
        print_chunk_render(chunk_id=chunk.pk)  # the redelivered task, on another worker
        return render(**kwargs)

    monkeypatch.setattr(
        printing_services, "render_order_chunk", render_while_another_worker_finishes_first
    )
    with django_capture_on_commit_callbacks(execute=True):
        print_chunk_render(chunk_id=chunk.pk)

    run.refresh_from_db()
    chunk.refresh_from_db()
    assert (run.chunks_done, run.status) == (1, PrintRunStatus.DONE)
    assert chunk.file.name == chunk_file_name(order.reference, 1)
    rendered = AuditEvent.objects.filter(action="vouchers.print_chunk.rendered")
    assert rendered.count() == 1


def test_a_run_resumes_only_the_chunks_a_dead_worker_left(django_capture_on_commit_callbacks):
    order = issued_order(lines={5: 150})
    run = print_run_start(order_id=order.pk)  # queued on commit, never run: workers "died"
    first, _second = run.chunks.all()
    with django_capture_on_commit_callbacks(execute=True):
        print_chunk_render(chunk_id=first.pk)
    first.refresh_from_db()
    done_at = first.done_at

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert print_run_start(order_id=order.pk) == run
    assert len(callbacks) >= 1
    first.refresh_from_db()
    run.refresh_from_db()
    order.refresh_from_db()
    assert first.done_at == done_at  # not rendered twice
    assert (run.chunks_done, run.status, order.status) == (2, "done", OrderStatus.PRINTED)


def test_cheques_say_until_when_or_for_how_long_they_are_valid():
    funder = funder_membership()
    fixed = approved_order(
        lines={5: 1},
        funder=funder,
        programme=ProgrammeFactory(
            funder=funder.organisation, valid_until=date(2027, 12, 31), tolerance_days=0
        ),
    )
    months = approved_order(
        lines={5: 1},
        programme=ProgrammeFactory(
            funder=funder.organisation,
            validity_kind="months",
            valid_until=None,
            validity_months=12,
        ),
    )
    assert validity_text(fixed) == "Valable jusqu'au 31/12/2027"
    assert validity_text(months) == "Valable 12 mois à compter de la remise"


def test_only_issued_orders_print():
    order = approved_order(lines={5: 1})
    assert print_run_start(order_id=order.pk) is None
    assert not PrintRun.objects.filter(order=order).exists()
    assert Cheque.objects.filter(booklet__order=order).count() == 0


@needs_pdftotext
def test_the_pro_forma_shows_the_reference_lines_fee_and_total_in_french(tmp_path):
    order = approved_order(lines={10: 120, 5: 10}, purchase_order_number="BC-2026-17")
    assert order.total_cents == 1_300_000  # 1 250 cheques: 12 500 € + 4 % fee
    pdf = tmp_path / "proforma.pdf"
    pdf.write_bytes(render_proforma(order))
    text = _pdftotext(pdf)
    for expected in (
        order.reference,
        "Médias-Cité",
        order.funder.name,
        "BC-2026-17",
        "Chéquier de 10 chèques de 10,00 €",
        "100,00 €",  # unit price of a booklet of 10
        "12 000,00 €",  # 120 booklets of 10
        "12 500,00 €",  # face value
        "4 %",
        "500,00 €",  # fee
        "13 000,00 €",  # total
        "Pro forma — ne vaut pas facture",
    ):
        assert expected in text, expected
