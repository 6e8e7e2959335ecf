"""E-mails sent to people: rendered from ``templates/emails/<name>.txt`` (and ``.html``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import translation

from .tasks import send_email


def render_email(template: str, context: dict[str, Any]) -> tuple[str, str, str | None]:
    context = {"site_url": settings.SITE_URL, **context}
    subject = render_to_string(f"emails/{template}.subject.txt", context).strip()
    body = render_to_string(f"emails/{template}.txt", context)
    try:
        html = render_to_string(f"emails/{template}.html", context)
    except TemplateDoesNotExist:
        html = None
    return " ".join(subject.split()), body, html


def email_on_commit(
    *, to: list[str], template: str, context: dict[str, Any], language: str | None = None
) -> None:
    """Queue an e-mail once the surrounding transaction commits (never for a rolled-back change)."""
    with translation.override(language or settings.LANGUAGE_CODE):
        subject, body, html = render_email(template, context)
    transaction.on_commit(lambda: send_email.delay(to=to, subject=subject, body=body, html=html))
