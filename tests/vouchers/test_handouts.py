"""The hand-outs list: one row per booklet handed to a beneficiary, for the funder of the booklet
and the distributor whose agent handed it out, never anyone else; filtered, exported as CSV and
XLSX with the same rows, pseudonymous, in a constant number of queries."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from orgs.models import MemberRole
from tests.factories import MembershipFactory, OrganisationFactory
from tests.vouchers.helpers import actor_for, funder_membership, operator_membership
from tests.vouchers.test_stock import allocate, distributor_membership, hand_out, stock_of
from vouchers.models import Beneficiary, Booklet
from vouchers.selectors.handouts import handout_list
from vouchers.services.distribution import (
    Person,
    booklet_assign,
    booklet_block,
    booklet_replace,
)

pytestmark = pytest.mark.django_db

URL = reverse("vouchers:handout_list")


def shown(response) -> list[str]:
    """Booklet numbers of the page's rows, in page order."""
    assert response.status_code == 200, response.status_code
    return [booklet.number for booklet in response.context["page"].object_list]


def expected(**filters) -> list[str]:
    """Numbers of booklets handed out, straight from the table, newest first."""
    return list(
        Booklet.objects.filter(assigned_at__isnull=False, replaces__isnull=True, **filters)
        .order_by("-assigned_at", "-number")
        .values_list("number", flat=True)
    )


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content)
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))


def xlsx_rows(response) -> list[tuple]:
    assert response.status_code == 200, response.status_code
    body = b"".join(response.streaming_content)
    return list(load_workbook(io.BytesIO(body)).active.iter_rows(values_only=True))


def handed_out(funder, distributor, count: int, *, agent=None, days_ago=()) -> list[Booklet]:
    """``count`` booklets of a new programme of ``funder``, handed out by ``agent``."""
    booklets = stock_of(funder, {5: count})
    allocate(funder, distributor, programme=booklets[0].programme, size=5, count=count)
    for booklet in booklets:
        hand_out(agent or distributor, Booklet.objects.get(pk=booklet.pk))
    now = timezone.now()
    for booklet, days in zip(booklets, days_ago, strict=False):
        Booklet.objects.filter(pk=booklet.pk).update(assigned_at=now - timedelta(days=days))
    return list(Booklet.objects.filter(pk__in=[b.pk for b in booklets]))


@pytest.fixture
def world():
    """Two funders, two distributors (the first with two agents), hand-outs in every pairing,
    and a booklet allocated but not handed out."""
    north, south = funder_membership(name="Département Nord"), funder_membership(name="Ville Sud")
    first = distributor_membership(name="Centre social Bastide")
    colleague = distributor_membership(MemberRole.AGENT, organisation=first.organisation)
    second = distributor_membership(name="Médiathèque Lac")
    handed_out(north, first, 3, days_ago=(30, 20, 10))
    handed_out(north, first, 2, agent=colleague, days_ago=(5, 4))
    handed_out(north, second, 2, days_ago=(3, 2))
    handed_out(south, first, 2, days_ago=(15, 1))
    handed_out(south, second, 1, days_ago=(25,))
    (spare,) = stock_of(north, {10: 1})
    allocate(north, first, programme=spare.programme, size=10, count=1)  # not handed out
    return {
        "north": north,
        "south": south,
        "first": first,
        "colleague": colleague,
        "second": second,
    }


# --- Rows and tenancy ------------------------------------------------------------------------


def test_rows_are_the_hand_outs_each_party_made_or_funded_newest_first(world, client_for):
    north, first = world["north"], world["first"]
    rows = shown(client_for(north).get(URL))
    assert rows == expected(funder=north.organisation)
    assert len(rows) == 7

    rows = shown(client_for(first).get(URL))
    assert rows == expected(beneficiary__distributor=first.organisation)
    assert len(rows) == 7  # both funders' booklets, both agents

    # Any member of the distributor sees all its agents' hand-outs, not only their own.
    assert shown(client_for(world["colleague"]).get(URL)) == rows

    operator = operator_membership()
    assert shown(client_for(operator).get(URL)) == expected()
    assert len(expected()) == 10


def test_a_row_shows_the_hand_out_and_the_pseudonymous_profile(client_for):
    funder, distributor = funder_membership(), distributor_membership()
    (booklet,) = stock_of(funder, {10: 1})
    allocate(funder, distributor, programme=booklet.programme, size=10, count=1)
    booklet_assign(
        actor=actor_for(distributor),
        booklet=booklet,
        person=Person("Zébulon", "Quasimodo", date(1931, 7, 14)),
        age_bracket="75+",
        postcode="33800",
        gender="female",
        situation="rsa",
    )
    booklet.refresh_from_db()
    page = client_for(funder).get(URL).content.decode()
    for text in (
        booklet.number,
        booklet.programme.name,
        "100,00\u00a0€",
        distributor.user.full_name,
        distributor.organisation.name,
        booklet.beneficiary.reference,
        "75 ans et plus",
        "Femme",
        "Bénéficiaire du RSA",
        "33800",
        timezone.localtime(booklet.assigned_at).strftime("%d/%m/%Y %H:%M"),
    ):
        assert text in page, text
    for personal in ("Zébulon", "Quasimodo", "1931", booklet.beneficiary.dedup_key):
        assert personal not in page


def test_a_distributor_never_sees_another_distributors_hand_outs(world, client_for):
    first, second = world["first"], world["second"]
    theirs = set(expected(beneficiary__distributor=second.organisation))
    assert theirs
    client = client_for(first)
    assert not theirs & set(shown(client.get(URL)))
    assert not theirs & {row[1] for row in csv_rows(client.get(URL, {"export": "csv"}))[1:]}
    # Asking for the other structure or its agent is not a way in.
    for params in ({"structure": second.organisation.pk}, {"agent": second.user.pk}):
        answer = client.get(URL, params)
        assert not theirs & set(shown(answer))
    assert client.get(URL, {"agent": second.user.pk}).context["form"].errors["agent"]


def test_a_funder_never_sees_another_funders_hand_outs(world, client_for):
    north, south = world["north"], world["south"]
    theirs = set(expected(funder=south.organisation))
    assert theirs
    client = client_for(north)
    assert not theirs & set(shown(client.get(URL)))
    rows = xlsx_rows(client.get(URL, {"export": "xlsx"}))
    assert not theirs & {row[1] for row in rows[1:]}
    # The other funder's programme is not a filter choice: a field error, no rows.
    other_programme = Booklet.objects.filter(funder=south.organisation).first().programme_id
    answer = client.get(URL, {"programme": other_programme})
    assert answer.context["form"].errors["programme"]
    assert shown(answer) == []


def test_the_list_follows_the_role_held_not_the_booklets_held(world, client_for):
    """The selector fails closed: an organisation that neither funds nor distributes (or
    operates) sees no hand-out, even of a booklet it somehow holds."""
    north = world["north"]
    booklet = Booklet.objects.filter(funder=north.organisation).first()
    outsider = MembershipFactory(
        organisation=OrganisationFactory(is_funder=False, is_provider=True)
    )
    Booklet.objects.filter(pk=booklet.pk).update(holder=outsider.organisation)
    assert not handout_list(membership=outsider).exists()


def test_a_provider_is_refused(world, client_for):
    provider = MembershipFactory(
        organisation=OrganisationFactory(is_funder=False, is_provider=True)
    )
    client = client_for(provider)
    assert client.get(URL).status_code == 403
    assert client.get(URL, {"export": "csv"}).status_code == 403


def test_a_blocked_and_replaced_booklet_stays_one_hand_out(client_for):
    funder, distributor = funder_membership(), distributor_membership()
    (booklet,) = handed_out(funder, distributor, 1)
    booklet_block(actor=actor_for(funder), booklet=booklet, reason="perdu")
    replacement = booklet_replace(actor=actor_for(funder), booklet=booklet)
    client = client_for(distributor)
    assert shown(client.get(URL)) == [booklet.number]
    header, *rows = csv_rows(client.get(URL, {"export": "csv"}))
    (row,) = rows
    assert row[header.index("État")] == "Bloqué"
    assert row[header.index("Remplacé par")] == replacement.number
    assert f"remplacé par {replacement.number}" in client.get(URL).content.decode()


# --- Filters ---------------------------------------------------------------------------------


def test_filters_by_programme_period_agent_and_structure(world, client_for):
    north, first, colleague = world["north"], world["first"], world["colleague"]
    second = world["second"]
    funder_client, distributor_client = client_for(north), client_for(first)
    programme = Booklet.objects.filter(holder=second.organisation, funder=north.organisation)[
        0
    ].programme
    assert shown(funder_client.get(URL, {"programme": programme.pk})) == expected(
        programme=programme
    )

    today = timezone.localdate()
    since, until = today - timedelta(days=21), today - timedelta(days=4)
    rows = shown(funder_client.get(URL, {"du": since.isoformat(), "au": until.isoformat()}))
    assert rows == [
        number
        for number, at in Booklet.objects.filter(
            funder=north.organisation, assigned_at__isnull=False
        )
        .order_by("-assigned_at")
        .values_list("number", "assigned_at")
        if since <= timezone.localdate(at) <= until
    ]
    assert len(rows) == 4  # 20, 10, 5 and 4 days ago; both ends of the period included

    assert shown(distributor_client.get(URL, {"agent": colleague.user.pk})) == expected(
        assigned_by=colleague.user
    )
    assert len(expected(assigned_by=colleague.user)) == 2

    assert shown(funder_client.get(URL, {"structure": second.organisation.pk})) == expected(
        funder=north.organisation, holder=second.organisation
    )


def test_each_role_gets_only_the_filters_that_concern_it(world, client_for):
    funder_form = client_for(world["north"]).get(URL).context["form"]
    assert set(funder_form.fields) == {"programme", "du", "au", "structure"}
    distributor_form = client_for(world["first"]).get(URL).context["form"]
    assert set(distributor_form.fields) == {"programme", "du", "au", "agent"}
    agents = set(distributor_form.fields["agent"].queryset)
    assert agents == {world["first"].user, world["colleague"].user}
    operator_form = client_for(operator_membership()).get(URL).context["form"]
    assert set(operator_form.fields) == {"programme", "du", "au", "structure"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"programme": "abc"}, "programme"),
        ({"programme": "999999"}, "programme"),
        ({"du": "2026-13-45"}, "du"),
        ({"au": "demain"}, "au"),
        ({"du": "2026-05-02", "au": "2026-05-01"}, "au"),
        ({"structure": "x"}, "structure"),
    ],
)
def test_a_bad_filter_value_is_a_french_field_error_and_shows_no_rows(
    world, client_for, params, field
):
    client = client_for(world["north"])
    answer = client.get(URL, params)
    assert answer.status_code == 200
    errors = answer.context["form"].errors[field]
    assert errors
    assert any(
        word in " ".join(errors) for word in ("Sélectionnez", "Saisissez", "La fin de la période")
    ), errors
    assert shown(answer) == []
    assert "Corrigez les filtres" in answer.content.decode()
    # No export of rows that were not asked for: the page with its errors instead.
    export = client.get(URL, {**params, "export": "csv"})
    assert export.status_code == 200
    assert not export.streaming
    assert export["Content-Type"].startswith("text/html")


# --- Export ----------------------------------------------------------------------------------


def test_the_export_holds_every_filtered_row_and_no_beneficiary_name(client_for):
    funder, distributor = funder_membership(), distributor_membership()
    booklets = handed_out(funder, distributor, 55)
    other = handed_out(funder, distributor, 2)  # another programme, filtered out
    client = client_for(distributor)
    programme = booklets[0].programme
    page = client.get(URL, {"programme": programme.pk})
    assert page.context["page"].paginator.count == 55
    assert len(page.context["page"].object_list) == 50
    page_text = page.content.decode()
    assert f"{URL}?programme={programme.pk}&amp;export=csv" in page_text

    header, *rows = csv_rows(client.get(URL, {"programme": programme.pk, "export": "csv"}))
    assert header == [
        "Remis le",
        "Numéro",
        "Programme",
        "Chèques",
        "Valeur",
        "Agent",
        "Structure relais",
        "Bénéficiaire",
        "Tranche d'âge",
        "Genre",
        "Situation",
        "Code postal",
        "État",
        "Remplacé par",
    ]
    assert [row[1] for row in rows] == expected(programme=programme)
    assert not {b.number for b in other} & {row[1] for row in rows}
    first = rows[0]
    booklet = Booklet.objects.select_related("beneficiary").get(number=first[1])
    assert first[0] == timezone.localtime(booklet.assigned_at).strftime("%d/%m/%Y %H:%M")
    assert first[4] == "50,00"
    assert first[5] == distributor.user.full_name
    assert first[6] == distributor.organisation.name
    assert first[7:] == [
        booklet.beneficiary.reference,
        "45 à 59 ans",
        "",
        "",
        "33000",
        "Remis à un bénéficiaire",
        "",
    ]

    sheet = xlsx_rows(client.get(URL, {"programme": programme.pk, "export": "xlsx"}))
    assert [row[1] for row in sheet[1:]] == expected(programme=programme)

    text = "\n".join(";".join(row) for row in [header, *rows])
    text += "\n".join(";".join(str(v) for v in row) for row in sheet)
    assert "Martin" not in text  # the hand_out helper's last names: never stored, never shown
    assert "01/01/1970" not in text and "1970-01-01" not in text
    for key in Beneficiary.objects.values_list("dedup_key", flat=True):
        assert key not in text


# --- Query counts ----------------------------------------------------------------------------


def _queries(client, params: dict) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, params)
        if response.streaming:
            b"".join(response.streaming_content)
        else:
            response.content  # noqa: B018
    return len(queries)


@pytest.mark.parametrize("params", [{}, {"export": "csv"}, {"export": "xlsx"}])
@pytest.mark.parametrize("who", ["funder", "distributor"])
def test_the_query_count_is_the_same_for_3_and_30_hand_outs(params, who, client_for):
    measured = []
    for count in (3, 30):
        funder, distributor = funder_membership(), distributor_membership()
        handed_out(funder, distributor, count)
        client = client_for(funder if who == "funder" else distributor)
        assert len(shown(client.get(URL))) == count  # also warms the session caches
        measured.append(_queries(client, params))
    assert measured[0] == measured[1], measured


# --- Links -----------------------------------------------------------------------------------


def test_the_follow_up_links_to_the_hand_outs_with_its_filters(world, client_for):
    client = client_for(world["first"])
    page = client.get(reverse("vouchers:follow_up"), {"du": "2026-01-01"})
    assert f"{URL}?du=2026-01-01" in page.content.decode()
    home = client.get("/").content.decode()
    assert URL in home
