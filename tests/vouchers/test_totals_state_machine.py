"""After any sequence of distribution operations, every funder's totals stay right.

value issued (what the funder paid for) = value active + redeemed + blocked + expired, where a
replacement booklet carries the value of the blocked cheques it voids.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from aptic.errors import DomainError
from tests.factories import MembershipFactory, OrganisationFactory, ProgrammeFactory
from tests.vouchers.helpers import actor_for, funder_membership, issued_order, operator_membership
from vouchers.models import Booklet, BookletStatus, Cheque, ChequeStatus, Order
from vouchers.services.distribution import (
    Person,
    booklet_assign,
    booklet_block,
    booklet_replace,
    booklets_allocate,
    booklets_return,
    cheques_block,
    cheques_expire,
)

pytestmark = pytest.mark.django_db

STATUSES = (ChequeStatus.ACTIVE, ChequeStatus.REDEEMED, ChequeStatus.BLOCKED, ChequeStatus.EXPIRED)


class DistributionMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.operator = operator_membership()
        self.funders = [funder_membership(), funder_membership()]
        self.distributor = MembershipFactory(
            organisation=OrganisationFactory(is_funder=False, is_distributor=True),
            role="admin",
        )
        self.people = 0
        for funder in self.funders:
            programme = ProgrammeFactory(funder=funder.organisation, max_booklets_per_beneficiary=1)
            issued_order(
                lines={5: 3, 10: 2}, funder=funder, operator=self.operator, programme=programme
            )

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    def _booklet(self, index: int, **filters) -> Booklet | None:
        booklets = list(Booklet.objects.filter(**filters).order_by("pk"))
        return booklets[index % len(booklets)] if booklets else None

    def _try(self, operation, *args, **kwargs):
        try:
            with transaction.atomic():
                operation(*args, **kwargs)
        except DomainError:
            pass  # a refused operation changes nothing; the invariant checks that too

    @rule(funder=st.integers(0, 1), count=st.integers(1, 3))
    def allocate(self, funder, count):
        self._try(
            booklets_allocate,
            actor=actor_for(self.funders[funder]),
            distributor=self.distributor.organisation,
            count=count,
        )

    @rule(index=st.integers(0, 50))
    def give_back(self, index):
        booklet = self._booklet(index, status=BookletStatus.ALLOCATED)
        if booklet:
            self._try(booklets_return, actor=actor_for(self.distributor), numbers=[booklet.number])

    @rule(index=st.integers(0, 50), same_person=st.booleans())
    def hand_over(self, index, same_person):
        booklet = self._booklet(index, status=BookletStatus.ALLOCATED)
        if booklet:
            self.people += 0 if same_person else 1
            person = Person("Durand", f"Personne{self.people}", date(1970, 1, 1))
            self._try(
                booklet_assign,
                actor=actor_for(self.distributor),
                booklet=booklet,
                person=person,
                age_bracket="26-44",
                postcode="33000",
            )

    @rule(index=st.integers(0, 50))
    def redeem_one(self, index):
        # Stand-in for a provider's redemption: the compare-and-set the counter will do.
        cheque = Cheque.objects.filter(status=ChequeStatus.ACTIVE).order_by("pk")
        cheque = cheque[index % cheque.count()] if cheque.exists() else None
        if cheque:
            Cheque.objects.filter(pk=cheque.pk, status=ChequeStatus.ACTIVE).update(
                status=ChequeStatus.REDEEMED
            )

    @rule(index=st.integers(0, 50), by_funder=st.booleans())
    def block_booklet(self, index, by_funder):
        booklet = self._booklet(index, status__in=[BookletStatus.ALLOCATED, BookletStatus.ASSIGNED])
        if booklet:
            actor = (
                actor_for(next(f for f in self.funders if f.organisation_id == booklet.funder_id))
                if by_funder
                else actor_for(self.distributor)
            )
            self._try(booklet_block, actor=actor, booklet=booklet, reason="Perdu")

    @rule(index=st.integers(0, 200))
    def block_cheque(self, index):
        active = Cheque.objects.filter(status=ChequeStatus.ACTIVE, booklet__holder__isnull=False)
        if active.exists():
            cheque = active.order_by("pk")[index % active.count()]
            self._try(
                cheques_block, actor=actor_for(self.distributor), cheques=[cheque], reason="Déchiré"
            )

    @rule(index=st.integers(0, 50))
    def replace(self, index):
        booklet = self._booklet(index, status=BookletStatus.BLOCKED)
        if booklet:
            funder = next(f for f in self.funders if f.organisation_id == booklet.funder_id)
            self._try(booklet_replace, actor=actor_for(funder), booklet=booklet)

    @rule(days=st.integers(0, 800))
    def time_passes(self, days):
        cheques_expire(today=timezone.localdate() + timedelta(days=days))

    @invariant()
    def totals_balance_for_every_funder(self):
        for funder in self.funders:
            paid = Order.objects.filter(funder=funder.organisation).aggregate(
                v=Sum("face_value_cents")
            )["v"]
            cheques = Cheque.objects.filter(booklet__funder=funder.organisation)
            by_status = {
                status: cheques.filter(status=status).aggregate(v=Sum("value_cents"))["v"] or 0
                for status in STATUSES
            }
            assert paid == sum(by_status.values()), (paid, by_status)

    @invariant()
    def a_handed_out_booklet_has_a_beneficiary_and_a_holder(self):
        assert not Booklet.objects.filter(
            status=BookletStatus.ASSIGNED, beneficiary__isnull=True
        ).exists()
        assert not Booklet.objects.filter(
            status=BookletStatus.ALLOCATED, holder__isnull=True
        ).exists()

    @invariant()
    def a_person_never_holds_two_booklets_of_a_programme(self):
        keys = list(
            Booklet.objects.filter(beneficiary__isnull=False, replaces__isnull=True).values_list(
                "programme_id", "beneficiary__dedup_key"
            )
        )
        assert len(keys) == len(set(keys))


def test_totals_balance_after_any_sequence_of_operations():
    run_state_machine_as_test(
        DistributionMachine,
        settings=settings(
            max_examples=12,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
