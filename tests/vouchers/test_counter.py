"""The social worker's counter: scan a booklet, hand it to a person, print the receipt.

Names and birth date only feed the per-person limit: they must never reach the database, the
logs, the session, a message or a URL.
"""

from __future__ import annotations

import html
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from io import BytesIO

import pytest
from django.contrib.sessions.models import Session
from django.core.signals import got_request_exception
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.views.debug import ExceptionReporter

from orgs.audit import Actor
from orgs.models import AuditEvent, MemberRole, Membership, Organisation
from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    ProgrammeFactory,
    ServiceCategoryFactory,
    accredited_provider,
)
from tests.vouchers.helpers import (
    actor_for,
    funder_membership,
    issued_order,
    operator_membership,
)
from vouchers.forms_counter import PERSON_NOTICE
from vouchers.models import Beneficiary, Booklet, BookletStatus, Programme
from vouchers.selectors.counter import booklet_number_normalise
from vouchers.services.distribution import booklet_block, booklets_allocate

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
PERSON = {"last_name": "Fantômas", "first_name": "Zébulon", "birth_date": "1961-07-14"}
PROFILE = {"age_bracket": "60-74", "postcode": "33130", "gender": "male", "situation": "rsa"}
# Every way the person's identity could leak, as searched for in the database and the logs.
SECRETS = ("fantômas", "fantomas", "zébulon", "zebulon", "1961-07-14", "14/07/1961")


@dataclass
class Counter:
    programme: Programme
    funder: Membership
    operator: Membership
    begles_admin: Membership
    begles_agent: Membership
    pessac_admin: Membership
    pessac_agent: Membership
    begles: list[Booklet]
    pessac: list[Booklet]


def _distributor(name: str, postcode: str, city: str) -> tuple[Membership, Membership]:
    organisation = OrganisationFactory(
        name=name, postcode=postcode, city=city, is_funder=False, is_distributor=True
    )
    return (
        MembershipFactory(organisation=organisation, role=MemberRole.ADMIN),
        MembershipFactory(organisation=organisation, role=MemberRole.AGENT),
    )


def _provider(name: str, postcode: str, city: str, departement: str, services=()) -> Organisation:
    """A provider whose accreditation is approved, with one approved site offering ``services``."""
    return accredited_provider(
        name, postcode, city, departement, services, address="3 place de la Mairie"
    )


def build_world() -> Counter:
    """A funder's programme in Gironde, two distributors holding two booklets each, providers."""
    funder = funder_membership(name="Département de la Gironde")
    operator = operator_membership()
    programme = ProgrammeFactory(
        funder=funder.organisation,
        name="Chèque APTIC Gironde",
        departements=["33"],
        max_booklets_per_beneficiary=1,
        categories=[
            ServiceCategoryFactory(name="Démarches administratives en ligne"),
            ServiceCategoryFactory(name="Prendre en main un smartphone"),
        ],
    )
    issued_order(lines={10: 4}, funder=funder, operator=operator, programme=programme)
    begles_admin, begles_agent = _distributor("CCAS de Bègles", "33130", "Bègles")
    pessac_admin, pessac_agent = _distributor("CCAS de Pessac", "33600", "Pessac")
    begles = booklets_allocate(
        actor=actor_for(funder), distributor=begles_admin.organisation, count=2
    )
    pessac = booklets_allocate(
        actor=actor_for(funder), distributor=pessac_admin.organisation, count=2
    )
    services = list(programme.categories.all())
    _provider("Médiathèque de Pessac", "33600", "Pessac", "33", services)
    _provider("Cap Numérique Bègles", "33130", "Bègles", "33", services)
    _provider("Espace numérique de Lille", "59000", "Lille", "59", services)
    return Counter(
        programme=programme,
        funder=funder,
        operator=operator,
        begles_admin=begles_admin,
        begles_agent=begles_agent,
        pessac_admin=pessac_admin,
        pessac_agent=pessac_agent,
        begles=list(begles.booklets.order_by("number")),
        pessac=list(pessac.booklets.order_by("number")),
    )


@pytest.fixture
def world() -> Counter:
    return build_world()


def lookup(client, number: str):
    return client.post(reverse("vouchers:counter_lookup"), {"number": number}, **HTMX)


def hand_over(client, booklet: Booklet, **fields):
    data = {**PROFILE, **PERSON, **fields}
    return client.post(reverse("vouchers:counter_assign", args=[booklet.number]), data, **HTMX)


def text(response) -> str:
    """The visible text of an HTML answer, whitespace collapsed."""
    body = html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode()))
    return re.sub(r"[ \t\r\n]+", " ", body).replace("\u2019", "'")


# --- The page ----------------------------------------------------------------------------------


def test_the_counter_page_answers_with_the_number_field_focused_from_the_first_paint(
    world, client_for
):
    response = client_for(world.begles_agent).get(reverse("vouchers:counter"))

    assert response.status_code == 200
    markup = response.content.decode()
    [field] = re.findall(r"<input[^>]*name=\"number\"[^>]*>", markup)
    assert " autofocus" in field
    assert 'autocomplete="off"' in field
    assert "data-scan-field" in field
    assert re.search(r'<label for="id_number"[^>]*>Numéro du chéquier</label>', markup)
    assert "Scanner avec la caméra" in markup
    assert 'hx-post="/guichet/chequier/"' in markup
    assert 'hx-target="#counter-result"' in markup
    assert "/static/vendor/jsqr/jsQR.js" in markup  # vendored, no CDN
    # Scripts are files (loaded with defer), never inline.
    scripts = re.findall(r"<script[^>]*>", markup)
    assert scripts and all("src=" in tag and "defer" in tag for tag in scripts)
    assert any("js/scan-field.js" in tag for tag in scripts)


def test_the_counter_is_for_distributors_and_linked_from_their_home(world, client_for):
    assert client_for(world.funder).get(reverse("vouchers:counter")).status_code == 403
    home = client_for(world.begles_agent).get(reverse("home")).content.decode()
    assert home.count('href="/guichet/"') == 2  # the navigation and the home card
    assert 'href="/guichet/"' not in client_for(world.funder).get(reverse("home")).content.decode()


# --- Looking a booklet up ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("AP26-0001234", "AP26-0001234"),
        ("  ap260001234\n", "AP26-0001234"),
        ("ap26 - 000 1234", "AP26-0001234"),
        ("QPé-)ààà&é\"'", "AP26-0001234"),  # a QWERTY scanner on an AZERTY computer
        ("AP26-001234", None),
        ("AP2-0001234", None),
        ("https://aptic.fr/c/ABCDEFGHJKMNP", None),
        ("", None),
    ],
)
def test_booklet_numbers_are_normalised(typed, expected):
    assert booklet_number_normalise(typed) == expected


def test_a_held_booklet_shows_its_details_and_the_beneficiary_form(world, client_for):
    booklet = world.begles[0]
    typed = booklet.number.lower().replace("-", "")

    response = lookup(client_for(world.begles_agent), typed)

    assert response.status_code == 200
    markup = response.content.decode()
    assert "<html" not in markup  # only the result region
    page = text(response)
    assert f"Chéquier {booklet.number}" in page
    assert "100,00\u00a0€" in page
    assert "10 chèques de 10,00\u00a0€" in page
    last_day = world.programme.last_valid_day.strftime("%d/%m/%Y")
    assert f"Jusqu'au {last_day}" in page
    assert "Chèque APTIC Gironde" in page
    assert "Démarches administratives en ligne" in page
    assert "Prendre en main un smartphone" in page
    assert "Département 33" in page
    assert str(PERSON_NOTICE).replace("\u2019", "'") in page
    for name in ("last_name", "first_name"):
        [field] = re.findall(rf"<input[^>]*name=\"{name}\"[^>]*>", markup)
        assert 'autocomplete="off"' in field
    assert 'name="age_bracket"' in markup and 'type="radio"' in markup
    assert 'name="postcode"' in markup
    assert "Motif de dérogation" not in page
    assert f'hx-post="/guichet/chequier/{booklet.number}/remettre/"' in markup


def test_a_programme_valid_for_months_says_so(world, client_for):
    programme = ProgrammeFactory(
        funder=world.funder.organisation,
        validity_kind="months",
        valid_until=None,
        validity_months=12,
        departements=[],
    )
    issued_order(lines={5: 1}, funder=world.funder, programme=programme)
    movement = booklets_allocate(
        actor=actor_for(world.funder),
        distributor=world.begles_agent.organisation,
        programme=programme,
        count=1,
    )
    booklet = movement.booklets.get()

    page = text(lookup(client_for(world.begles_agent), booklet.number))

    assert "12 mois à compter de la remise" in page
    assert "50,00\u00a0€" in page
    assert "Toute la France" in page


def test_another_organisations_booklet_reads_exactly_like_an_unknown_number(world, client_for):
    client = client_for(world.begles_agent)
    theirs = world.pessac[0].number
    unknown = "AP26-9999999"
    assert not Booklet.objects.filter(number=unknown).exists()

    held_elsewhere = lookup(client, theirs)
    missing = lookup(client, unknown)

    assert held_elsewhere.status_code == missing.status_code == 404
    assert "Chéquier introuvable" in text(missing)
    assert held_elsewhere.content.decode().replace(theirs, "N") == missing.content.decode().replace(
        unknown, "N"
    )
    # Nor can it be handed out by posting to its URL.
    response = hand_over(client, world.pessac[0])
    assert response.status_code == 404
    assert response.content.decode().replace(theirs, "N") == missing.content.decode().replace(
        unknown, "N"
    )
    assert Booklet.objects.get(pk=world.pessac[0].pk).status == BookletStatus.ALLOCATED


def test_something_that_is_not_a_booklet_number_is_explained(world, client_for):
    client = client_for(world.begles_agent)

    response = lookup(client, "bonjour")
    assert response.status_code == 400
    assert "« bonjour » n'est pas un numéro de chéquier" in text(response)

    cheque = lookup(client, "https://aptic.fr/c/ABCDEFGHJKMNP")
    assert cheque.status_code == 400
    assert "C'est le QR code d'un chèque" in text(cheque)


def test_without_javascript_the_lookup_answers_the_whole_page(world, client_for):
    booklet = world.begles[0]
    response = client_for(world.begles_agent).post(
        reverse("vouchers:counter_lookup"), {"number": booklet.number}
    )
    assert response.status_code == 200
    markup = response.content.decode()
    assert "<html" in markup and 'id="counter-result"' in markup
    assert f"Chéquier {booklet.number}" in text(response)


def test_an_already_handed_out_booklet_answers_409_and_nothing_changes(world, client_for):
    client = client_for(world.begles_agent)
    booklet = world.begles[0]
    assert hand_over(client, booklet).status_code == 200
    booklet.refresh_from_db()
    before = (Beneficiary.objects.count(), AuditEvent.objects.count(), booklet.beneficiary_id)

    response = lookup(client, booklet.number)
    again = hand_over(client, booklet, first_name="Quelqu'un", last_name="D'autre")

    assert response.status_code == 409
    page = text(response)
    assert "Déjà remis" in page
    assert f"déjà été remis le {booklet.assigned_at.astimezone().strftime('%d/%m/%Y')}" in page
    assert "Revoir le reçu" in page
    assert 'name="last_name"' not in response.content.decode()  # no form
    assert again.status_code == 409
    assert "Déjà remis" in text(again)
    booklet.refresh_from_db()
    assert (
        Beneficiary.objects.count(),
        AuditEvent.objects.count(),
        booklet.beneficiary_id,
    ) == before


def test_a_blocked_booklet_answers_409_with_its_reason_and_nothing_changes(world, client_for):
    client = client_for(world.begles_agent)
    booklet = world.begles[1]
    booklet_block(actor=actor_for(world.begles_admin), booklet=booklet, reason="Perdu en route")
    events = AuditEvent.objects.count()

    response = lookup(client, booklet.number)
    attempt = hand_over(client, booklet)

    assert response.status_code == 409
    assert "Chéquier bloqué" in text(response)
    assert "Perdu en route" in text(response)
    assert attempt.status_code == 409
    assert Beneficiary.objects.count() == 0
    assert Booklet.objects.get(pk=booklet.pk).status == BookletStatus.BLOCKED
    assert AuditEvent.objects.count() == events


def test_a_booklet_not_yet_allocated_to_the_counter_says_so(client_for):
    # An organisation that both funds and distributes sees its own stock.
    both = MembershipFactory(
        organisation=OrganisationFactory(is_funder=True, is_distributor=True),
        role=MemberRole.ADMIN,
    )
    order = issued_order(lines={5: 1}, funder=both)
    booklet = order.booklets.get()

    response = lookup(client_for(both), booklet.number)
    attempt = hand_over(client_for(both), booklet)

    assert response.status_code == 409
    assert "Pas encore confié à votre structure" in text(response)
    assert attempt.status_code == 409
    assert Booklet.objects.get(pk=booklet.pk).status == BookletStatus.IN_STOCK


# --- Handing it out -----------------------------------------------------------------------------


def test_a_hand_over_creates_the_beneficiary_and_redirects_to_the_receipt(world, client_for):
    booklet = world.begles[0]

    response = hand_over(client_for(world.begles_agent), booklet)

    assert response.status_code == 200
    beneficiary = Beneficiary.objects.get()
    assert response["HX-Redirect"] == reverse("vouchers:receipt", args=[beneficiary.reference])
    assert beneficiary.distributor == world.begles_agent.organisation
    assert (beneficiary.age_bracket, beneficiary.postcode) == ("60-74", "33130")
    assert (beneficiary.gender, beneficiary.situation) == ("male", "rsa")
    booklet.refresh_from_db()
    assert booklet.status == BookletStatus.ASSIGNED
    assert booklet.beneficiary == beneficiary
    assert booklet.assigned_by == world.begles_agent.user
    assert AuditEvent.objects.filter(action="vouchers.booklet.assigned").count() == 1


def test_without_javascript_a_hand_over_redirects_normally(world, client_for):
    booklet = world.begles[0]
    response = client_for(world.begles_agent).post(
        reverse("vouchers:counter_assign", args=[booklet.number]), {**PROFILE, **PERSON}
    )
    beneficiary = Beneficiary.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("vouchers:receipt", args=[beneficiary.reference])


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"age_bracket": "", "postcode": "331"},
            ["Ce champ est obligatoire.", "Le code postal doit comporter 5 chiffres."],
        ),
        ({"last_name": "", "birth_date": "pas une date"}, ["Ce champ est obligatoire."]),
        ({"birth_date": "2099-01-01"}, ["Date de naissance invalide."]),
        (
            {"postcode": "99999"},
            ["Le code postal 99999 n'existe pas : vérifiez-le avec la personne."],
        ),
        ({"gender": "licorne"}, ["Sélectionnez un choix valide."]),
    ],
)
def test_bad_input_gets_french_field_errors_and_changes_nothing(world, client_for, fields, errors):
    booklet = world.begles[0]
    events = AuditEvent.objects.count()

    response = hand_over(client_for(world.begles_agent), booklet, **fields)

    assert response.status_code == 400
    page = text(response)
    for error in errors:
        assert error in page
    assert 'aria-invalid="true"' in response.content.decode()
    assert Beneficiary.objects.count() == 0
    assert Booklet.objects.get(pk=booklet.pk).status == BookletStatus.ALLOCATED
    assert AuditEvent.objects.count() == events


# --- The per-person limit -------------------------------------------------------------------------

SAME_PERSON_TYPED_OTHERWISE = {
    "last_name": "  FANTOMAS ",
    "first_name": "zé bulon",
    "birth_date": "14/07/1961",
}


def test_the_same_person_at_another_distributor_of_the_programme_gets_the_limit_message(
    world, client_for
):
    assert hand_over(client_for(world.begles_agent), world.begles[0]).status_code == 200
    events = AuditEvent.objects.count()

    response = hand_over(
        client_for(world.pessac_agent), world.pessac[0], **SAME_PERSON_TYPED_OTHERWISE
    )

    assert response.status_code == 409
    page = text(response)
    assert "Cette personne a déjà reçu 1 chéquier(s) de ce programme sur la période" in page
    assert "Motif de dérogation" not in page  # an agent cannot override
    assert Beneficiary.objects.count() == 1
    assert Booklet.objects.get(pk=world.pessac[0].pk).status == BookletStatus.ALLOCATED
    assert AuditEvent.objects.count() == events


def test_an_admin_overrides_the_limit_with_a_reason_and_it_is_audited(world, client_for):
    assert hand_over(client_for(world.begles_agent), world.begles[0]).status_code == 200
    admin = client_for(world.pessac_admin)
    booklet = world.pessac[0]

    refused = hand_over(admin, booklet, **SAME_PERSON_TYPED_OTHERWISE)
    assert refused.status_code == 409
    assert "Motif de dérogation" in text(refused)
    assert 'name="override_reason"' in refused.content.decode()

    without_reason = hand_over(admin, booklet, override_reason="  ", **SAME_PERSON_TYPED_OTHERWISE)
    assert without_reason.status_code == 409
    assert Beneficiary.objects.count() == 1

    reason = "Chéquier précédent volé, plainte déposée"
    accepted = hand_over(admin, booklet, override_reason=reason, **SAME_PERSON_TYPED_OTHERWISE)

    assert accepted.status_code == 200
    assert accepted["HX-Redirect"].startswith("/recus/")
    assert Booklet.objects.get(pk=booklet.pk).status == BookletStatus.ASSIGNED
    event = AuditEvent.objects.get(action="vouchers.booklet.limit_overridden")
    assert event.data["reason"] == reason
    assert event.organisation == world.pessac_admin.organisation
    assert event.actor == world.pessac_admin.user


def test_an_agent_cannot_override_even_by_posting_a_reason(world, client_for):
    assert hand_over(client_for(world.begles_agent), world.begles[0]).status_code == 200

    response = hand_over(
        client_for(world.pessac_agent),
        world.pessac[0],
        override_reason="Je passe outre",
        **SAME_PERSON_TYPED_OTHERWISE,
    )

    assert response.status_code == 409
    assert "Motif de dérogation" not in text(response)
    assert Booklet.objects.get(pk=world.pessac[0].pk).status == BookletStatus.ALLOCATED
    assert not AuditEvent.objects.filter(action="vouchers.booklet.limit_overridden").exists()


# --- Names are never kept -------------------------------------------------------------------------


def _database_dump() -> str:
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            rows.extend(repr(row) for row in cursor.fetchall())
    sessions = [repr(session.get_decoded()) for session in Session.objects.all()]
    return "\n".join(rows + sessions).casefold()


def test_names_are_never_stored_nor_logged(world, client_for, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger: every logger propagates to it
    caplog.set_level(logging.DEBUG, logger="django.db.backends")
    begles, pessac = client_for(world.begles_agent), client_for(world.pessac_admin)

    with CaptureQueriesContext(connection) as queries:
        bad = hand_over(begles, world.begles[0], postcode="1")
        done = hand_over(begles, world.begles[0])
        refused = hand_over(pessac, world.pessac[0])
        overridden = hand_over(pessac, world.pessac[0], override_reason="Urgence sociale")
        receipt = begles.get(done["HX-Redirect"], follow=True)

    assert (bad.status_code, done.status_code, refused.status_code) == (400, 200, 409)
    assert overridden.status_code == 200
    assert receipt.status_code == 200
    assert Beneficiary.objects.count() == 2
    assert queries.captured_queries  # the SQL itself was looked at too
    sql = "\n".join(q["sql"] for q in queries.captured_queries).casefold()
    database = _database_dump()
    logs = caplog.text.casefold()
    urls = " ".join(
        [done["HX-Redirect"], overridden["HX-Redirect"], *(u for u, _ in receipt.redirect_chain)]
    ).casefold()
    cookies = " ".join(
        str(morsel.value) for c in (begles, pessac) for morsel in c.cookies.values()
    ).casefold()
    receipt_page = receipt.content.decode().casefold()
    for secret in SECRETS:
        assert secret not in database, secret
        assert secret not in logs, secret
        assert secret not in sql, secret
        assert secret not in urls, secret
        assert secret not in cookies, secret
        assert secret not in receipt_page, secret


def test_django_error_reports_hide_the_names(world, client_for, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the service broke")

    monkeypatch.setattr("vouchers.views.counter.booklet_assign", broken)
    reports: list[str] = []

    def report(sender, request, **kwargs):
        reports.append(ExceptionReporter(request, *sys.exc_info()).get_traceback_html())

    got_request_exception.connect(report)
    try:
        client = client_for(world.begles_agent)
        client.raise_request_exception = False
        response = hand_over(client, world.begles[0])
    finally:
        got_request_exception.disconnect(report)

    assert response.status_code == 500
    [traceback] = reports
    assert "the service broke" in traceback
    assert "last_name" in traceback  # the POST section is there, its values are hidden
    for secret in SECRETS:
        assert secret not in traceback.casefold(), secret


# --- The receipt ---------------------------------------------------------------------------------


def test_the_receipt_lists_real_providers_near_the_beneficiary(world, client_for):
    client = client_for(world.begles_agent)
    booklet = world.begles[0]
    url = hand_over(client, booklet)["HX-Redirect"]

    response = client.get(url)

    assert response.status_code == 200
    page = text(response)
    assert booklet.number in page
    assert "100,00\u00a0€" in page
    assert world.programme.last_valid_day.strftime("%d/%m/%Y") in page
    assert "Comment utiliser vos chèques" in page
    places = re.findall(
        r"<li>\s*<p class=\"receipt-place-head\"><strong>([^<]+)</strong>",
        (response.content.decode()),
    )
    # Bègles first (same postcode), then Pessac; Lille is outside the programme's territory.
    assert places == ["Cap Numérique Bègles", "Médiathèque de Pessac"]
    assert "à moins de 1 km" in page
    assert re.search(r"à \d+,\d km", page)
    assert "3 place de la Mairie, 33600 Pessac" in page
    assert "Démarches administratives en ligne · Prendre en main un smartphone" in page
    assert "data-print" in response.content.decode()
    assert reverse("vouchers:receipt_pdf", args=[url.split("/")[-2]]) in response.content.decode()


def test_the_receipt_is_for_the_distributor_that_handed_out_and_operators(world, client_for):
    url = hand_over(client_for(world.begles_agent), world.begles[0])["HX-Redirect"]

    assert client_for(world.begles_admin).get(url).status_code == 200
    assert client_for(world.operator).get(url).status_code == 200
    assert client_for(world.pessac_admin).get(url).status_code == 404
    assert client_for(world.funder).get(url).status_code == 404
    assert client_for(world.pessac_admin).get(url + "recu.pdf").status_code == 404


def _pdf_text(pdf: bytes) -> str:
    if shutil.which("pdftotext"):
        result = subprocess.run(
            ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
        )
        return result.stdout.decode()
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)


def test_the_receipt_pdf_is_a_pdf_with_the_booklet_number_and_the_places(world, client_for):
    client = client_for(world.begles_agent)
    booklet = world.begles[0]
    url = hand_over(client, booklet)["HX-Redirect"]

    response = client.get(url + "recu.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    content = _pdf_text(response.content)
    assert booklet.number in content
    assert "Cap Numérique Bègles" in content
    assert "Comment utiliser vos chèques" in content


def test_the_audit_event_of_a_hand_over_names_nobody(world, client_for):
    hand_over(client_for(world.begles_agent), world.begles[0])
    event = AuditEvent.objects.get(action="vouchers.booklet.assigned")
    assert set(event.data) == {"beneficiary", "age_bracket", "postcode"}
    assert Actor  # the audit actor is the agent, recorded by the service
    assert event.actor == world.begles_agent.user


# --- Objects for the tenancy walk (tests/test_tenancy.py) -----------------------------------------


def tenancy_booklet_kwargs(owner: Membership) -> dict:
    """URL kwargs of a booklet the owner's organisation funds and holds, ready to hand out."""
    issued_order(lines={5: 1}, funder=owner)
    movement = booklets_allocate(actor=actor_for(owner), distributor=owner.organisation, count=1)
    return {"number": movement.booklets.get().number}


def tenancy_receipt_kwargs(owner: Membership) -> dict:
    """URL kwargs of the receipt of a booklet the owner's organisation handed out."""
    from datetime import date

    from vouchers.services.distribution import Person, booklet_assign

    booklet = Booklet.objects.get(number=tenancy_booklet_kwargs(owner)["number"])
    beneficiary = booklet_assign(
        actor=actor_for(owner),
        booklet=booklet,
        person=Person("Personne", "Quelconque", date(1980, 1, 1)),
        age_bracket="26-44",
        postcode="33000",
    )
    return {"reference": beneficiary.reference}
