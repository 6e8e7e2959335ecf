"""Celery tasks of the orgs app: thin wrappers, retried on transient failures."""

from __future__ import annotations

from celery import shared_task
from django.core.mail import EmailMultiAlternatives


@shared_task(bind=True, max_retries=5, acks_late=True)
def send_email(
    self,
    *,
    to: list[str],
    subject: str,
    body: str,
    html: str | None = None,
    notification_id: int | None = None,
) -> None:
    """Send one logged e-mail; mark its log row sent, or failed once the retries are spent."""
    from . import notifications  # it imports this module

    message = EmailMultiAlternatives(subject=subject, body=body, to=to)
    if html:
        message.attach_alternative(html, "text/html")
    try:
        message.send()
    except OSError as exc:  # SMTP errors and unreachable servers are transient until retried
        if self.request.retries >= self.max_retries:
            if notification_id is not None:
                notifications.notification_mark_failed(
                    notification_id=notification_id, error=str(exc) or type(exc).__name__
                )
            raise
        raise self.retry(exc=exc, countdown=30 * 2**self.request.retries) from exc
    if notification_id is not None:
        notifications.notification_mark_sent(notification_id=notification_id)


@shared_task(
    autoretry_for=(Exception,), retry_backoff=True, retry_kwargs={"max_retries": 5}, acks_late=True
)
def expire_accreditations() -> int:
    """Daily: approved accreditations past their end date become ``expired`` (idempotent)."""
    from .services_accreditation import accreditations_expire  # services import this module

    return accreditations_expire()
