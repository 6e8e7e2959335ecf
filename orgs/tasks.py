"""Celery tasks of the orgs app: thin wrappers, retried on transient failures."""

from __future__ import annotations

from celery import shared_task
from django.core.mail import EmailMultiAlternatives


@shared_task(
    autoretry_for=(OSError,), retry_backoff=True, retry_kwargs={"max_retries": 5}, acks_late=True
)
def send_email(*, to: list[str], subject: str, body: str, html: str | None = None) -> None:
    message = EmailMultiAlternatives(subject=subject, body=body, to=to)
    if html:
        message.attach_alternative(html, "text/html")
    message.send()


@shared_task(
    autoretry_for=(Exception,), retry_backoff=True, retry_kwargs={"max_retries": 5}, acks_late=True
)
def expire_accreditations() -> int:
    """Daily: approved accreditations past their end date become ``expired`` (idempotent)."""
    from .services_accreditation import accreditations_expire  # services import this module

    return accreditations_expire()
