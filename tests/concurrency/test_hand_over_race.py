"""Hand-overs under concurrency, on PostgreSQL: one booklet once, one person within the limit."""

from __future__ import annotations

from datetime import date

import pytest

from aptic.errors import Conflict
from tests.factories import MembershipFactory, OrganisationFactory, ProgrammeFactory
from tests.vouchers.helpers import actor_for, funder_membership, issued_order
from vouchers.models import Beneficiary, Booklet, BookletStatus
from vouchers.services.distribution import Person, booklet_assign, booklets_allocate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _setup(count: int, holders: int = 1):
    funder = funder_membership()
    programme = ProgrammeFactory(funder=funder.organisation, max_booklets_per_beneficiary=1)
    issued_order(lines={5: count * holders}, funder=funder, programme=programme)
    agents = []
    for _ in range(holders):
        organisation = OrganisationFactory(is_funder=False, is_distributor=True)
        agents.append(MembershipFactory(organisation=organisation, role="agent"))
        booklets_allocate(
            actor=actor_for(funder), distributor=organisation, programme=programme, count=count
        )
    return agents


def _assign(agent, booklet_id, person):
    def call():
        return booklet_assign(
            actor=actor_for(agent),
            booklet=Booklet.objects.get(pk=booklet_id),
            person=person,
            age_bracket="26-44",
            postcode="33000",
        )

    return call


def test_two_agents_handing_out_the_same_booklet_at_once_one_succeeds(racing):
    [agent] = _setup(1)
    colleague = MembershipFactory(organisation=agent.organisation, role="agent")
    booklet = Booklet.objects.get()
    results = racing(
        _assign(agent, booklet.pk, Person("Martin", "Anne", date(1950, 1, 1))),
        _assign(colleague, booklet.pk, Person("Durand", "Paul", date(1960, 2, 2))),
    )
    assert sum(isinstance(r, Beneficiary) for r in results) == 1
    [refusal] = [r for r in results if isinstance(r, Exception)]
    assert isinstance(refusal, Conflict) and refusal.code == "booklet_not_assignable"
    assert Beneficiary.objects.count() == 1
    assert Booklet.objects.get().status == BookletStatus.ASSIGNED


def test_two_counters_serving_the_same_person_at_once_respect_a_limit_of_one(racing):
    first, second = _setup(1, holders=2)
    person = Person("Lefèvre", "Jeanne", date(1948, 7, 14))
    booklet_a = Booklet.objects.get(holder=first.organisation)
    booklet_b = Booklet.objects.get(holder=second.organisation)
    results = racing(
        _assign(first, booklet_a.pk, person),
        _assign(second, booklet_b.pk, Person("LEFEVRE", "jeanne", date(1948, 7, 14))),
    )
    assert sum(isinstance(r, Beneficiary) for r in results) == 1
    [refusal] = [r for r in results if isinstance(r, Exception)]
    assert isinstance(refusal, Conflict) and refusal.code == "beneficiary_limit_reached"
    assert Booklet.objects.filter(status=BookletStatus.ASSIGNED).count() == 1
