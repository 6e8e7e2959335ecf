"""Settlement: batches of payouts, computed exactly once, approved by a second operator, paid.

A batch covers the active, unsettled redemptions created up to the end of its ``period_end``.
Its providers are settled in chunks, a transaction each, that assign ``Redemption.payout`` — a
single column, so a redemption is in at most one payout by construction — so a computation killed
halfway is finished by the next run with the same payouts and totals.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from time import sleep

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from aptic.errors import Conflict, ValidationFailed
from orgs.audit import Actor, audit_record
from orgs.models import Accreditation, BankStatus, Organisation
from orgs.permissions import require
from vouchers.services.ledger import ledger_record_payout_paid, ledger_record_payout_reversed

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
    already = SettlementBatch.objects.filter(period_end=period_end).exists()
    if not already and not _unsettled(period_end).exists():
        # A batch of nothing would still ask a second operator for an approval.
        raise ValidationFailed(
            _("Aucun encaissement à rembourser jusqu'au %(date)s inclus.")
            % {"date": period_end.strftime("%d/%m/%Y")},
            field="period_end",
            code="nothing_to_settle",
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


# A batch is computed in chunks of consecutive providers, one transaction each: a computation
# killed halfway keeps the chunks committed before, and the next run finishes the others. A chunk
# holds at most CHUNK_PROVIDERS providers and, past its first provider, CHUNK_REDEMPTIONS
# redemptions (the rows its transaction locks); a batch of fewer than MIN_CHUNKS * CHUNK_PROVIDERS
# providers is cut into at least MIN_CHUNKS transactions (a small one: provider by provider).
CHUNK_PROVIDERS = 100
CHUNK_REDEMPTIONS = 25_000
MIN_CHUNKS = 20


def _payable(accreditation: Accreditation | None, day: date) -> tuple[Accreditation | None, str]:
    if accreditation is None or not accreditation.is_valid_on(day):
        return None, "not_accredited"
    if accreditation.bank_status != BankStatus.VERIFIED or not accreditation.iban:
        return None, "bank_unverified"
    return accreditation, ""


def _chunks(counts: list[tuple[int, int]]) -> Iterator[list[int]]:
    """Group ``(provider id, unsettled redemptions)`` in order into the batch's transactions."""
    size = max(1, min(CHUNK_PROVIDERS, -(-len(counts) // MIN_CHUNKS)))
    chunk: list[int] = []
    rows = 0
    for provider_id, count in counts:
        if chunk and (len(chunk) >= size or rows + count > CHUNK_REDEMPTIONS):
            yield chunk
            chunk, rows = [], 0
        chunk.append(provider_id)
        rows += count
    if chunk:
        yield chunk


def _assign_postgresql(payouts: list[Payout], period_end: date) -> None:
    """One statement: each payout gets its provider's unsettled redemptions, then their sum.

    The UPDATE's RETURNING rows are what was actually assigned, so the amount and count are those
    of the payout's redemptions, as a second aggregate would find them. The rows are found with
    ``provider_id = ANY(…)`` (a bitmap scan, so the table is visited in its physical order) and
    each gets its payout by its provider's position in the chunk.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH assigned AS (
                UPDATE {Redemption._meta.db_table}
                SET payout_id = (%(payouts)s::bigint[])[array_position(%(providers)s::bigint[],
                    provider_id)]
                WHERE provider_id = ANY(%(providers)s::bigint[]) AND payout_id IS NULL
                    AND status = %(status)s AND created_at < %(cutoff)s
                RETURNING payout_id, amount_cents
            ), totals AS (
                SELECT payout_id, sum(amount_cents) AS amount, count(*) AS n
                FROM assigned GROUP BY payout_id
            )
            UPDATE {Payout._meta.db_table} AS p SET amount_cents = totals.amount,
                redemption_count = totals.n
            FROM totals WHERE p.id = totals.payout_id
            """,  # noqa: S608 - table names from the models, values as parameters
            {
                "payouts": [payout.pk for payout in payouts],
                "providers": [payout.provider_id for payout in payouts],
                "status": RedemptionStatus.ACTIVE,
                "cutoff": _cutoff(period_end),
            },
        )
        # Each assigned redemption has its foreign key to the payout checked at commit. While the
        # payout table is small (the first batches), PostgreSQL plans that check as a sequential
        # scan and keeps the plan for the session, so every check then reads the whole, growing
        # table (79 % of the database's time at 1 M redemptions, profiled). Planned from here on
        # in this transaction, the check stays an index lookup.
        cursor.execute("SET LOCAL enable_seqscan = off")


def _settle_chunk(batch: SettlementBatch, providers: list[Organisation]) -> None:
    """Some providers' parts, in one transaction: for each, a payout or a hold with the reason."""
    with transaction.atomic():
        ids = [provider.pk for provider in providers]
        done = set(
            Payout.objects.filter(batch=batch, provider_id__in=ids).values_list(
                "provider_id", flat=True
            )
        ) | set(
            HeldProvider.objects.filter(batch=batch, provider_id__in=ids).values_list(
                "provider_id", flat=True
            )
        )  # done by an earlier run of this computation
        todo = [provider for provider in providers if provider.pk not in done]
        if not todo:
            return
        unsettled = _unsettled(batch.period_end)
        totals = {
            row["provider_id"]: row
            for row in unsettled.filter(provider_id__in=[provider.pk for provider in todo])
            .order_by()
            .values("provider_id")
            .annotate(amount=Sum("amount_cents"), count=Count("id"))
        }
        accreditations = {
            accreditation.organisation_id: accreditation
            for accreditation in Accreditation.objects.filter(
                organisation_id__in=[provider.pk for provider in todo]
            )
        }
        held: list[HeldProvider] = []
        payouts: list[Payout] = []
        for provider in todo:
            provider_totals = totals.get(provider.pk)
            if provider_totals is None:
                continue  # nothing left to settle
            accreditation, reason = _payable(accreditations.get(provider.pk), timezone.localdate())
            if accreditation is None:
                held.append(
                    HeldProvider(
                        batch=batch,
                        provider=provider,
                        reason=reason,
                        amount_cents=provider_totals["amount"],
                        redemption_count=provider_totals["count"],
                    )
                )
                continue
            payouts.append(
                Payout(
                    batch=batch,
                    provider=provider,
                    iban=accreditation.iban,
                    bic=accreditation.bic,
                    account_holder=accreditation.account_holder or provider.name,
                    end_to_end_id=f"APTIC-{batch.pk}-{provider.pk}",
                )
            )
        HeldProvider.objects.bulk_create(held)
        if connection.vendor == "postgresql":
            Payout.objects.bulk_create(payouts)
            if payouts:
                _assign_postgresql(payouts, batch.period_end)
            return
        for payout in payouts:
            payout.save(force_insert=True)
            count = unsettled.filter(provider_id=payout.provider_id).update(payout=payout)
            amount = Redemption.objects.filter(payout=payout).aggregate(v=Sum("amount_cents"))["v"]
            Payout.objects.filter(pk=payout.pk).update(
                amount_cents=amount or 0, redemption_count=count
            )


def batch_compute(*, batch_id: int, after_provider=None) -> SettlementBatch:
    """Compute a batch: idempotent and resumable (chunks of providers, a transaction each).

    ``after_provider`` is a hook called after each provider, once its part is committed (tests
    inject a failure there). Totals are re-checked against the redemptions before the batch leaves
    ``computing``.
    """
    batch = SettlementBatch.objects.get(pk=batch_id)
    if batch.status != BatchStatus.COMPUTING:
        return batch
    counts = list(
        _unsettled(batch.period_end)
        .order_by("provider_id")
        .values("provider_id")
        .annotate(count=Count("id"))
        .values_list("provider_id", "count")
    )
    pause = settings.SETTLEMENT_TEST_PAUSE_SECONDS
    for chunk in _chunks(counts):
        providers = list(Organisation.objects.filter(pk__in=chunk).order_by("pk"))
        _settle_chunk(batch, providers)
        for provider in providers:
            if after_provider is not None:
                after_provider(provider)
            if pause > 0:
                sleep(pause)  # test-only: lets a test kill a worker halfway
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
    if not batch.payouts.filter(status=PayoutStatus.PENDING, amount_cents__gt=0).exists():
        raise Conflict(
            _("Ce lot ne contient aucun virement à effectuer."), code="nothing_to_transfer"
        )
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
    if paid_on > timezone.localdate():
        raise ValidationFailed(
            _("La date de paiement ne peut pas être dans le futur."),
            field="paid_on",
            code="invalid_date",
        )
    _transition(batch, BatchStatus.PAID, paid_at=timezone.now(), paid_on=paid_on)
    Payout.objects.filter(batch=batch, status=PayoutStatus.PENDING).update(status=PayoutStatus.PAID)
    ledger_record_payout_paid(batch=batch)
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
    batch_status = SettlementBatch.objects.filter(pk=payout.batch_id).values_list(
        "status", flat=True
    )
    if batch_status.get() not in (BatchStatus.EXPORTED, BatchStatus.PAID):
        # Before export nothing was sent to the bank: there is nothing it could reject.
        raise Conflict(
            _("Un virement ne peut être rejeté qu'une fois le fichier SEPA exporté."),
            code="batch_state_conflict",
        )
    if (
        Payout.objects.filter(pk=payout.pk)
        .exclude(status=PayoutStatus.REJECTED)
        .update(
            status=PayoutStatus.REJECTED, rejected_at=timezone.now(), rejection_reason=reason[:200]
        )
        != 1
    ):
        raise Conflict(_("Ce virement est déjà rejeté."), code="already_rejected")
    # Gives back what the payout took from the funders' accounts if it was already paid.
    ledger_record_payout_reversed(payout=payout)
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
