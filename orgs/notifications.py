"""E-mails sent to people, and the log of what was sent to each organisation.

Every e-mail is one of ``templates/emails/<name>.txt`` (with ``<name>.subject.txt``); each extends
``emails/base.txt`` (greeting, body block, signature, footer with the site's address). The HTML
part is ``emails/<name>.html`` when it exists, else the body laid out in ``emails/base.html``.
Each recipient gets their own message in their language (``User.language``, else the language
given, else the site's default), and one :class:`~orgs.models.Notification` row written in the
transaction of the change that causes it: a rolled-back change logs nothing and sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy

from .audit import Actor, audit_record
from .models import Notification, NotificationStatus, Organisation, User
from .tasks import send_email

# Every e-mail the system sends, as shown on the « Messages envoyés » page.
EMAIL_KINDS = {
    "order_submitted": gettext_lazy("Commande transmise"),
    "order_approved": gettext_lazy("Commande validée"),
    "order_rejected": gettext_lazy("Commande refusée"),
    "order_cancelled": gettext_lazy("Commande annulée"),
    "order_printed": gettext_lazy("Chéquiers prêts à imprimer"),
    "booklets_allocated": gettext_lazy("Chéquiers confiés"),
    "booklets_expiring": gettext_lazy("Chéquiers bientôt périmés"),
    "credit_note": gettext_lazy("Avoir"),
    "statement_ready": gettext_lazy("Relevé de remboursement"),
    "accreditation_submitted": gettext_lazy("Qualification : demande à examiner"),
    "accreditation_received": gettext_lazy("Qualification : demande envoyée"),
    "accreditation_approved": gettext_lazy("Qualification accordée"),
    "accreditation_changes_requested": gettext_lazy("Qualification : compléments demandés"),
    "accreditation_rejected": gettext_lazy("Qualification refusée"),
    "accreditation_suspended": gettext_lazy("Qualification suspendue"),
    "accreditation_reinstated": gettext_lazy("Qualification rétablie"),
    "accreditation_renewed": gettext_lazy("Qualification renouvelée"),
    "accreditation_expired": gettext_lazy("Qualification expirée"),
    "accreditation_bank_changed": gettext_lazy("Coordonnées bancaires modifiées"),
    "accreditation_bank_to_verify": gettext_lazy("Coordonnées bancaires à vérifier"),
    "accreditation_bank_verified": gettext_lazy("Coordonnées bancaires vérifiées"),
    "invitation": gettext_lazy("Invitation"),
    "password_reset": gettext_lazy("Nouveau mot de passe"),
}


def render_email(template: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, plain-text body and HTML body of one e-mail, in the active language."""
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{template}.subject.txt", context).split())
    body = render_to_string(f"emails/{template}.txt", context)
    try:
        html = render_to_string(f"emails/{template}.html", context)
    except TemplateDoesNotExist:
        content = render_to_string(f"emails/{template}.txt", {**context, "body_only": True})
        html = render_to_string(
            "emails/base.html", {**context, "subject": subject, "content": content.strip()}
        )
    return subject, body, html


def _language_of(recipients: Iterable[str]) -> dict[str, str]:
    return {
        email.lower(): language
        for email, language in User.objects.filter(
            email__in=[r.lower() for r in recipients], is_active=True
        ).values_list("email", "language")
        if language
    }


def email_on_commit(
    *,
    to: list[str],
    template: str,
    context: dict[str, Any],
    organisation: Organisation | None,
    language: str | None = None,
    secrets: Iterable[str] = (),
    send_now: bool = False,
) -> list[Notification]:
    """Log one message per recipient now, and send it once the surrounding transaction commits.

    ``organisation`` is whose "Messages envoyés" page shows the message (None: operators only).
    ``secrets`` names context values (personal links) that are sent but masked in the log.
    ``send_now`` queues the e-mail at once instead (:func:`email_now`).
    """
    languages = _language_of(to)
    fallback = language or settings.LANGUAGE_CODE
    rendered: dict[str, tuple[str, str, str, str]] = {}
    logged: list[Notification] = []
    for recipient in dict.fromkeys(to):
        lang = languages.get(recipient.lower(), fallback)
        if lang not in rendered:
            with translation.override(lang):
                subject, body, html = render_email(template, context)
                masked = {key: gettext("[lien personnel masqué]") for key in secrets}
                log_body = render_email(template, {**context, **masked})[1] if masked else body
            rendered[lang] = (subject, body, html, log_body)
        subject, body, html, log_body = rendered[lang]
        notification = Notification.objects.create(
            organisation=organisation,
            recipient=recipient,
            language=lang,
            template=template,
            subject=subject[:300],
            body=log_body,
        )
        logged.append(notification)
        queue = partial(
            send_email.delay,
            notification_id=notification.pk,
            to=[recipient],
            subject=subject,
            body=body,
            html=html,
        )
        if send_now:
            queue()
        else:
            transaction.on_commit(queue)
    return logged


def email_now(
    *,
    to: list[str],
    template: str,
    context: dict[str, Any],
    organisation: Organisation | None,
    language: str | None = None,
    secrets: Iterable[str] = (),
) -> list[Notification]:
    """Log and send at once: for e-mails that answer a request and change nothing (a reset link)."""
    return email_on_commit(
        to=to,
        template=template,
        context=context,
        organisation=organisation,
        language=language,
        secrets=secrets,
        send_now=True,
    )


@transaction.atomic
def notification_mark_sent(*, notification_id: int) -> bool:
    """``queued`` → ``sent`` by compare-and-set; False when it was already marked."""
    return bool(
        Notification.objects.filter(pk=notification_id, status=NotificationStatus.QUEUED).update(
            status=NotificationStatus.SENT, sent_at=timezone.now()
        )
    )


@transaction.atomic
def notification_mark_failed(*, notification_id: int, error: str) -> bool:
    """``queued`` → ``failed`` by compare-and-set, with the reason and an audit event.

    Returns False when it was already marked. Sent messages need no audit event of their own:
    the log row is the record.
    """
    notification = (
        Notification.objects.select_related("organisation").filter(pk=notification_id).first()
    )
    updated = Notification.objects.filter(
        pk=notification_id, status=NotificationStatus.QUEUED
    ).update(status=NotificationStatus.FAILED, error=error[:300])
    if updated and notification is not None:
        audit_record(
            actor=Actor.system(),
            action="orgs.notification.failed",
            target=notification,
            organisation=notification.organisation,
            data={"template": notification.template, "error": error[:300]},
        )
    return bool(updated)
