"""Celery tasks of the redemption app: thin, idempotent wrappers around services (ids only)."""

from __future__ import annotations

from celery import shared_task

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_kwargs": {"max_retries": 5}}


@shared_task(acks_late=True, **RETRY)
def create_monthly_batch() -> int | None:
    """Monthly: the batch of the redemptions up to the end of the previous month (None: none)."""
    from aptic.errors import ValidationFailed
    from orgs.audit import Actor

    from .models import SettlementBatch
    from .services.settlement import batch_create, previous_month_end

    existing = SettlementBatch.objects.filter(period_end=previous_month_end()).first()
    if existing is not None:
        return existing.pk
    try:
        return batch_create(actor=Actor.system()).pk
    except ValidationFailed as refused:
        if refused.code == "nothing_to_settle":
            return None  # a month without redemptions: no batch to approve
        raise


@shared_task(acks_late=True, **RETRY)
def compute_batch(batch_id: int) -> None:
    from .services.settlement import batch_compute

    batch_compute(batch_id=batch_id)


@shared_task(acks_late=True, **RETRY)
def render_statement(payout_id: int) -> None:
    from .services.statements import payout_statement_render

    payout_statement_render(payout_id=payout_id)
