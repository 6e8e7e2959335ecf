"""After any sequence of ordering, redeeming, settling and closing, every funder's account balances.

held (ledger rows but fees) == awaiting issuance + active + redeemed not yet paid + blocked
+ expired (cheques a credit note gave back left out), and what was paid to providers is what the
paid payouts say, both in the payouts and in the funders' ledgers.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from aptic.errors import DomainError
from orgs.models import Accreditation, BankStatus, MemberRole
from redemption.models import (
    BatchStatus,
    Payout,
    PayoutStatus,
    Redemption,
    RedemptionStatus,
    SettlementBatch,
)
from redemption.services.redeem import cheques_redeem, redemption_cancel
from redemption.services.settlement import (
    batch_approve,
    batch_compute,
    batch_create,
    batch_export,
    batch_mark_paid,
    payout_reject,
)
from tests.factories import MembershipFactory, ProgrammeFactory
from tests.redemption.helpers import accredited_provider_member
from tests.vouchers.helpers import actor_for, approved_order, funder_membership, operator_membership
from vouchers.models import (
    Booklet,
    BookletStatus,
    Cheque,
    ChequeStatus,
    CreditedCheque,
    CreditNote,
    LedgerEntry,
    LedgerKind,
)
from vouchers.selectors.ledger import funder_account, operator_balances
from vouchers.services.distribution import (
    Person,
    booklet_assign,
    booklets_allocate,
    cheques_block,
    cheques_expire,
)
from vouchers.services.issuance import order_issue
from vouchers.services.ledger import programme_close, programme_closes_on

pytestmark = pytest.mark.django_db


def _total(queryset, field: str) -> int:
    return queryset.aggregate(v=Sum(field))["v"] or 0


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.savepoint = transaction.savepoint()
        self.operator = operator_membership()
        self.second = MembershipFactory(
            organisation=self.operator.organisation, role=MemberRole.ADMIN
        )
        # Funders that are their own distributors hand booklets out themselves.
        self.funders = [funder_membership(is_distributor=True) for _ in range(2)]
        # Two programmes ending a year apart: closing the first leaves the second running.
        end = date(timezone.localdate().year, 12, 31)
        self.programmes = [
            ProgrammeFactory(
                funder=f.organisation,
                max_booklets_per_beneficiary=1,
                valid_until=end.replace(year=end.year + index),
            )
            for index, f in enumerate(self.funders)
        ]
        self.services = [p.categories.get() for p in self.programmes]
        self.provider, self.site = accredited_provider_member(services=self.services)
        self.people = 0
        for index, (funder, programme) in enumerate(
            zip(self.funders, self.programmes, strict=True)
        ):
            self._order(funder, programme, {5: 2})
            self.hand_out(index)
            self.redeem(index, index=0, count=2)

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    def _try(self, operation, *args, **kwargs):
        try:
            with transaction.atomic():
                result = operation(*args, **kwargs)
        except DomainError:
            return None  # a refused operation changes nothing; the invariants check that too
        return result

    def _order(self, funder, programme, lines):
        order = self._try(
            approved_order, lines=lines, funder=funder, operator=self.operator, programme=programme
        )
        if order is not None:
            order_issue(order_id=order.pk)

    def _pick(self, queryset, index: int):
        rows = list(queryset.order_by("pk")[:50])
        return rows[index % len(rows)] if rows else None

    # --- Funders and distribution ---------------------------------------------------------

    @rule(funder=st.integers(0, 1), size=st.sampled_from([5, 10]))
    def order(self, funder, size):
        self._order(self.funders[funder], self.programmes[funder], {size: 1})

    @rule(funder=st.integers(0, 1))
    def hand_out(self, funder):
        member, programme = self.funders[funder], self.programmes[funder]
        movement = self._try(
            booklets_allocate,
            actor=actor_for(member),
            distributor=member.organisation,
            programme=programme,
            count=1,
        )
        if movement is None:
            return
        self.people += 1
        self._try(
            booklet_assign,
            actor=actor_for(member),
            booklet=movement.booklets.get(),
            person=Person("Durand", f"Personne{self.people}", date(1970, 1, 1)),
            age_bracket="26-44",
            postcode="33000",
        )

    @rule(index=st.integers(0, 200))
    def block_cheque(self, index):
        cheque = self._pick(
            Cheque.objects.filter(status=ChequeStatus.ACTIVE, booklet__holder__isnull=False), index
        )
        if cheque:
            funder = next(f for f in self.funders if f.organisation_id == cheque.booklet.funder_id)
            self._try(cheques_block, actor=actor_for(funder), cheques=[cheque], reason="Perdu")

    @rule(days=st.sampled_from([0, 1, 0, 1, 400]))
    def time_passes(self, days):
        cheques_expire(today=timezone.localdate() + timedelta(days=days))

    # --- Providers --------------------------------------------------------------------------

    @rule(funder=st.integers(0, 1), index=st.integers(0, 200), count=st.integers(1, 2))
    def redeem(self, funder, index, count):
        redeemable = Cheque.objects.filter(
            status=ChequeStatus.ACTIVE,
            booklet__status=BookletStatus.ASSIGNED,
            booklet__programme=self.programmes[funder],
            expires_on__gte=timezone.localdate(),
        ).order_by("pk")
        codes = list(redeemable.values_list("code", flat=True))
        if codes:
            start = index % len(codes)
            self._try(
                cheques_redeem,
                actor=actor_for(self.provider),
                codes=codes[start : start + count],
                service=self.services[funder],
                site=self.site,
            )

    @rule(index=st.integers(0, 50))
    def cancel(self, index):
        redemption = self._pick(
            Redemption.objects.filter(status=RedemptionStatus.ACTIVE, payout__isnull=True), index
        )
        if redemption:
            self._try(redemption_cancel, actor=actor_for(self.provider), redemption=redemption)

    # --- Operators: settlement ----------------------------------------------------------------

    def _open_batch(self) -> SettlementBatch | None:
        waiting = Redemption.objects.filter(status=RedemptionStatus.ACTIVE, payout__isnull=True)
        if not waiting.exists():
            return None
        # Each batch closes a period one day earlier than the last (one batch per period); the
        # redemptions waiting are moved into it, as if they had been made then.
        period_end = timezone.localdate() - timedelta(days=1 + SettlementBatch.objects.count())
        waiting.update(
            created_at=datetime.combine(
                period_end, time(12), tzinfo=timezone.get_current_timezone()
            )
        )
        batch = self._try(batch_create, actor=actor_for(self.operator), period_end=period_end)
        return batch_compute(batch_id=batch.pk) if batch is not None else None

    def _advance(self, batch: SettlementBatch) -> None:
        actor, today = actor_for(self.second), timezone.localdate()
        batch.refresh_from_db()
        if batch.status == BatchStatus.PENDING_APPROVAL:
            self._try(batch_approve, actor=actor, batch=batch)
        elif batch.status == BatchStatus.APPROVED:
            # An export with no transfer left (all payouts rejected, or every provider held)
            # fails SEPA validation with a 500: such a batch is left where it is.
            if batch.payouts.filter(status=PayoutStatus.PENDING, amount_cents__gt=0).exists():
                self._try(batch_export, actor=actor, batch=batch, execution_date=today)
        elif batch.status == BatchStatus.EXPORTED:
            self._try(batch_mark_paid, actor=actor, batch=batch, paid_on=today)

    @rule(index=st.integers(0, 5))
    def settlement_step(self, index):
        """One step of a batch waiting for one (approve, export, mark paid), else a new batch."""
        batch = self._pick(SettlementBatch.objects.exclude(status=BatchStatus.PAID), index)
        if batch is not None:
            self._advance(batch)
        else:
            self._open_batch()

    @rule()
    def monthly_settlement(self):
        """The whole run at once: open, compute, approve, export, mark paid."""
        batch = self._open_batch()
        for _step in range(3):
            if batch is not None:
                self._advance(batch)

    @rule(index=st.integers(0, 20), paid=st.booleans(), verified_again=st.booleans())
    def bank_rejects_a_payout(self, index, paid, verified_again):
        status = PayoutStatus.PAID if paid else PayoutStatus.PENDING
        payout = self._pick(Payout.objects.filter(status=status), index)
        if payout:
            self._try(payout_reject, actor=actor_for(self.second), payout=payout, reason="Rejet")
        if verified_again:  # the operator checks the new bank details (else: held next time)
            Accreditation.objects.filter(organisation=self.provider.organisation).update(
                bank_status=BankStatus.VERIFIED
            )

    @rule(funder=st.integers(0, 1), now=st.integers(0, 2))
    def programme_ends(self, funder, now):
        if now:  # a programme's end comes rarely: let the other operations run first
            return
        programme = self.programmes[funder]
        self._try(programme_close, programme_id=programme.pk, today=programme_closes_on(programme))

    # --- Invariants ---------------------------------------------------------------------------

    @invariant()
    def every_account_balances_for_its_funder_and_the_operator(self):
        held = {
            row.funder_id: row.held_cents for row in operator_balances(membership=self.operator)
        }
        seen_by_operator = {
            account.programme.pk: account for account in funder_account(membership=self.operator)
        }
        for funder in self.funders:
            accounts = funder_account(membership=funder)
            for account in accounts:
                assert account.balances, (account.held_cents, account.breakdown)
                assert seen_by_operator[account.programme.pk] == account
            assert held.get(funder.organisation_id, 0) == sum(a.held_cents for a in accounts)

    @invariant()
    def payouts_match_settled_redemptions_and_the_ledgers(self):
        live = Payout.objects.exclude(status=PayoutStatus.REJECTED)
        assert _total(live, "amount_cents") == _total(
            Redemption.objects.filter(payout__isnull=False), "amount_cents"
        )
        paid = _total(live.filter(status=PayoutStatus.PAID), "amount_cents")
        assert paid == _total(
            Redemption.objects.filter(payout__status=PayoutStatus.PAID), "amount_cents"
        )
        assert paid == -_total(
            LedgerEntry.objects.filter(kind=LedgerKind.PAID_TO_PROVIDERS), "amount_cents"
        )

    @invariant()
    def a_credit_note_is_the_value_of_its_cheques(self):
        for note in CreditNote.objects.all():
            assert note.amount_cents == _total(
                CreditedCheque.objects.filter(credit_note=note), "value_cents"
            )
            assert note.amount_cents == -_total(
                LedgerEntry.objects.filter(credit_note=note), "amount_cents"
            )

    @invariant()
    def handed_out_booklets_have_a_beneficiary(self):
        assert not Booklet.objects.filter(
            status=BookletStatus.ASSIGNED, beneficiary__isnull=True
        ).exists()


def test_every_funders_ledger_balances_after_any_sequence_of_operations(settings_overrides):
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


@pytest.fixture
def settings_overrides(settings):
    # Many redemptions in a few seconds: keep the counters' abuse limits out of the way.
    settings.REDEEM_RATE_PER_MEMBERSHIP = 100_000
    settings.REDEEM_RATE_PER_IP = 100_000
    return settings
