"""Checks on identifiers, shared by forms, serializers and services."""

from __future__ import annotations

import re

from django.utils.translation import gettext as _
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import siret as stdnum_siret

from aptic.errors import ValidationFailed


def clean_siret(value: str) -> str:
    """Return the 14-digit SIRET, or raise ``invalid_siret`` (format or Luhn key)."""
    try:
        return stdnum_siret.validate(value or "")
    except StdnumError as exc:
        raise ValidationFailed(
            _("Ce numéro SIRET n'est pas valide (14 chiffres, clé de contrôle)."),
            field="siret",
            code="invalid_siret",
        ) from exc


_POSTCODE = re.compile(r"^[0-9]{5}$")
_DEPARTEMENT = re.compile(r"^(0[1-9]|1[0-9]|2[1-9]|[3-8][0-9]|9[0-5]|2A|2B|97[1-6])$")


def clean_postcode(value: str) -> str:
    value = (value or "").strip().replace(" ", "")
    if not _POSTCODE.match(value):
        raise ValidationFailed(
            _("Le code postal doit comporter 5 chiffres."),
            field="postcode",
            code="invalid_postcode",
        )
    return value


def clean_departement(value: str) -> str:
    value = (value or "").strip().upper()
    if not _DEPARTEMENT.match(value):
        raise ValidationFailed(
            _("Numéro de département inconnu (par exemple 33, 2A ou 974)."),
            field="departement",
            code="invalid_departement",
        )
    return value
