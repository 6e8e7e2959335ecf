"""Reads about provider accreditation: the application's steps, the review queue, documents.

Objects are fetched through ``Accreditation.objects.visible_to`` (a provider sees its own
application, operators see all); anything else answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from django.db.models import Count, F, Prefetch, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import (
    Accreditation,
    AccreditationDocument,
    AccreditationSite,
    AccreditationStatus,
    DocumentKind,
    Membership,
    Organisation,
    ServiceCategory,
)

if TYPE_CHECKING:
    from django.db.models import QuerySet

# The application, step by step, in the order the provider fills it in. The five "form" steps
# save model fields; "sites" and "documents" are lists of their own.
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "applicant": ("applicant_name", "applicant_email", "applicant_phone"),
    "organisation": ("legal_name", "siret", "legal_form"),
    "representative": ("legal_rep_name", "legal_rep_title"),
    "bank": ("iban", "bic", "account_holder"),
    "charter": ("charter", "terms"),
}
STEPS: tuple[str, ...] = (
    "applicant",
    "organisation",
    "representative",
    "sites",
    "documents",
    "bank",
    "charter",
)
STEP_LABELS = {
    "applicant": gettext_lazy("Vos coordonnées"),
    "organisation": gettext_lazy("Votre structure"),
    "representative": gettext_lazy("Représentant légal"),
    "sites": gettext_lazy("Lieux et services"),
    "documents": gettext_lazy("Pièces justificatives"),
    "bank": gettext_lazy("Coordonnées bancaires"),
    "charter": gettext_lazy("Charte et conditions"),
}
# Documents an application cannot be sent without.
REQUIRED_DOCUMENTS = (DocumentKind.KBIS,)
# Where the bank details can still be changed by the provider (see accreditation_bank_update).
BANK_UPDATABLE = (
    AccreditationStatus.DRAFT,
    AccreditationStatus.CHANGES_REQUESTED,
    AccreditationStatus.APPROVED,
    AccreditationStatus.SUSPENDED,
    AccreditationStatus.EXPIRED,
)
PENDING = (AccreditationStatus.SUBMITTED, AccreditationStatus.IN_REVIEW)


@dataclass(frozen=True)
class MissingItem:
    """Something the application lacks before it can be sent: its step and a French sentence."""

    step: str
    message: str


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    done: bool
    missing: list[str]


def accreditation_missing(accreditation: Accreditation) -> list[MissingItem]:
    """What still prevents sending the application, step by step (empty when complete)."""
    missing: list[MissingItem] = []
    a = accreditation
    if not (a.applicant_name and a.applicant_email and a.applicant_phone):
        missing.append(
            MissingItem("applicant", _("Vos coordonnées : nom, adresse e-mail et téléphone."))
        )
    if not (a.legal_name and a.siret and a.legal_form):
        missing.append(
            MissingItem(
                "organisation", _("Votre structure : raison sociale, SIRET et forme juridique.")
            )
        )
    if not (a.legal_rep_name and a.legal_rep_title):
        missing.append(
            MissingItem("representative", _("Le représentant légal : son nom et sa qualité."))
        )
    sites = list(
        a.sites.filter(is_active=True).prefetch_related(
            Prefetch("services", queryset=ServiceCategory.objects.filter(is_active=True))
        )
    )
    if not sites:
        missing.append(MissingItem("sites", _("Au moins un lieu d'accueil des bénéficiaires.")))
    for site in sites:
        if not site.services.all():
            missing.append(
                MissingItem(
                    "sites",
                    _("Le lieu « %(name)s » ne propose encore aucun service.")
                    % {"name": site.name},
                )
            )
    kinds = set(a.documents.values_list("kind", flat=True))
    for kind in REQUIRED_DOCUMENTS:
        if kind not in kinds:
            missing.append(
                MissingItem(
                    "documents",
                    _("La pièce « %(kind)s ».") % {"kind": DocumentKind(kind).label},
                )
            )
    if not (a.iban and a.bic and a.account_holder):
        missing.append(
            MissingItem("bank", _("Les coordonnées bancaires : IBAN, BIC et titulaire du compte."))
        )
    if not (a.charter_accepted_at and a.terms_accepted_at):
        missing.append(
            MissingItem("charter", _("L'acceptation de la charte et des conditions d'utilisation."))
        )
    return missing


def accreditation_steps(accreditation: Accreditation) -> list[Step]:
    """Each step of the application with done / to do and what it lacks."""
    missing = accreditation_missing(accreditation)
    return [
        Step(
            key=key,
            label=str(STEP_LABELS[key]),
            done=not any(item.step == key for item in missing),
            missing=[item.message for item in missing if item.step == key],
        )
        for key in STEPS
    ]


def accreditation_of_organisation(*, membership: Membership) -> Accreditation | None:
    """The application of the caller's own organisation, if it has started one."""
    return (
        Accreditation.objects.visible_to(membership)
        .filter(organisation_id=membership.organisation_id)
        .select_related("organisation", "reviewed_by", "bank_verified_by")
        .first()
    )


def accreditation_get(*, membership: Membership, pk: int) -> Accreditation:
    return get_object_or_404(
        Accreditation.objects.visible_to(membership).select_related(
            "organisation", "reviewed_by", "bank_verified_by"
        ),
        pk=pk,
    )


def accreditation_queue(
    *, membership: Membership, status: str = "", departement: str = "", search: str = ""
) -> QuerySet[Accreditation]:
    """Applications for review: ``status`` "" means waiting for a decision, "all" everything.

    ``departement`` matches the organisation's or any of its sites'; ``search`` a name or SIRET.
    """
    accreditations = Accreditation.objects.visible_to(membership).select_related("organisation")
    if status == "all":
        pass
    elif status in AccreditationStatus.values:
        accreditations = accreditations.filter(status=status)
    else:
        accreditations = accreditations.filter(status__in=PENDING)
    if departement:
        departement = departement.strip().upper()
        accreditations = accreditations.filter(
            Q(organisation__departement=departement)
            | Q(
                pk__in=AccreditationSite.objects.filter(departement=departement).values(
                    "accreditation_id"
                )
            )
        )
    search = (search or "").strip()
    if search:
        digits = search.replace(" ", "")
        query = Q(legal_name__icontains=search) | Q(organisation__name__icontains=search)
        if digits.isdigit():
            query |= Q(siret__contains=digits) | Q(organisation__siret__contains=digits)
        accreditations = accreditations.filter(query)
    return accreditations.annotate(site_count=Count("sites", distinct=True)).order_by(
        F("submitted_at").asc(nulls_last=True), "pk"
    )


def accreditation_sites(*, accreditation: Accreditation) -> QuerySet[AccreditationSite]:
    return accreditation.sites.order_by("name", "pk").prefetch_related(
        Prefetch("services", queryset=ServiceCategory.objects.order_by("name"))
    )


def accreditation_site_get(*, membership: Membership, pk: int) -> AccreditationSite:
    """A site of the caller's own application (the provider edits only its own), else 404."""
    return get_object_or_404(
        AccreditationSite.objects.filter(
            accreditation__in=Accreditation.objects.visible_to(membership).filter(
                organisation_id=membership.organisation_id
            )
        ).select_related("accreditation"),
        pk=pk,
    )


def accreditation_documents(*, accreditation: Accreditation) -> QuerySet[AccreditationDocument]:
    return accreditation.documents.select_related("uploaded_by").order_by("uploaded_at", "pk")


def accreditation_document_get(*, membership: Membership, pk: int) -> AccreditationDocument:
    """A document of an application the caller may see (its provider, operators), else 404."""
    return get_object_or_404(
        AccreditationDocument.objects.filter(
            accreditation__in=Accreditation.objects.visible_to(membership)
        ).select_related("accreditation"),
        pk=pk,
    )


def service_choices() -> QuerySet[ServiceCategory]:
    """The catalogue entries a site can offer."""
    return ServiceCategory.objects.filter(is_active=True).order_by("name")


def provider_is_accredited(organisation: Organisation, day: date | None = None) -> bool:
    """True when the organisation's accreditation is approved and still valid on ``day``."""
    day = day or timezone.localdate()
    return Accreditation.objects.valid_on(day).filter(organisation=organisation).exists()
