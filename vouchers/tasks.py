"""Celery tasks of the vouchers app: thin, idempotent wrappers around services (ids only)."""

from __future__ import annotations

from celery import shared_task

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_kwargs": {"max_retries": 5}}


@shared_task(acks_late=True, **RETRY)
def issue_order(order_id: int) -> bool:
    from .services.issuance import order_issue

    return order_issue(order_id=order_id)


@shared_task(acks_late=True, **RETRY)
def start_printing(order_id: int) -> None:
    from .services.printing import print_run_start

    print_run_start(order_id=order_id)


@shared_task(acks_late=True, **RETRY)
def print_chunk(chunk_id: int) -> None:
    from .services.printing import print_chunk_render

    print_chunk_render(chunk_id=chunk_id)


@shared_task(acks_late=True, **RETRY)
def finish_printing(run_id: int) -> None:
    from .services.printing import print_run_finish

    print_run_finish(run_id=run_id)


@shared_task(acks_late=True, **RETRY)
def expire_cheques() -> int:
    """Daily: cheques past their validity become ``expired`` (one bulk UPDATE, idempotent)."""
    from .services.distribution import cheques_expire

    return cheques_expire()


@shared_task(acks_late=True, **RETRY)
def warn_expiring_booklets() -> int:
    """Daily: e-mail the holders of unused booklets 30 and 7 days before they expire."""
    from .services.reminders import booklets_expiry_warn

    return booklets_expiry_warn()


@shared_task(acks_late=True, **RETRY)
def close_ended_programmes() -> list[int]:
    """Daily: close the fixed-end programmes past their end, issuing each one's credit note.

    Idempotent: a programme is closed once (a second run finds its credit note). A programme
    that cannot be closed yet (e.g. an order still being issued) is retried the next day.
    """
    import logging

    from aptic.errors import DomainError

    from .services.ledger import programme_close, programmes_to_close

    closed = []
    for programme_id in programmes_to_close():
        try:
            credit_note = programme_close(programme_id=programme_id)
        except DomainError as exc:
            logging.getLogger(__name__).warning(
                "Programme %s not closed: %s", programme_id, exc.code
            )
            continue
        if credit_note is not None:
            closed.append(programme_id)
    return closed
