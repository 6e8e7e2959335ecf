"""Columns of the organisations lists' CSV and XLSX exports (audit log, members, accreditation
queue). The rows come from the same selectors as the pages."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from aptic.exports import Column, field_choices

from .models import Accreditation, Membership, Notification
from .notifications import EMAIL_KINDS
from .templatetags.ui import audit_details


def _audit_details(event) -> str:
    return " ; ".join(f"{key} : {value}" for key, value in audit_details(event.data))


def audit_columns(*, with_organisation: bool) -> list[Column]:
    return [
        Column(_("Date"), "created_at", "datetime"),
        Column(_("Personne"), lambda event: event.actor.email if event.actor else _("système")),
        *([Column(_("Organisation"), "organisation.name")] if with_organisation else []),
        Column(_("Action"), "action"),
        Column(_("Objet"), "target_label"),
        Column(_("Détails"), _audit_details),
        Column(_("IP"), "ip"),
    ]


MEMBER_COLUMNS = [
    Column(_("Nom"), lambda member: member.user.get_full_name()),
    Column(_("E-mail"), "user.email"),
    Column(_("Rôle"), "role", choices=field_choices(Membership, "role")),
    Column(_("Depuis"), "created_at", "date"),
]

ORGANISATION_COLUMNS = [
    Column(_("Nom"), "name"),
    Column(_("Rôles"), lambda organisation: ", ".join(organisation.role_labels())),
    Column(_("SIRET"), "siret"),
    Column(_("Code postal"), "postcode"),
    Column(_("Commune"), "city"),
    Column(_("Département"), "departement"),
]


def notification_columns(*, with_organisation: bool) -> list[Column]:
    return [
        Column(_("Date"), "created_at", "datetime"),
        *([Column(_("Organisation"), "organisation.name")] if with_organisation else []),
        Column(_("Destinataire"), "recipient"),
        Column(_("Type"), "template", choices=list(EMAIL_KINDS.items())),
        Column(_("Objet"), "subject"),
        Column(_("État"), "status", choices=field_choices(Notification, "status")),
    ]


ACCREDITATION_COLUMNS = [
    Column(_("Structure"), lambda acc: acc.legal_name or acc.organisation.name),
    Column(_("Organisation"), "organisation.name"),
    Column(_("SIRET"), "siret"),
    Column(_("Dép."), "organisation.departement"),
    Column(_("Lieux"), "site_count", "int"),
    Column(_("État"), "status", choices=field_choices(Accreditation, "status")),
    Column(_("Envoyée le"), "submitted_at", "date"),
    Column(_("Qualifié jusqu'au"), "valid_until", "date"),
]
