"""CSV and XLSX exports of the list pages: the rows the page shows (every page, with its filters),
never another organisation's, in a constant number of queries, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from aptic.exports import Column, csv_text, neutralise
from orgs.models import AuditEvent, MemberRole
from redemption.services.redeem import cheques_redeem
from tests.factories import MembershipFactory, ProgrammeFactory
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import (
    actor_for,
    funder_membership,
    issued_order,
    operator_membership,
)
from vouchers.models import Booklet, BookletStatus, Order, OrderStatus
from vouchers.services.distribution import Person, booklet_assign, booklets_allocate
from vouchers.services.orders import order_create, order_submit

pytestmark = pytest.mark.django_db


# --- Helpers -----------------------------------------------------------------------------------


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content)
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def xlsx_sheet(response):
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    body = b"".join(response.streaming_content)
    return load_workbook(io.BytesIO(body)).active


def export(client, url: str, fmt: str, **params):
    return client.get(url, {**params, "export": fmt})


def draft_orders(funder, count: int, *, programme=None, **fields) -> list[Order]:
    programme = programme or ProgrammeFactory(funder=funder.organisation)
    return [
        order_create(actor=actor_for(funder), programme=programme, lines={10: 1}, **fields)
        for _ in range(count)
    ]


# --- The mechanics -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["=1+1", "+33 5 56", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_as_a_formula_is_neutralised(text):
    assert neutralise(text) == "'" + text
    assert csv_text(text, "text") == "'" + text


def test_plain_text_and_numbers_are_left_alone():
    assert neutralise("CMD-2026-000001") == "CMD-2026-000001"
    assert csv_text(-1250, "money") == "-12,50"  # our own numbers are never prefixed
    assert csv_text(123456, "money") == "1234,56"
    assert csv_text(7, "int") == "7"
    assert csv_text(datetime.date(2026, 11, 27), "date") == "27/11/2026"
    assert csv_text(None, "money") == ""


def test_datetimes_are_written_in_paris_time():
    utc = datetime.datetime(2026, 7, 1, 22, 30, tzinfo=datetime.UTC)
    assert csv_text(utc, "datetime") == "02/07/2026 00:30"
    assert csv_text(utc, "date") == "02/07/2026"


def test_rows_beyond_a_sheets_limit_go_on_to_a_second_sheet_with_the_header(monkeypatch):
    from aptic import exports

    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 3)  # header + 2 rows per sheet
    handle = io.BytesIO()
    columns = [Column("N°", lambda n: n, "int")]
    exports.xlsx_write(handle, range(5), columns, "Encaissements")
    workbook = load_workbook(handle)
    assert workbook.sheetnames == ["Encaissements", "Encaissements (2)", "Encaissements (3)"]
    assert [list(ws.values) for ws in workbook] == [
        [("N°",), (0,), (1,)],
        [("N°",), (2,), (3,)],
        [("N°",), (4,)],
    ]


def test_control_characters_typed_into_a_field_do_not_break_the_workbook():
    from aptic import exports

    handle = io.BytesIO()
    exports.xlsx_write(handle, ["bon\x07 n\x1b°\x00 12"], [Column("Bon", lambda v: v)], "x")
    assert load_workbook(handle).active["A2"].value == "bon n° 12"
    assert csv_text("bon\x07", "text") == "bon\x07"  # CSV carries them as they are


def test_a_column_reads_a_dotted_path_and_stops_at_a_missing_link():
    column = Column("x", "holder.name")
    assert column.read(Booklet(holder=None)) is None


# --- Orders: the page's rows, its filter, every page ------------------------------------------


def test_funder_exports_exactly_the_orders_the_filtered_page_shows(client_for):
    funder = funder_membership()
    drafts = draft_orders(funder, 3, purchase_order_number="BC-1")
    for order in drafts[:2]:
        order_submit(actor=actor_for(funder), order=order)
    draft_orders(funder_membership(), 2)  # another funder's orders
    client = client_for(funder)
    url = reverse("vouchers:order_list")

    page = client.get(url, {"etat": OrderStatus.SUBMITTED})
    shown = [order.reference for order in page.context["orders"]]
    assert len(shown) == 2
    assert "Exporter en CSV" in page.content.decode()
    assert f"{url}?etat=submitted&amp;export=xlsx" in page.content.decode()

    rows = csv_rows(export(client, url, "csv", etat=OrderStatus.SUBMITTED))
    assert rows[0][:3] == ["Référence", "Programme", "Chéquiers"]
    assert "Commanditaire" not in rows[0]  # the funder's own page has no funder column
    assert [row[0] for row in rows[1:]] == shown
    assert rows[1][2] == "1 \u00d7 10"
    assert rows[1][rows[0].index("Total")] == f"{drafts[1].total_cents / 100:.2f}".replace(".", ",")

    every = csv_rows(export(client, url, "csv"))
    assert sorted(row[0] for row in every[1:]) == sorted(order.reference for order in drafts)


def test_operator_exports_every_funders_orders_with_the_funder_column(client_for):
    operator = operator_membership()
    first, second = funder_membership(name="Gironde"), funder_membership(name="Bordeaux")
    draft_orders(first, 1)
    draft_orders(second, 2)
    rows = csv_rows(export(client_for(operator), reverse("vouchers:order_list"), "csv"))
    assert rows[0][1] == "Commanditaire"
    assert sorted(row[1] for row in rows[1:]) == ["Bordeaux", "Bordeaux", "Gironde"]


def test_operator_queue_exports_only_orders_waiting_for_approval(client_for):
    operator = operator_membership()
    funder = funder_membership()
    drafts = draft_orders(funder, 3)
    order_submit(actor=actor_for(funder), order=drafts[0])
    rows = csv_rows(export(client_for(operator), reverse("vouchers:order_queue"), "csv"))
    assert [row[0] for row in rows[1:]] == [drafts[0].reference]


def test_a_purchase_order_number_written_as_a_formula_is_not_run(client_for):
    funder = funder_membership()
    draft_orders(funder, 1, purchase_order_number='=HYPERLINK("http://x","y")')
    client = client_for(funder)
    url = reverse("vouchers:order_list")
    rows = csv_rows(export(client, url, "csv"))
    assert rows[1][rows[0].index("Bon de commande")] == '\'=HYPERLINK("http://x","y")'
    sheet = xlsx_sheet(export(client, url, "xlsx"))
    header = [cell.value for cell in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("Bon de commande") + 1)
    assert cell.data_type == "s"
    assert cell.value == '\'=HYPERLINK("http://x","y")'


def test_the_orders_workbook_has_numbers_in_euros_and_dates(client_for):
    funder = funder_membership()
    (order,) = draft_orders(funder, 1)
    answer = export(client_for(funder), reverse("vouchers:order_list"), "xlsx")
    today = datetime.date.today()
    assert answer["Content-Disposition"] == (
        f'attachment; filename="commandes-{today:%Y-%m-%d}.xlsx"'
    )
    sheet = xlsx_sheet(answer)
    header = [cell.value for cell in sheet[1]]
    assert header[0] == "Référence"
    assert sheet[1][0].font.bold
    row = {name: sheet.cell(row=2, column=i + 1) for i, name in enumerate(header)}
    assert row["Référence"].value == order.reference
    total = row["Total"]
    assert total.data_type == "n"
    assert Decimal(str(total.value)) == Decimal(order.total_cents) / 100
    assert "€" in total.number_format
    created = row["Créée le"]
    assert isinstance(created.value, datetime.datetime)
    assert created.number_format == "dd/mm/yyyy hh:mm"
    assert row["Envoyée le"].value is None  # a draft was never sent
    assert sheet.max_row == 2


def test_an_export_speaks_the_language_of_the_page(client_for):
    funder = funder_membership()
    draft_orders(funder, 1)
    client = client_for(funder)
    client.cookies["django_language"] = "en"
    rows = csv_rows(export(client, reverse("vouchers:order_list"), "csv"))
    assert rows[0][0] == "Reference"
    assert rows[1][7] == "Draft"  # the state's label, translated once for the whole file


def test_an_unknown_format_shows_the_page(client_for):
    funder = funder_membership()
    answer = client_for(funder).get(reverse("vouchers:order_list"), {"export": "pdf"})
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/html")


def test_an_export_needs_the_pages_permission(client_for, provider_admin):
    # A provider has no orders page: its export is refused the same way.
    answer = export(client_for(provider_admin), reverse("vouchers:order_list"), "csv")
    assert answer.status_code == 403


def test_each_export_is_in_the_audit_log_with_its_filters(client_for):
    funder = funder_membership()
    client = client_for(funder)
    export(client, reverse("vouchers:order_list"), "xlsx", etat="draft", page="3")
    event = AuditEvent.objects.get(action="exports.list.exported")
    assert event.actor == funder.user
    assert event.organisation == funder.organisation
    assert event.data == {"list": "commandes", "format": "xlsx", "filters": {"etat": "draft"}}


# --- Booklets, movements, follow-up: all pages, tenancy, no personal data ---------------------


def test_booklet_export_has_every_page_of_the_filtered_list_and_nobody_elses(client_for):
    funder = funder_membership(is_distributor=True)
    programme = ProgrammeFactory(funder=funder.organisation)
    issued_order(lines={5: 60}, funder=funder, programme=programme)
    booklets_allocate(
        actor=actor_for(funder), distributor=funder.organisation, programme=programme, count=55
    )
    issued_order(lines={5: 2})  # another funder's booklets
    client = client_for(funder)
    url = reverse("vouchers:booklet_list")
    page = client.get(url, {"etat": BookletStatus.ALLOCATED})
    assert page.context["page"].paginator.count == 55
    assert len(page.context["page"].object_list) == 50  # the page shows 50

    rows = csv_rows(export(client, url, "csv", etat=BookletStatus.ALLOCATED))
    expected = list(
        Booklet.objects.filter(funder=funder.organisation, status=BookletStatus.ALLOCATED)
        .order_by("-number")
        .values_list("number", flat=True)
    )
    assert [row[0] for row in rows[1:]] == expected
    assert {row[rows[0].index("État")] for row in rows[1:]} == {"Confié à une structure relais"}

    sheet = xlsx_sheet(export(client, url, "xlsx", etat=BookletStatus.ALLOCATED, tri="number"))
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == expected[::-1]


def test_no_export_names_a_beneficiary(client_for):
    funder = funder_membership(is_distributor=True)
    programme = ProgrammeFactory(funder=funder.organisation)
    issued_order(lines={5: 2}, funder=funder, programme=programme)
    booklets_allocate(
        actor=actor_for(funder), distributor=funder.organisation, programme=programme, count=2
    )
    booklet = Booklet.objects.filter(holder=funder.organisation).first()
    booklet_assign(
        actor=actor_for(funder),
        booklet=booklet,
        person=Person("Zébulon", "Quasimodo", datetime.date(1931, 7, 14)),
        age_bracket="60-74",
        postcode="33000",
    )
    client = client_for(funder)
    text = ""
    for name in ("vouchers:booklet_list", "vouchers:movement_list", "audit_list"):
        for fmt in ("csv", "xlsx"):
            body = b"".join(export(client, reverse(name), fmt).streaming_content)
            if fmt == "csv":
                text += body.decode("utf-8-sig")
            else:
                for row in load_workbook(io.BytesIO(body)).active.iter_rows(values_only=True):
                    text += ";".join(str(value) for value in row) + "\n"
    for view in ("structures", "agents"):
        body = b"".join(
            export(client, reverse("vouchers:follow_up"), "csv", vue=view).streaming_content
        )
        text += body.decode("utf-8-sig")
    assert booklet.number in text  # the hand-out is there…
    for personal in ("Zébulon", "Quasimodo", "Zebulon", "1931", "14/07"):
        assert personal.lower() not in text.lower()  # …but not the person


def test_the_follow_up_exports_each_table_in_both_formats(client_for):
    funder = funder_membership(is_distributor=True)
    programme = ProgrammeFactory(funder=funder.organisation)
    issued_order(lines={5: 4}, funder=funder, programme=programme)
    booklets_allocate(
        actor=actor_for(funder), distributor=funder.organisation, programme=programme, count=3
    )
    booklet_assign(
        actor=actor_for(funder),
        booklet=Booklet.objects.filter(holder=funder.organisation).first(),
        person=Person("Jeanne", "Durand", datetime.date(1950, 2, 3)),
        age_bracket="60-74",
        postcode="33000",
    )
    client = client_for(funder)
    url = reverse("vouchers:follow_up")
    page = client.get(url)
    assert f"{url}?vue=agents&amp;export=xlsx" in page.content.decode()
    rows = csv_rows(export(client, url, "csv", vue="agents"))
    assert rows[0][0] == "Agent"
    assert rows[1:] == [
        [
            r.label,
            str(r.in_stock),
            str(r.allocated),
            str(r.handed_out),
            str(r.started),
            str(r.blocked),
        ]
        for r in page.context["by_agent"]
    ]
    sheet = xlsx_sheet(export(client, url, "xlsx", vue="structures"))
    values = list(sheet.iter_rows(min_row=2, values_only=True))
    assert values == [
        (r.label, r.in_stock, r.allocated, r.handed_out, r.started, r.blocked)
        for r in page.context["by_distributor"]
    ]
    assert all(isinstance(v, int) for row in values for v in row[1:])


# --- Redemptions and payouts ------------------------------------------------------------------


def _redemptions(count: int):
    world = handed_out_cheques(booklets=-(-count // 10), size=10, people_offset=count * 100)
    member, site = accredited_provider_member(services=[world.service])
    for code in world.codes[:count]:
        cheques_redeem(actor=actor_for(member), codes=[code], service=world.service, site=site)
    return member


def test_provider_exports_its_redemptions_only(client_for):
    mine = _redemptions(3)
    _redemptions(2)  # another provider's
    client = client_for(mine)
    url = reverse("redemption:redemption_list")
    page = client.get(url)
    rows = csv_rows(export(client, url, "csv"))
    assert [int(row[0]) for row in rows[1:]] == [r.pk for r in page.context["page"].object_list]
    assert len(rows) == 4
    sheet = xlsx_sheet(export(client, url, "xlsx"))
    header = [cell.value for cell in sheet[1]]
    amount = sheet.cell(row=2, column=header.index("Montant") + 1)
    assert amount.value == 10 and "€" in amount.number_format


# --- The audit log ----------------------------------------------------------------------------


def test_audit_export_follows_the_action_filter_and_the_organisation(client_for):
    funder = funder_membership()
    draft_orders(funder, 2)
    draft_orders(funder_membership(), 3)  # another funder's events
    client = client_for(funder)
    url = reverse("audit_list")
    page = client.get(url, {"action": "vouchers.order"})
    shown = [(event.action, event.target_label) for event in page.context["page"]]
    assert len(shown) == 2
    rows = csv_rows(export(client, url, "csv", action="vouchers.order"))
    assert rows[0] == ["Date", "Personne", "Action", "Objet", "Détails", "IP"]
    assert [(row[2], row[3]) for row in rows[1:]] == shown


# --- Query counts do not grow with the rows ---------------------------------------------------


def _scene_orders(count: int):
    funder = funder_membership()
    draft_orders(funder, count)
    return funder, reverse("vouchers:order_list")


def _scene_booklets(count: int):
    funder = funder_membership()
    issued_order(lines={5: count}, funder=funder)
    return funder, reverse("vouchers:booklet_list")


def _scene_movements(count: int):
    funder = funder_membership(is_distributor=True)
    programme = ProgrammeFactory(funder=funder.organisation)
    issued_order(lines={5: count}, funder=funder, programme=programme)
    for _ in range(count):
        booklets_allocate(
            actor=actor_for(funder), distributor=funder.organisation, programme=programme, count=1
        )
    return funder, reverse("vouchers:movement_list")


def _scene_redemptions(count: int):
    return _redemptions(count), reverse("redemption:redemption_list")


def _scene_audit(count: int):
    funder, _url = _scene_orders(count)
    return funder, reverse("audit_list")


def _scene_ledger(count: int):
    funder = funder_membership()
    programme = ProgrammeFactory(funder=funder.organisation)
    for _ in range(count):
        issued_order(lines={5: 1}, funder=funder, programme=programme)
    return funder, reverse("vouchers:account")


def _scene_messages(count: int):
    from tests.vouchers.helpers import approved_order

    funder = funder_membership()
    programme = ProgrammeFactory(funder=funder.organisation)
    operator = operator_membership()
    for _ in range(count):
        approved_order(lines={5: 1}, funder=funder, operator=operator, programme=programme)
    return funder, reverse("notification_list")


def _scene_programmes(count: int):
    funder = funder_membership()
    for _ in range(count):
        ProgrammeFactory(funder=funder.organisation)
    return funder, reverse("vouchers:programme_list")


SCENES = {
    "orders": _scene_orders,
    "booklets": _scene_booklets,
    "movements": _scene_movements,
    "redemptions": _scene_redemptions,
    "audit": _scene_audit,
    "ledger": _scene_ledger,
    "messages": _scene_messages,
    "programmes": _scene_programmes,
}


def _queries(client, url: str, fmt: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = export(client, url, fmt)
        body = b"".join(response.streaming_content)
    if fmt == "csv":
        rows = len(body.decode("utf-8-sig").splitlines()) - 1
    else:
        rows = load_workbook(io.BytesIO(body)).active.max_row - 1
    return len(queries), rows


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("scene", sorted(SCENES))
def test_the_query_count_does_not_grow_with_the_rows(scene, fmt, client_for):
    measured = []
    for count in (3, 30):
        membership, url = SCENES[scene](count)
        client = client_for(membership)
        client.get(url)  # warm the session and content-type caches
        queries, rows = _queries(client, url, fmt)
        assert rows >= count
        measured.append(queries)
    assert measured[0] == measured[1], measured


# --- Settlement: the provider's payouts, the operator's batches and a batch's payouts ---------


@pytest.fixture
def settled():
    """Two providers paid in one computed batch: alpha 3 cheques (30 €), beta 2 (20 €)."""
    from datetime import timedelta

    from django.utils import timezone

    from redemption.models import Redemption
    from redemption.services.settlement import batch_compute, batch_create

    cheques = handed_out_cheques(booklets=1, size=10)
    (alpha, alpha_site), (beta, beta_site) = (
        accredited_provider_member(services=[cheques.service]) for _ in range(2)
    )
    for member, site, codes in (
        (alpha, alpha_site, cheques.codes[:3]),
        (beta, beta_site, cheques.codes[3:5]),
    ):
        for code in codes:
            cheques_redeem(
                actor=actor_for(member), codes=[code], service=cheques.service, site=site
            )
    Redemption.objects.update(created_at=timezone.now() - timedelta(days=1))
    operator = operator_membership()
    batch = batch_create(
        actor=actor_for(operator), period_end=timezone.localdate() - timedelta(days=1)
    )
    return alpha, beta, operator, batch_compute(batch_id=batch.pk)


def test_a_provider_exports_its_own_payouts(settled, client_for):
    alpha, _beta, _operator, batch = settled
    client = client_for(alpha)
    url = reverse("settlement:payout_list")
    assert "Exporter en XLSX" in client.get(url).content.decode()
    rows = csv_rows(export(client, url, "csv"))
    assert rows[0][:4] == ["Lot", "Encaissements jusqu'au", "Encaissements", "Montant"]
    assert rows[1:] == [
        [batch.reference, f"{batch.period_end:%d/%m/%Y}", "3", "30,00", *rows[1][4:]]
    ]
    sheet = xlsx_sheet(export(client, url, "xlsx"))
    (row,) = sheet.iter_rows(min_row=2)
    assert row[1].value == datetime.datetime.combine(batch.period_end, datetime.time())
    assert row[1].number_format == "dd/mm/yyyy"
    assert row[3].value == 30


def test_operators_export_the_batches_and_a_batchs_payouts(settled, client_for):
    alpha, beta, operator, batch = settled
    client = client_for(operator)
    rows = csv_rows(export(client, reverse("settlement:batch_list"), "csv"))
    assert [row[0] for row in rows[1:]] == [batch.reference]
    detail = reverse("settlement:batch_detail", args=[batch.pk])
    assert f"{detail}?export=csv" in client.get(detail).content.decode()
    rows = csv_rows(export(client, detail, "csv"))
    assert [(row[0], row[2], row[3]) for row in rows[1:]] == sorted(
        [(alpha.organisation.name, "30,00", "3"), (beta.organisation.name, "20,00", "2")]
    )
    # The account number stays masked, as on the page.
    iban = rows[0].index("IBAN")
    assert all(row[iban].startswith("•••• ") and len(row[iban]) == 9 for row in rows[1:])
    # A provider reaches neither list.
    provider = client_for(alpha)
    assert export(provider, reverse("settlement:batch_list"), "csv").status_code == 403
    assert export(provider, detail, "xlsx").status_code == 403


# --- Members, accreditation queue, account ----------------------------------------------------


def test_members_export_lists_the_organisations_members_only(client_for):
    funder = funder_membership()
    colleague = MembershipFactory(organisation=funder.organisation, role=MemberRole.AGENT)
    MembershipFactory(organisation=funder_membership().organisation)  # someone else's member
    client = client_for(funder)
    assert "Exporter en CSV" in client.get(reverse("member_list")).content.decode()
    rows = csv_rows(export(client, reverse("member_list"), "csv"))
    assert rows[0] == ["Nom", "E-mail", "Rôle", "Depuis"]
    assert sorted(row[1] for row in rows[1:]) == sorted([funder.user.email, colleague.user.email])


def test_the_accreditation_queue_export_follows_its_filter(client_for):
    from orgs.models import AccreditationStatus
    from tests.factories import accredited_provider

    operator = operator_membership()
    approved = accredited_provider("Cap Numérique")
    client = client_for(operator)
    url = reverse("accreditation_queue")
    page = client.get(url, {"etat": AccreditationStatus.APPROVED}).content.decode()
    assert f"{url}?etat=approved&amp;export=csv" in page
    assert csv_rows(export(client, url, "csv"))[1:] == []  # waiting for a decision: none
    rows = csv_rows(export(client, url, "csv", etat=AccreditationStatus.APPROVED))
    assert [row[1] for row in rows[1:]] == [approved.name]
    assert rows[1][rows[0].index("Lieux")] == "1"


def test_the_account_export_has_the_funders_ledger_entries(client_for):
    funder = funder_membership()
    order = issued_order(lines={5: 2}, funder=funder)
    issued_order(lines={5: 1})  # another funder's
    client = client_for(funder)
    url = reverse("vouchers:account")
    page = client.get(url)
    shown = [(e.get_kind_display(), e.amount_cents) for e in page.context["page"].object_list]
    assert shown
    sheet = xlsx_sheet(export(client, url, "xlsx"))
    values = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [(row[2], round(row[4] * 100)) for row in values] == shown
    assert {row[3] for row in values} == {order.reference}


def test_messages_sent_export_has_the_organisations_messages_only(client_for):
    from orgs.models import Notification
    from tests.vouchers.helpers import approved_order

    funder = funder_membership()
    approved_order(lines={5: 1}, funder=funder)
    approved_order(lines={5: 1})  # another funder's messages
    mine = Notification.objects.filter(organisation=funder.organisation)
    assert mine.exists()
    client = client_for(funder)
    url = reverse("notification_list")
    assert f"{url}?export=csv" in client.get(url).content.decode()
    rows = csv_rows(export(client, url, "csv"))
    assert rows[0] == ["Date", "Destinataire", "Type", "Objet", "État"]
    assert sorted(row[3] for row in rows[1:]) == sorted(mine.values_list("subject", flat=True))
    assert "Commande validée" in {row[2] for row in rows[1:]}


def test_operators_export_the_organisations_and_the_funders_balances(client_for):
    operator = operator_membership()
    funder = funder_membership(name="Département de la Gironde")
    order = issued_order(lines={5: 2}, funder=funder)
    client = client_for(operator)
    rows = csv_rows(export(client, reverse("organisation_list"), "csv"))
    assert rows[0][:3] == ["Nom", "Rôles", "SIRET"]
    assert "Département de la Gironde" in {row[0] for row in rows[1:]}
    url = reverse("vouchers:balances")
    page = client.get(url)
    assert f"{url}?export=xlsx" in page.content.decode()
    sheet = xlsx_sheet(export(client, url, "xlsx"))
    values = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert (
        Decimal(str(values["Département de la Gironde"][1]))
        == Decimal(order.face_value_cents) / 100
    )
    # Balances are operators' only.
    assert export(client_for(funder), url, "csv").status_code == 403


def test_a_funder_exports_its_programmes_and_not_another_funders(client_for):
    funder = funder_membership(name="Ville de Bordeaux")
    mine = ProgrammeFactory(funder=funder.organisation, name="Chèque APTIC Bordeaux")
    ProgrammeFactory(name="Chèque APTIC Gironde")  # another funder's
    client = client_for(funder)
    url = reverse("vouchers:programme_list")
    assert f"{url}?export=csv" in client.get(url).content.decode()
    rows = csv_rows(export(client, url, "csv"))
    assert [row[0] for row in rows[1:]] == ["Chèque APTIC Bordeaux"]
    assert rows[1][1] == mine.categories.get().name
    assert rows[1][2:4] == ["Ville de Bordeaux", "10,00"]
