"""Funders' accounts: what each step of the journey writes, the credit note, the pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from aptic.errors import Conflict
from orgs.models import AuditEvent, MemberRole
from redemption.models import Payout, Redemption
from redemption.services.redeem import cheques_redeem
from redemption.services.settlement import (
    batch_approve,
    batch_compute,
    batch_create,
    batch_export,
    batch_mark_paid,
    payout_reject,
)
from tests.factories import MembershipFactory, OrganisationFactory, ProgrammeFactory
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import (
    actor_for,
    approved_order,
    funder_membership,
    issued_order,
    operator_membership,
)
from vouchers.models import (
    Cheque,
    ChequeStatus,
    CreditedCheque,
    CreditNote,
    LedgerAppendOnlyError,
    LedgerEntry,
    LedgerKind,
    Programme,
)
from vouchers.selectors.ledger import funder_account, operator_balances
from vouchers.services.distribution import cheques_block
from vouchers.services.issuance import order_issue
from vouchers.services.ledger import (
    ledger_record_order_paid,
    programme_close,
    programme_closes_on,
)

pytestmark = pytest.mark.django_db


def _entries(**filters) -> list[tuple[str, int]]:
    return list(
        LedgerEntry.objects.filter(**filters).order_by("id").values_list("kind", "amount_cents")
    )


def _account(membership, programme):
    [account] = funder_account(membership=membership, programme=programme)
    return account


def _funder_of(programme: Programme):
    return MembershipFactory(organisation=programme.funder, role=MemberRole.ADMIN)


# --- Writers -------------------------------------------------------------------------------------


def test_approving_an_order_records_the_face_value_paid_in_and_the_fee():
    order = approved_order(lines={5: 2, 10: 1})
    assert (order.face_value_cents, order.fee_cents) == (20000, 800)
    assert _entries(order=order) == [("paid_in", 20000), ("fee", 800)]
    funder = _funder_of(order.programme)

    account = _account(funder, order.programme)
    assert (account.paid_in_cents, account.fee_cents, account.held_cents) == (20000, 800, 20000)
    # Paid for, not yet issued: the account still balances.
    assert account.breakdown.awaiting_issue_cents == 20000 and account.balances

    order_issue(order_id=order.pk)
    account = _account(funder, order.programme)
    assert account.breakdown.awaiting_issue_cents == 0
    assert account.breakdown.active_cents == 20000 and account.balances


def test_an_order_is_paid_in_once_whatever_the_code_path():
    order = approved_order(lines={5: 1})
    with pytest.raises(IntegrityError), transaction.atomic():
        ledger_record_order_paid(order=order)
    assert len(_entries(order=order, kind=LedgerKind.PAID_IN)) == 1


@pytest.fixture
def settled():
    """Two funders' handed-out cheques; one provider redeems 3 of each, another 2 of the first."""
    worlds = [handed_out_cheques(booklets=1, size=10), handed_out_cheques(booklets=1, size=10)]
    services = [world.service for world in worlds]
    both, both_site = accredited_provider_member(services=services)
    first_only, first_site = accredited_provider_member(services=services)
    for world in worlds:
        for code in world.codes[:3]:
            cheques_redeem(
                actor=actor_for(both), codes=[code], service=world.service, site=both_site
            )
    cheques_redeem(
        actor=actor_for(first_only),
        codes=worlds[0].codes[3:5],
        service=worlds[0].service,
        site=first_site,
    )
    Redemption.objects.update(created_at=timezone.now() - timedelta(days=1))
    operator = operator_membership()
    second = MembershipFactory(organisation=operator.organisation, role=MemberRole.ADMIN)
    batch = batch_create(
        actor=actor_for(operator), period_end=timezone.localdate() - timedelta(days=1)
    )
    batch = batch_compute(batch_id=batch.pk)
    batch_approve(actor=actor_for(second), batch=batch)
    batch = batch_export(actor=actor_for(second), batch=batch, execution_date=timezone.localdate())
    return worlds, (both, first_only), operator, second, batch


def test_a_paid_batch_takes_each_payout_from_the_accounts_of_its_cheques(settled):
    worlds, (both, first_only), _operator, second, batch = settled
    first, other = (_funder_of(world.programme) for world in worlds)
    assert not LedgerEntry.objects.filter(kind=LedgerKind.PAID_TO_PROVIDERS).exists()
    assert _account(first, worlds[0].programme).breakdown.redeemed_unpaid_cents == 5000

    batch_mark_paid(actor=actor_for(second), batch=batch, paid_on=timezone.localdate())

    both_payout = Payout.objects.get(provider=both.organisation)
    first_payout = Payout.objects.get(provider=first_only.organisation)
    # One payout covering two funders: one row per account.
    assert sorted(
        LedgerEntry.objects.filter(payout=both_payout).values_list("programme_id", "amount_cents")
    ) == sorted([(worlds[0].programme.pk, -3000), (worlds[1].programme.pk, -3000)])
    assert _entries(payout=first_payout) == [("paid_to_providers", -2000)]
    account = _account(first, worlds[0].programme)
    assert (account.paid_out_cents, account.held_cents) == (5000, 10000 - 5000)
    assert account.breakdown.redeemed_unpaid_cents == 0 and account.balances
    assert _account(other, worlds[1].programme).balances


def test_a_payout_rejected_after_it_was_paid_goes_back_to_the_funders(settled):
    worlds, (both, _first_only), _operator, second, batch = settled
    batch_mark_paid(actor=actor_for(second), batch=batch, paid_on=timezone.localdate())
    payout = Payout.objects.get(provider=both.organisation)

    payout_reject(actor=actor_for(second), payout=payout, reason="Compte clos")

    assert sorted(_entries(payout=payout, programme=worlds[0].programme)) == [
        ("paid_to_providers", -3000),
        ("paid_to_providers", 3000),
    ]
    first = _funder_of(worlds[0].programme)
    account = _account(first, worlds[0].programme)
    assert account.paid_out_cents == 2000 and account.held_cents == 8000
    # The released redemptions are redeemed and unpaid again: the account still balances.
    assert account.breakdown.redeemed_unpaid_cents == 3000 and account.balances


def test_a_payout_rejected_before_the_batch_is_paid_writes_nothing(settled):
    worlds, (both, _first_only), _operator, second, batch = settled
    payout = Payout.objects.get(provider=both.organisation)
    payout_reject(actor=actor_for(second), payout=payout, reason="IBAN inconnu")
    batch_mark_paid(actor=actor_for(second), batch=batch, paid_on=timezone.localdate())
    assert not LedgerEntry.objects.filter(payout=payout).exists()
    for world in worlds:
        assert _account(_funder_of(world.programme), world.programme).balances


# --- Programme close and credit note -------------------------------------------------------------


@pytest.fixture
def ending():
    """A programme with 2 booklets of 10 handed out: 4 cheques redeemed and paid, 3 blocked."""
    world = handed_out_cheques(booklets=2, size=10)
    funder = _funder_of(world.programme)
    member, site = accredited_provider_member(services=[world.service])
    cheques_redeem(actor=actor_for(member), codes=world.codes[:4], service=world.service, site=site)
    cheques_block(
        actor=actor_for(funder),
        cheques=list(Cheque.objects.filter(code__in=world.codes[10:13])),
        reason="Perdus",
    )
    Redemption.objects.update(created_at=timezone.now() - timedelta(days=1))
    operator = operator_membership()
    second = MembershipFactory(organisation=operator.organisation, role=MemberRole.ADMIN)
    batch = batch_compute(
        batch_id=batch_create(
            actor=actor_for(operator), period_end=timezone.localdate() - timedelta(days=1)
        ).pk
    )
    batch_approve(actor=actor_for(second), batch=batch)
    batch_export(actor=actor_for(second), batch=batch, execution_date=timezone.localdate())
    batch_mark_paid(actor=actor_for(second), batch=batch, paid_on=timezone.localdate())
    return world, funder


def test_closing_a_programme_credits_the_unused_value_once(
    ending, mailoutbox, django_capture_on_commit_callbacks
):
    world, funder = ending
    programme = world.programme
    closes_on = programme_closes_on(programme)
    assert closes_on == programme.last_valid_day + timedelta(days=2)  # plus the cancel window

    with django_capture_on_commit_callbacks(execute=True):
        note = programme_close(programme_id=programme.pk, today=closes_on)

    # 20 cheques: 4 redeemed, 3 blocked, 13 never used (expired by the close).
    assert note.amount_cents == 16000
    assert note.number == f"AV-{timezone.localdate().year}-000001"
    assert note.breakdown["expired_cents"] == 13000 and note.breakdown["blocked_cents"] == 3000
    assert note.breakdown["redeemed_cents"] == 4000
    assert not Cheque.objects.filter(booklet__programme=programme, status="active").exists()
    assert CreditedCheque.objects.filter(credit_note=note).count() == 16
    assert _entries(credit_note=note) == [("credited", -16000)]
    assert note.pdf.open("rb").read(4) == b"%PDF"
    account = _account(funder, programme)
    assert (account.held_cents, account.returned_cents, account.credit_note) == (0, 16000, note)
    assert account.balances
    assert not Programme.objects.get(pk=programme.pk).is_active
    assert AuditEvent.objects.filter(action="vouchers.programme.closed").count() == 1
    # One message per recipient (each in their own language): the funder admin's.
    [mail] = [m for m in mailoutbox if m.to == [funder.user.email]]
    assert note.number in mail.subject
    assert "160,00" in mail.body

    # A second close (a retried task, a double click) does nothing.
    assert programme_close(programme_id=programme.pk, today=closes_on + timedelta(days=5)) is None
    assert CreditNote.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerKind.CREDITED).count() == 1


def test_a_programme_is_not_closed_before_its_end_and_the_cancel_window(ending):
    world, _funder = ending
    closes_on = programme_closes_on(world.programme)
    with pytest.raises(Conflict) as refused:
        programme_close(programme_id=world.programme.pk, today=closes_on - timedelta(days=1))
    assert refused.value.code == "programme_not_ended"
    assert not CreditNote.objects.exists()


def test_a_month_based_programme_is_not_closed_automatically():
    programme = ProgrammeFactory(validity_kind="months", validity_months=6, valid_until=None)
    with pytest.raises(Conflict) as refused:
        programme_close(programme_id=programme.pk, today=timezone.localdate() + timedelta(days=999))
    assert refused.value.code == "programme_without_end_date"


def _ended_programme(owner, days_ago: int = 40) -> Programme:
    programme = ProgrammeFactory(
        funder=owner.organisation,
        valid_until=timezone.localdate() + timedelta(days=30),
        tolerance_days=0,
    )
    issued_order(lines={5: 1}, funder=owner, operator=operator_membership(), programme=programme)
    # Time passes: the programme ends (orders of an ended programme cannot be approved).
    end = timezone.localdate() - timedelta(days=days_ago)
    Programme.objects.filter(pk=programme.pk).update(valid_until=end)
    Cheque.objects.filter(booklet__programme=programme).update(expires_on=end)
    programme.refresh_from_db()
    return programme


def test_the_daily_task_closes_the_ended_programmes_once():
    from vouchers.tasks import close_ended_programmes

    owner = funder_membership()
    ended = _ended_programme(owner)
    _ended_programme(owner, days_ago=1)  # inside the cancel window: not yet
    ProgrammeFactory(funder=owner.organisation)  # still running

    assert close_ended_programmes() == [ended.pk]
    assert close_ended_programmes() == []
    note = CreditNote.objects.get()
    assert (note.programme, note.amount_cents) == (ended, 5000)


# --- Append-only -------------------------------------------------------------------------------


def test_ledger_rows_cannot_be_changed_or_deleted_through_the_orm():
    order = approved_order(lines={5: 1})
    entry = LedgerEntry.objects.get(order=order, kind=LedgerKind.PAID_IN)
    entry.amount_cents = 1
    with pytest.raises(LedgerAppendOnlyError):
        entry.save()
    with pytest.raises(LedgerAppendOnlyError):
        entry.delete()
    with pytest.raises(LedgerAppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_cents=1)
    with pytest.raises(LedgerAppendOnlyError):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get(pk=entry.pk).amount_cents == 5000


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE vouchers_ledgerentry SET amount_cents = 1 WHERE id = %s",
        "DELETE FROM vouchers_ledgerentry WHERE id = %s",
    ],
)
def test_postgresql_refuses_update_and_delete_on_the_ledger(sql):
    order = approved_order(lines={5: 1})
    entry = LedgerEntry.objects.filter(order=order, kind=LedgerKind.PAID_IN).get()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [entry.pk])
    assert LedgerEntry.objects.get(pk=entry.pk).amount_cents == 5000


@pytest.mark.postgres
def test_postgresql_refuses_to_uncredit_a_cheque():
    owner = funder_membership()
    note = programme_close(programme_id=_ended_programme(owner).pk)
    credited = CreditedCheque.objects.filter(credit_note=note).first()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM vouchers_creditedcheque WHERE id = %s", [credited.pk])
    assert CreditedCheque.objects.filter(pk=credited.pk).exists()


# --- Reads and pages ---------------------------------------------------------------------------


def test_operators_see_every_funders_balance_at_a_date_in_one_query(
    django_assert_num_queries,
):
    operator = operator_membership()
    first, second = funder_membership(name="A Département"), funder_membership(name="B Ville")
    approved_order(lines={5: 1}, funder=first, operator=operator)
    approved_order(lines={10: 1}, funder=second, operator=operator)
    with django_assert_num_queries(1):
        rows = operator_balances(membership=operator)
    assert [(r.funder_name, r.held_cents, r.fee_cents) for r in rows] == [
        ("A Département", 5000, 200),
        ("B Ville", 10000, 400),
    ]
    assert operator_balances(membership=operator, at=timezone.localdate() - timedelta(days=1)) == []
    # A funder reading the same selector sees only itself.
    assert [r.funder_name for r in operator_balances(membership=first)] == ["A Département"]


def test_the_funder_account_page_shows_held_money_entries_and_credit_notes(client_for):
    owner = funder_membership()
    programme = _ended_programme(owner)
    running = ProgrammeFactory(funder=owner.organisation, name="Programme en cours")
    approved_order(lines={10: 1}, funder=owner, programme=running)
    note = programme_close(programme_id=programme.pk)

    page = client_for(owner).get("/compte/")
    assert page.status_code == 200
    html = page.content.decode()
    assert programme.name in html and "Programme en cours" in html
    assert "100,00\u00a0€" in html  # held for the running programme
    assert note.number in html and f"/compte/avoirs/{note.pk}.pdf" in html
    assert "Écart" not in html  # every account balances

    pdf = client_for(owner).get(f"/compte/avoirs/{note.pk}.pdf")
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content)[:4] == b"%PDF"


def test_another_funders_credit_note_answers_404(client_for):
    note = programme_close(programme_id=_ended_programme(funder_membership()).pk)
    outsider = funder_membership()
    assert client_for(outsider).get(f"/compte/avoirs/{note.pk}.pdf").status_code == 404
    assert note.programme.name not in client_for(outsider).get("/compte/").content.decode()


def test_the_balances_page_is_for_operators(client_for):
    operator = operator_membership()
    funder = funder_membership(name="Gironde")
    approved_order(lines={5: 1}, funder=funder, operator=operator)
    page = client_for(operator).get("/compte/soldes/")
    assert page.status_code == 200 and "Gironde" in page.content.decode()
    past = (timezone.localdate() - timedelta(days=3)).isoformat()
    assert "Gironde" not in client_for(operator).get(f"/compte/soldes/?au={past}").content.decode()
    assert client_for(funder).get("/compte/soldes/").status_code == 403
    # Operators open one funder's account from there.
    assert client_for(operator).get("/compte/").status_code == 302
    detail = client_for(operator).get(f"/compte/?commanditaire={funder.organisation.pk}")
    assert detail.status_code == 200 and "Gironde" in detail.content.decode()
    provider = MembershipFactory(
        organisation=OrganisationFactory(is_funder=False, is_provider=True)
    )
    assert client_for(provider).get("/compte/").status_code == 403


def tenancy_credit_note_kwargs(owner) -> dict:
    """For tests/test_tenancy.py: a credit note of the owner's organisation."""
    return {"pk": programme_close(programme_id=_ended_programme(owner).pk).pk}


def test_the_cheques_in_a_credit_note_stay_out_of_the_breakdown():
    owner = funder_membership()
    programme = _ended_programme(owner)
    programme_close(programme_id=programme.pk)
    account = _account(owner, programme)
    assert account.breakdown.expired_cents == 0 and account.held_cents == 0
    assert (
        Cheque.objects.filter(booklet__programme=programme, status=ChequeStatus.EXPIRED).count()
        == 5
    )
