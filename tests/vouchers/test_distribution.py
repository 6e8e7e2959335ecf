"""Hand-over rules: the per-person limit across distributors, pseudonymity, expiry, the API."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from aptic.errors import Conflict, NotFound
from orgs.models import AuditEvent, MemberRole
from tests.factories import MembershipFactory, OrganisationFactory, ProgrammeFactory
from tests.vouchers.helpers import actor_for, funder_membership, issued_order
from vouchers.models import Beneficiary, Booklet, BookletStatus, Cheque, ChequeStatus
from vouchers.services.distribution import (
    Person,
    booklet_assign,
    booklet_block,
    booklets_allocate,
    cheques_expire,
)

pytestmark = pytest.mark.django_db

ZEBULON = Person("Zébulon-Ébène", "Fantômas", date(1961, 4, 2))


@pytest.fixture
def funder():
    return funder_membership(is_distributor=False)


def distributor(role=MemberRole.AGENT):
    organisation = OrganisationFactory(is_funder=False, is_distributor=True)
    return MembershipFactory(organisation=organisation, role=role)


def held_booklets(funder, holder, count, programme=None, **programme_fields):
    programme = programme or ProgrammeFactory(funder=funder.organisation, **programme_fields)
    issued_order(lines={10: count}, funder=funder, programme=programme)
    movement = booklets_allocate(
        actor=actor_for(funder),
        distributor=holder.organisation,
        programme=programme,
        count=count,
    )
    return list(movement.booklets.order_by("number"))


def assign(member, booklet, person=ZEBULON, **extra):
    return booklet_assign(
        actor=actor_for(member),
        booklet=booklet,
        person=person,
        age_bracket="60-74",
        postcode="33130",
        situation="senior",
        **extra,
    )


def test_the_per_person_limit_holds_across_two_distributors(funder):
    first, second = distributor(), distributor()
    programme = ProgrammeFactory(funder=funder.organisation, max_booklets_per_beneficiary=1)
    [booklet_a] = held_booklets(funder, first, 1, programme=programme)
    [booklet_b] = held_booklets(funder, second, 1, programme=programme)
    assign(first, booklet_a)
    same_person_typed_otherwise = Person("  zebulon ebene ", "FANTOMAS", date(1961, 4, 2))
    with pytest.raises(Conflict) as refused:
        assign(second, booklet_b, person=same_person_typed_otherwise)
    assert refused.value.code == "beneficiary_limit_reached"
    assert Booklet.objects.get(pk=booklet_b.pk).status == BookletStatus.ALLOCATED
    assert Beneficiary.objects.count() == 1
    # Someone else (another birth date) is served.
    assign(second, booklet_b, person=Person("Zébulon-Ébène", "Fantômas", date(1961, 4, 3)))


def test_the_limit_counts_only_the_programme_period(funder):
    holder = distributor()
    programme = ProgrammeFactory(
        funder=funder.organisation, max_booklets_per_beneficiary=1, limit_period_days=365
    )
    booklet_a, booklet_b = held_booklets(funder, holder, 2, programme=programme)
    assign(holder, booklet_a)
    Booklet.objects.filter(pk=booklet_a.pk).update(assigned_at=timezone.now() - timedelta(days=366))
    assign(holder, booklet_b)  # a year later: allowed again
    assert Booklet.objects.filter(status=BookletStatus.ASSIGNED).count() == 2


def test_an_admin_may_override_the_limit_with_a_reason_and_it_is_audited(funder):
    admin = distributor(role=MemberRole.ADMIN)
    agent = MembershipFactory(organisation=admin.organisation, role=MemberRole.AGENT)
    booklets = held_booklets(funder, admin, 3)
    assign(admin, booklets[0])
    with pytest.raises(Conflict) as refused:
        assign(agent, booklets[1], override_reason="Relogement d'urgence")
    assert refused.value.code == "override_not_allowed"
    assign(admin, booklets[1], override_reason="Relogement d'urgence")
    event = AuditEvent.objects.get(action="vouchers.booklet.limit_overridden")
    assert event.data["reason"] == "Relogement d'urgence"
    assert event.actor == admin.user


def test_names_and_birth_date_appear_nowhere_in_the_database_nor_the_logs(funder, caplog):
    holder = distributor(role=MemberRole.ADMIN)
    booklets = held_booklets(funder, holder, 2)
    caplog.set_level(logging.DEBUG)
    assign(holder, booklets[0])
    with pytest.raises(Conflict):
        assign(holder, booklets[1])
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from Django
            dump.extend(str(row) for row in cursor.fetchall())
    text = ("\n".join(dump) + caplog.text).casefold()
    for secret in ("zébulon", "zebulon", "fantômas", "fantomas", "1961-04-02", "02/04/1961"):
        assert secret not in text, secret
    assert Beneficiary.objects.get().dedup_key  # only the keyed digest is kept


def test_a_booklet_is_handed_out_once_and_only_by_its_holder(funder):
    holder, stranger = distributor(), distributor()
    [booklet] = held_booklets(funder, holder, 1)
    with pytest.raises(NotFound):
        assign(stranger, booklet)
    assign(holder, booklet)
    with pytest.raises(Conflict) as refused:
        assign(holder, booklet, person=Person("Autre", "Personne", date(1980, 1, 1)))
    assert refused.value.code == "booklet_not_assignable"
    assert Beneficiary.objects.count() == 1


def test_a_blocked_booklet_cannot_be_handed_out(funder):
    holder = distributor()
    [booklet] = held_booklets(funder, holder, 1)
    booklet_block(actor=actor_for(funder), booklet=booklet, reason="Perdu")
    with pytest.raises(Conflict):
        assign(holder, booklet)
    assert set(Cheque.objects.filter(booklet=booklet).values_list("status", flat=True)) == {
        ChequeStatus.BLOCKED
    }


def test_month_based_validity_starts_at_hand_over(funder):
    holder = distributor()
    programme = ProgrammeFactory(
        funder=funder.organisation, validity_kind="months", valid_until=None, validity_months=12
    )
    [booklet] = held_booklets(funder, holder, 1, programme=programme)
    assert set(Cheque.objects.filter(booklet=booklet).values_list("expires_on", flat=True)) == {
        None
    }
    assign(holder, booklet)
    today = timezone.localdate()
    expected = (
        today.replace(year=today.year + 1)
        if not (today.month == 2 and today.day == 29)
        else date(today.year + 1, 2, 28)
    )
    assert set(Cheque.objects.filter(booklet=booklet).values_list("expires_on", flat=True)) == {
        expected
    }


def test_expiry_marks_cheques_past_their_date_once(funder):
    holder = distributor()
    booklets = held_booklets(funder, holder, 2)
    Cheque.objects.filter(booklet=booklets[0]).update(expires_on=date(2020, 1, 1))
    assert cheques_expire() == 10
    assert cheques_expire() == 0  # idempotent
    assert Cheque.objects.filter(status=ChequeStatus.EXPIRED).count() == 10
    assert Cheque.objects.filter(booklet=booklets[1], status=ChequeStatus.ACTIVE).count() == 10


# --- API -----------------------------------------------------------------------------------

ASSIGN = {
    "age_bracket": "26-44",
    "postcode": "33000",
    "situation": "job_seeker",
    "last_name": "Zébulon",
    "first_name": "Fantômas",
    "birth_date": "1990-05-06",
}


def test_the_assign_api_answers_a_pseudonymous_receipt(api_for, funder):
    holder = distributor()
    [booklet] = held_booklets(funder, holder, 1)
    response = api_for(holder).post(
        f"/api/v1/booklets/{booklet.number}/assign/", ASSIGN, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["booklet"] == booklet.number
    assert body["value_cents"] == 10000 and body["currency"] == "EUR"
    assert body["beneficiary"].startswith("B-")
    assert "Zébulon" not in response.content.decode()
    again = api_for(holder).post(
        f"/api/v1/booklets/{booklet.number}/assign/", ASSIGN, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "booklet_not_assignable"


def test_the_assign_api_hides_other_organisations_booklets(api_for, funder):
    holder, stranger = distributor(), distributor()
    [booklet] = held_booklets(funder, holder, 1)
    response = api_for(stranger).post(
        f"/api/v1/booklets/{booklet.number}/assign/", ASSIGN, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert api_for(stranger).get(f"/api/v1/booklets/{booklet.number}/").status_code == 404
    assert Booklet.objects.get(pk=booklet.pk).status == BookletStatus.ALLOCATED


@pytest.mark.parametrize(
    "change",
    [
        {"age_bracket": "99+"},
        {"postcode": "3300"},
        {"postcode": "99999"},
        {"birth_date": "1990-13-45"},
        {"birth_date": "2030-01-01"},
        {"last_name": ""},
        {"situation": "astronaut"},
    ],
)
def test_bad_hand_over_input_gets_a_code_and_changes_nothing(api_for, funder, change):
    holder = distributor()
    [booklet] = held_booklets(funder, holder, 1)
    response = api_for(holder).post(
        f"/api/v1/booklets/{booklet.number}/assign/", {**ASSIGN, **change}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] in ("invalid", "invalid_birth_date")
    assert Booklet.objects.get(pk=booklet.pk).status == BookletStatus.ALLOCATED
    assert not Beneficiary.objects.exists()


def test_the_booklets_api_lists_what_the_caller_funds_or_holds(api_for, funder):
    holder = distributor()
    held_booklets(funder, holder, 3)
    assert api_for(funder).get("/api/v1/booklets/").json()["count"] == 3
    assert api_for(holder).get("/api/v1/booklets/?status=allocated").json()["count"] == 3
    assert api_for(distributor()).get("/api/v1/booklets/").json()["count"] == 0
