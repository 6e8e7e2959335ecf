"""Programmes and the service catalogue, managed by the operator."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from aptic.errors import ValidationFailed
from orgs.audit import Actor, audit_record
from orgs.models import Organisation
from orgs.permissions import require
from orgs.validators import clean_departement

from ..models import Programme, ServiceCategory, ValidityKind

PROGRAMME_FIELDS = (
    "name",
    "cheque_value_cents",
    "offers_booklet_of_5",
    "offers_booklet_of_10",
    "validity_kind",
    "valid_until",
    "tolerance_days",
    "validity_months",
    "departements",
    "fee_rate_bp",
    "unused_value_policy",
    "max_booklets_per_beneficiary",
    "limit_period_days",
    "max_booklets_per_order",
    "is_active",
)


def _clean_programme(data: dict[str, Any], funder: Organisation) -> dict[str, Any]:
    if not funder.is_funder:
        raise ValidationFailed(
            _("Cette organisation n'est pas commanditaire."), field="funder", code="not_a_funder"
        )
    if not (data.get("name") or "").strip():
        raise ValidationFailed(_("Le nom est obligatoire."), field="name", code="required")
    if not (data.get("offers_booklet_of_5") or data.get("offers_booklet_of_10")):
        raise ValidationFailed(
            _("Proposez au moins une taille de chéquier."),
            field="offers_booklet_of_10",
            code="size_required",
        )
    if (data.get("cheque_value_cents") or 0) <= 0:
        raise ValidationFailed(
            _("La valeur d'un chèque doit être positive."),
            field="cheque_value_cents",
            code="invalid_value",
        )
    if data.get("validity_kind") == ValidityKind.FIXED_DATE:
        if not isinstance(data.get("valid_until"), date):
            raise ValidationFailed(
                _("Indiquez la date de fin de validité."), field="valid_until", code="required"
            )
        data["validity_months"] = None
    elif data.get("validity_kind") == ValidityKind.MONTHS_FROM_HANDOVER:
        if not data.get("validity_months"):
            raise ValidationFailed(
                _("Indiquez le nombre de mois de validité."),
                field="validity_months",
                code="required",
            )
        data["valid_until"] = None
    else:
        raise ValidationFailed(_("Type de validité inconnu."), field="validity_kind")
    if (data.get("fee_rate_bp") or 0) > 10000:
        raise ValidationFailed(
            _("Les frais ne peuvent dépasser 100 %."), field="fee_rate_bp", code="invalid_fee"
        )
    data["departements"] = sorted({clean_departement(d) for d in data.get("departements") or []})
    return data


@transaction.atomic
def programme_create(
    *, actor: Actor, funder: Organisation, categories: Iterable[ServiceCategory], **fields: Any
) -> Programme:
    """Create a programme for a funder (operator admins)."""
    require(actor.membership, "programmes:manage")
    data = _clean_programme({k: fields.get(k) for k in PROGRAMME_FIELDS if k in fields}, funder)
    programme = Programme.objects.create(funder=funder, **data)
    programme.categories.set(categories)
    audit_record(
        actor=actor,
        action="vouchers.programme.created",
        target=programme,
        organisation=funder,
        data={"after": {**data, "categories": [c.slug for c in programme.categories.all()]}},
    )
    return programme


@transaction.atomic
def programme_update(
    *, actor: Actor, programme: Programme, categories: Iterable[ServiceCategory], **fields: Any
) -> Programme:
    require(actor.membership, "programmes:manage")
    programme = Programme.objects.select_for_update().get(pk=programme.pk)
    before = {k: getattr(programme, k) for k in PROGRAMME_FIELDS}
    before["categories"] = sorted(programme.categories.values_list("slug", flat=True))
    data = _clean_programme(
        {k: fields.get(k, getattr(programme, k)) for k in PROGRAMME_FIELDS}, programme.funder
    )
    for key, value in data.items():
        setattr(programme, key, value)
    programme.save()
    programme.categories.set(categories)
    after = {**data, "categories": sorted(programme.categories.values_list("slug", flat=True))}
    changed = {k for k in after if before.get(k) != after[k]}
    audit_record(
        actor=actor,
        action="vouchers.programme.updated",
        target=programme,
        organisation=programme.funder,
        data={"before": {k: before[k] for k in changed}, "after": {k: after[k] for k in changed}},
    )
    return programme


@transaction.atomic
def service_category_save(
    *,
    actor: Actor,
    name: str,
    description: str = "",
    is_active: bool = True,
    category: ServiceCategory | None = None,
) -> ServiceCategory:
    """Create or edit an entry of the service catalogue."""
    require(actor.membership, "programmes:manage")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Le nom est obligatoire."), field="name", code="required")
    clash = ServiceCategory.objects.filter(name__iexact=name)
    if category is not None:
        clash = clash.exclude(pk=category.pk)
    if clash.exists():
        raise ValidationFailed(
            _("Ce service existe déjà dans le catalogue."), field="name", code="duplicate"
        )
    before = None
    if category is None:
        base = slugify(name)[:70] or "service"
        slug, n = base, 2
        while ServiceCategory.objects.filter(slug=slug).exists():
            slug, n = f"{base}-{n}", n + 1
        category = ServiceCategory(slug=slug)
    else:
        before = {"name": category.name, "is_active": category.is_active}
    category.name, category.description, category.is_active = name, description, is_active
    category.save()
    audit_record(
        actor=actor,
        action="vouchers.service.updated" if before else "vouchers.service.created",
        target=category,
        data={"before": before, "after": {"name": name, "is_active": is_active}},
    )
    return category
