"""Settlement: payouts computed exactly once, held providers, four eyes, the SEPA file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from aptic.errors import Conflict, NotAllowed, ValidationFailed
from orgs.audit import Actor
from orgs.models import Accreditation, AuditEvent, BankStatus, MemberRole
from redemption.models import (
    BatchStatus,
    HeldProvider,
    Payout,
    PayoutStatus,
    Redemption,
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
from redemption.services.statements import payout_statement_render
from tests.factories import MembershipFactory
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import actor_for, operator_membership

pytestmark = pytest.mark.django_db
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


@pytest.fixture
def setup():
    world = handed_out_cheques(booklets=3, size=10)
    providers = [accredited_provider_member(services=[world.service]) for _ in range(3)]
    yesterday = timezone.now() - timedelta(days=1)
    for index, (member, site) in enumerate(providers):
        codes = world.codes[index * 10 : index * 10 + 4]
        for code in codes:
            cheques_redeem(actor=actor_for(member), codes=[code], service=world.service, site=site)
    Redemption.objects.update(created_at=yesterday)
    operator = operator_membership()
    second = MembershipFactory(organisation=operator.organisation, role=MemberRole.ADMIN)
    return world, providers, operator, second


def _batch(operator) -> SettlementBatch:
    batch = batch_create(
        actor=actor_for(operator), period_end=timezone.localdate() - timedelta(days=1)
    )
    return batch_compute(batch_id=batch.pk)


def test_one_payout_per_payable_provider_and_the_unpayable_are_held(setup):
    _world, providers, operator, _ = setup
    held_member, _site = providers[2]
    Accreditation.objects.filter(organisation=held_member.organisation).update(
        bank_status=BankStatus.UNVERIFIED
    )
    batch = _batch(operator)
    assert batch.status == BatchStatus.PENDING_APPROVAL
    assert batch.payout_count == 2 and batch.total_cents == 8000 and batch.redemption_count == 8
    assert sorted(Payout.objects.values_list("amount_cents", flat=True)) == [4000, 4000]
    held = HeldProvider.objects.get()
    assert (held.provider, held.reason, held.amount_cents) == (
        held_member.organisation,
        "bank_unverified",
        4000,
    )
    assert (
        Redemption.objects.filter(provider=held_member.organisation, payout__isnull=True).count()
        == 4
    )


def test_a_cancelled_redemption_and_a_later_one_are_not_paid(setup):
    world, providers, operator, _ = setup
    member, site = providers[0]
    redemption = Redemption.objects.filter(provider=member.organisation).first()
    Redemption.objects.filter(pk=redemption.pk).update(created_at=timezone.now())
    redemption_cancel(actor=actor_for(member), redemption=redemption)
    cheques_redeem(
        actor=actor_for(member), codes=[world.codes[5]], service=world.service, site=site
    )  # today: after the period
    batch = _batch(operator)
    assert Payout.objects.get(provider=member.organisation).amount_cents == 3000
    assert batch.redemption_count == 11


def test_a_computation_killed_halfway_is_finished_with_the_same_totals(setup):
    _world, _providers, operator, _ = setup
    batch = batch_create(
        actor=actor_for(operator), period_end=timezone.localdate() - timedelta(days=1)
    )

    def crash_after_first(provider):
        raise RuntimeError("worker lost")

    with pytest.raises(RuntimeError):
        batch_compute(batch_id=batch.pk, after_provider=crash_after_first)
    assert Payout.objects.count() == 1  # one provider's part committed
    batch = batch_compute(batch_id=batch.pk)
    assert batch.status == BatchStatus.PENDING_APPROVAL
    assert (batch.payout_count, batch.total_cents) == (3, 12000)
    assert Redemption.objects.filter(payout__isnull=True).count() == 0
    assert batch_compute(batch_id=batch.pk).total_cents == 12000  # a late retry changes nothing


def test_a_period_without_redemptions_to_settle_gets_no_batch(setup):
    _world, _providers, operator, _second = setup
    with pytest.raises(ValidationFailed) as refused:
        batch_create(actor=actor_for(operator), period_end=timezone.localdate() - timedelta(days=2))
    assert refused.value.code == "nothing_to_settle"
    assert "Aucun encaissement à rembourser" in str(refused.value.message)
    assert not SettlementBatch.objects.exists()
    assert not AuditEvent.objects.filter(action="redemption.batch.created").exists()


def test_one_batch_per_period(setup):
    _world, _providers, operator, second = setup
    batch = _batch(operator)
    with pytest.raises(Conflict):
        batch_create(actor=actor_for(second), period_end=batch.period_end)
    assert SettlementBatch.objects.count() == 1


def test_four_eyes_the_creator_and_an_agent_cannot_approve(setup):
    _world, _providers, operator, second = setup
    batch = _batch(operator)
    with pytest.raises(Conflict) as refused:
        batch_approve(actor=actor_for(operator), batch=batch)
    assert refused.value.code == "four_eyes"
    agent = MembershipFactory(organisation=operator.organisation, role=MemberRole.AGENT)
    with pytest.raises(NotAllowed):
        batch_approve(actor=actor_for(agent), batch=batch)
    batch_approve(actor=actor_for(second), batch=batch)
    assert SettlementBatch.objects.get().status == BatchStatus.APPROVED
    event = AuditEvent.objects.get(action="redemption.batch.approved")
    assert event.actor == second.user


def test_the_sepa_file_matches_the_batch_and_the_bank_details_snapshot(setup):
    _world, providers, operator, second = setup
    batch = _batch(operator)
    snapshot = {p.end_to_end_id: p.iban for p in Payout.objects.all()}
    member, _site = providers[0]
    Accreditation.objects.filter(organisation=member.organisation).update(
        iban="FR7630004000031234567890143"
    )  # edited after computation: the file keeps the snapshot
    batch_approve(actor=actor_for(second), batch=batch)
    batch = batch_export(
        actor=actor_for(second),
        batch=batch,
        execution_date=timezone.localdate() + timedelta(days=1),
    )
    root = ET.fromstring(batch.sepa_file.open("rb").read())  # noqa: S314 - our own file
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", NS)
    assert int(header.find("p:NbOfTxs", NS).text) == batch.payout_count == 3
    assert header.find("p:CtrlSum", NS).text == f"{batch.total_cents / 100:.2f}"
    transactions = root.findall(".//p:CdtTrfTxInf", NS)
    in_file = {
        tx.find("p:PmtId/p:EndToEndId", NS).text: tx.find("p:CdtrAcct/p:Id/p:IBAN", NS).text
        for tx in transactions
    }
    assert in_file == snapshot
    assert batch.status == BatchStatus.EXPORTED
    batch_mark_paid(actor=actor_for(second), batch=batch, paid_on=timezone.localdate())
    assert set(Payout.objects.values_list("status", flat=True)) == {PayoutStatus.PAID}


def test_a_rejected_payout_returns_its_redemptions_and_unverifies_the_bank(setup):
    _world, providers, operator, second = setup
    batch = _batch(operator)
    member, _site = providers[0]
    payout = Payout.objects.get(provider=member.organisation)
    with pytest.raises(Conflict):  # nothing was sent to the bank yet
        payout_reject(actor=actor_for(second), payout=payout, reason="Compte clos")
    batch_approve(actor=actor_for(second), batch=batch)
    batch_export(
        actor=actor_for(second),
        batch=batch,
        execution_date=timezone.localdate() + timedelta(days=1),
    )
    payout_reject(actor=actor_for(second), payout=payout, reason="Compte clos")
    assert Redemption.objects.filter(provider=member.organisation, payout__isnull=True).count() == 4
    assert Accreditation.objects.get(organisation=member.organisation).bank_status == (
        BankStatus.UNVERIFIED
    )


def test_the_statement_lists_masked_cheques_and_the_total(setup):
    _world, _providers, operator, _ = setup
    _batch(operator)
    payout = payout_statement_render(payout_id=Payout.objects.first().pk)
    assert payout.statement_pdf.open("rb").read(4) == b"%PDF"
    csv_text = payout.statement_csv.open("rb").read().decode("utf-8-sig")
    assert csv_text.count("XXXX-XXXX-") == 4
    assert "40,00" in csv_text and payout.batch.reference in csv_text


def test_the_monthly_schedule_creates_the_previous_months_batch(setup):
    from redemption.services.settlement import previous_month_end
    from redemption.tasks import create_monthly_batch

    assert create_monthly_batch() is None  # nothing redeemed last month: no batch to approve
    assert not SettlementBatch.objects.exists()
    last_month = timezone.make_aware(datetime.combine(previous_month_end(), datetime.min.time()))
    Redemption.objects.update(created_at=last_month)

    batch_id = create_monthly_batch()
    assert create_monthly_batch() == batch_id  # idempotent
    assert SettlementBatch.objects.get(pk=batch_id).created_by is None
    assert Actor.system().is_system
