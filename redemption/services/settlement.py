"""Settlement: batches of payouts, computed exactly once, approved by a second operator, paid.

A batch covers the active, unsettled redemptions created up to the end of its ``period_end``.
Each provider's part runs in its own transaction and assigns ``Redemption.payout`` — a single
column, so a redemption is in at most one payout by construction — so a computation killed
halfway is finished by the next run with the same payouts and totals.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from aptic.errors import Conflict, ValidationFailed
from orgs.audit import Actor, audit_record
from orgs.models import Accreditation, BankStatus, Organisation
from orgs.permissions import require

from ..models import (
    BATCH_TRANSITIONS,
    BatchStatus,
    HeldProvider,
    Payout,
    PayoutStatus,
    Redemption,
    RedemptionStatus,
    SettlementBatch,
)

logger = logging.getLogger(__name__)


def _cutoff(period_end: date) -> datetime:
    """Redemptions created before the day after ``period_end`` (Paris time) belong to it."""
    return datetime.combine(
        period_end + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
    )


def _unsettled(period_end: date):
    return Redemption.objects.filter(
        status=RedemptionStatus.ACTIVE, payout__isnull=True, created_at__lt=_cutoff(period_end)
    )


def previous_month_end(today: date | None = None) -> date:
    today = today or timezone.localdate()
    return today.replace(day=1) - timedelta(days=1)


def _transition(batch: SettlementBatch, target: str, **changes) -> None:
    sources = [s for s, targets in BATCH_TRANSITIONS.items() if target in targets]
    if (
        SettlementBatch.objects.filter(pk=batch.pk, status__in=sources).update(
            status=target, **changes
        )
        != 1
    ):
        batch.refresh_from_db(fields=["status"])
        raise Conflict(
            _("Ce lot est « %(status)s » : l'opération n'est plus possible.")
            % {"status": batch.get_status_display()},
            code="batch_state_conflict",
        )
    batch.refresh_from_db()


def batch_create(*, actor: Actor, period_end: date | None = None) -> SettlementBatch:
    """Open the batch of a period and queue its computation; two calls at once give one batch."""
    if not actor.is_system:
        require(actor.membership, "settlement:compute")
    period_end = period_end or previous_month_end()
    if period_end >= timezone.localdate():
        raise ValidationFailed(
            _("La période doit être close (au plus tard hier)."),
            field="period_end",
            code="period_not_closed",
        )
    try:
        with transaction.atomic():
            batch = SettlementBatch.objects.create(
                reference=f"REM-{period_end:%Y-%m-%d}",
                period_end=period_end,
                created_by=actor.user,
            )
            audit_record(
                actor=actor,
                action="redemption.batch.created",
                target=batch,
                data={"period_end": period_end},
            )
    except IntegrityError:
        # The same period already has its batch (a concurrent run, or the monthly schedule).
        batch = SettlementBatch.objects.get(period_end=period_end)
        if batch.status != BatchStatus.COMPUTING:
            raise Conflict(
                _("Le lot de cette période existe déjà (%(ref)s).") % {"ref": batch.reference},
                code="batch_exists",
            ) from None
    from ..tasks import compute_batch

    transaction.on_commit(lambda: compute_batch.delay(batch.pk))
    return batch


def _payable(provider: Organisation, day: date) -> tuple[Accreditation | None, str]:
    accreditation = Accreditation.objects.filter(organisation=provider).first()
    if accreditation is None or not accreditation.is_valid_on(day):
        return None, "not_accredited"
    if accreditation.bank_status != BankStatus.VERIFIED or not accreditation.iban:
        return None, "bank_unverified"
    return accreditation, ""


def _settle_provider(batch: SettlementBatch, provider: Organisation) -> None:
    """One provider's part, in its own transaction: a payout, or a hold with the reason."""
    with transaction.atomic():
        if Payout.objects.filter(batch=batch, provider=provider).exists() or (
            HeldProvider.objects.filter(batch=batch, provider=provider).exists()
        ):
            return  # done by an earlier run of this computation
        unsettled = _unsettled(batch.period_end).filter(provider=provider)
        totals = unsettled.aggregate(amount=Sum("amount_cents"), count=Count("id"))
        if not totals["count"]:
            return
        accreditation, reason = _payable(provider, timezone.localdate())
        if accreditation is None:
            HeldProvider.objects.create(
                batch=batch,
                provider=provider,
                reason=reason,
                amount_cents=totals["amount"],
                redemption_count=totals["count"],
            )
            return
        payout = Payout.objects.create(
            batch=batch,
            provider=provider,
            iban=accreditation.iban,
            bic=accreditation.bic,
            account_holder=accreditation.account_holder or provider.name,
            end_to_end_id=f"APTIC-{batch.pk}-{provider.pk}",
        )
        count = unsettled.update(payout=payout)
        amount = Redemption.objects.filter(payout=payout).aggregate(v=Sum("amount_cents"))["v"]
        Payout.objects.filter(pk=payout.pk).update(amount_cents=amount or 0, redemption_count=count)


def batch_compute(*, batch_id: int, after_provider=None) -> SettlementBatch:
    """Compute a batch: idempotent and resumable (each provider's part is its own transaction).

    ``after_provider`` is a hook called after each provider (tests inject a failure there).
    Totals are re-checked against the redemptions before the batch leaves ``computing``.
    """
    batch = SettlementBatch.objects.get(pk=batch_id)
    if batch.status != BatchStatus.COMPUTING:
        return batch
    providers = Organisation.objects.filter(
        pk__in=_unsettled(batch.period_end).values("provider_id")
    ).order_by("pk")
    for provider in providers.iterator():
        _settle_provider(batch, provider)
        if after_provider is not None:
            after_provider(provider)
    with transaction.atomic():
        batch = SettlementBatch.objects.select_for_update().get(pk=batch_id)
        if batch.status != BatchStatus.COMPUTING:
            return batch
        payouts = Payout.objects.filter(batch=batch).aggregate(
            amount=Sum("amount_cents"), count=Count("id"), redemptions=Sum("redemption_count")
        )
        settled = Redemption.objects.filter(payout__batch=batch).aggregate(
            amount=Sum("amount_cents"), count=Count("id")
        )
        if (payouts["amount"] or 0) != (settled["amount"] or 0) or (
            payouts["redemptions"] or 0
        ) != settled["count"]:
            raise RuntimeError(f"Batch {batch.reference}: payouts do not match redemptions")
        _transition(
            batch,
            BatchStatus.PENDING_APPROVAL,
            computed_at=timezone.now(),
            total_cents=payouts["amount"] or 0,
            payout_count=payouts["count"],
            redemption_count=settled["count"],
        )
        audit_record(
            actor=Actor.system(),
            action="redemption.batch.computed",
            target=batch,
            data={
                "total_cents": batch.total_cents,
                "payouts": batch.payout_count,
                "redemptions": batch.redemption_count,
                "held": list(batch.held.values_list("provider_id", "reason")),
            },
        )
        from ..tasks import render_statement

        for payout_id in batch.payouts.values_list("pk", flat=True):
            transaction.on_commit(lambda pk=payout_id: render_statement.delay(pk))
    return batch


@transaction.atomic
def batch_approve(*, actor: Actor, batch: SettlementBatch) -> SettlementBatch:
    """Four eyes: an operator admin other than the batch's creator approves it."""
    require(actor.membership, "settlement:approve")
    if batch.created_by_id is not None and batch.created_by_id == actor.user.pk:
        raise Conflict(
            _("Un autre opérateur doit approuver le lot que vous avez créé."),
            code="four_eyes",
        )
    _transition(batch, BatchStatus.APPROVED, approved_by=actor.user, approved_at=timezone.now())
    audit_record(
        actor=actor,
        action="redemption.batch.approved",
        target=batch,
        data={"total_cents": batch.total_cents, "payouts": batch.payout_count},
    )
    return batch


def sepa_document(batch: SettlementBatch, execution_date: date) -> bytes:
    """The pain.001.001.03 credit transfer, validated against its schema by sepaxml."""
    from sepaxml import SepaTransfer

    transfer = SepaTransfer(
        {
            "name": settings.SEPA_DEBTOR_NAME,
            "IBAN": settings.SEPA_DEBTOR_IBAN,
            "BIC": settings.SEPA_DEBTOR_BIC,
            "batch": True,
            "currency": "EUR",
        },
        clean=True,
    )
    for payout in (
        batch.payouts.filter(status=PayoutStatus.PENDING, amount_cents__gt=0)
        .order_by("pk")
        .iterator()
    ):
        transfer.add_payment(
            {
                "name": payout.account_holder[:70],
                "IBAN": payout.iban,
                "BIC": payout.bic,
                "amount": payout.amount_cents,
                "execution_date": execution_date,
                "description": f"APTIC {batch.reference} {payout.redemption_count} cheques",
                "endtoend_id": payout.end_to_end_id,
            }
        )
    return transfer.export(validate=True)


@transaction.atomic
def batch_export(*, actor: Actor, batch: SettlementBatch, execution_date: date) -> SettlementBatch:
    """Generate and keep the SEPA file of an approved batch."""
    require(actor.membership, "settlement:approve")
    if execution_date < timezone.localdate():
        raise ValidationFailed(
            _("La date d'exécution ne peut pas être passée."),
            field="execution_date",
            code="invalid_date",
        )
    batch = SettlementBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != BatchStatus.APPROVED:
        raise Conflict(_("Seul un lot approuvé peut être exporté."), code="batch_state_conflict")
    document = sepa_document(batch, execution_date)
    batch.sepa_file.save(f"{batch.reference}.xml", ContentFile(document), save=False)
    _transition(
        batch,
        BatchStatus.EXPORTED,
        exported_at=timezone.now(),
        execution_date=execution_date,
        sepa_file=batch.sepa_file.name,
    )
    audit_record(
        actor=actor,
        action="redemption.batch.exported",
        target=batch,
        data={"execution_date": execution_date, "file": batch.sepa_file.name},
    )
    return batch


@transaction.atomic
def batch_mark_paid(*, actor: Actor, batch: SettlementBatch, paid_on: date) -> SettlementBatch:
    require(actor.membership, "settlement:approve")
    _transition(batch, BatchStatus.PAID, paid_at=timezone.now(), execution_date=paid_on)
    Payout.objects.filter(batch=batch, status=PayoutStatus.PENDING).update(status=PayoutStatus.PAID)
    audit_record(
        actor=actor, action="redemption.batch.paid", target=batch, data={"paid_on": paid_on}
    )
    return batch


@transaction.atomic
def payout_reject(*, actor: Actor, payout: Payout, reason: str) -> Payout:
    """The bank rejected a transfer: its redemptions return to unsettled, bank details to check."""
    require(actor.membership, "settlement:approve")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Indiquez le motif du rejet."), field="reason", code="required")
    if (
        Payout.objects.filter(pk=payout.pk)
        .exclude(status=PayoutStatus.REJECTED)
        .update(
            status=PayoutStatus.REJECTED, rejected_at=timezone.now(), rejection_reason=reason[:200]
        )
        != 1
    ):
        raise Conflict(_("Ce virement est déjà rejeté."), code="already_rejected")
    released = Redemption.objects.filter(payout=payout).update(payout=None)
    Accreditation.objects.filter(organisation=payout.provider).update(
        bank_status=BankStatus.UNVERIFIED
    )
    payout.refresh_from_db()
    audit_record(
        actor=actor,
        action="redemption.payout.rejected",
        target=payout,
        organisation=payout.provider,
        data={
            "reason": reason,
            "redemptions_released": released,
            "amount_cents": payout.amount_cents,
        },
    )
    return payout
