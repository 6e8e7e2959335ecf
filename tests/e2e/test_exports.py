"""A funder filters its orders in a real browser and downloads them as CSV and XLSX: the files
hold the rows the filtered table shows."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.e2e.helpers import sign_in
from tests.factories import ProgrammeFactory
from tests.vouchers.helpers import actor_for, funder_membership
from vouchers.services.orders import order_create, order_submit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None


def test_a_funder_downloads_its_filtered_orders_as_csv_and_xlsx(page, live_server, tmp_path):
    funder = funder_membership(name="Département de la Gironde")
    programme = ProgrammeFactory(funder=funder.organisation, name="Chèque APTIC Gironde")
    orders = [
        order_create(actor=actor_for(funder), programme=programme, lines={10: n}) for n in (1, 2, 3)
    ]
    for order in orders[:2]:
        order_submit(actor=actor_for(funder), order=order)

    sign_in(page, live_server.url, funder.user.email)
    page.goto(f"{live_server.url}/commandes/")
    page.get_by_label("État").select_option(label="Envoyée")
    page.get_by_role("button", name="Filtrer").click()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(2)
    shown = [rows.nth(i).locator("td").first.inner_text() for i in range(2)]
    assert sorted(shown) == sorted(order.reference for order in orders[:2])

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Exporter en CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("commandes-")
    assert download.suggested_filename.endswith(".csv")
    saved = tmp_path / "commandes.csv"
    download.save_as(saved)
    lines = list(csv.reader(io.StringIO(saved.read_text("utf-8-sig")), delimiter=";"))
    assert lines[0][0] == "Référence"
    assert [line[0] for line in lines[1:]] == shown

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Exporter en XLSX").click()
    saved = Path(tmp_path / "commandes.xlsx")
    download_info.value.save_as(saved)
    sheet = load_workbook(saved).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == shown
