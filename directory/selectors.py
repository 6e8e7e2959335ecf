"""The public directory: accredited places, found by postcode, département and service.

Candidates are exactly the places that take cheques today (``orgs.selectors_geo``: approved,
active sites of approved accreditations still valid, so never a suspended, expired or pending
provider). With a postcode they are ranked nearest first by the same rule as the receipt.
"""

from __future__ import annotations

from orgs.models import AccreditationSite, ServiceCategory
from orgs.selectors_geo import NearbyProvider, provider_candidates, rank_by_distance


def directory_services() -> list[ServiceCategory]:
    """The catalogue services a visitor may filter on."""
    return list(ServiceCategory.objects.filter(is_active=True).order_by("name"))


def directory_search(
    *, postcode: str = "", departement: str = "", service: str = ""
) -> list[NearbyProvider]:
    """Every place that takes cheques matching the filters, nearest ``postcode`` first.

    Without a postcode: by département, town and name. ``service`` is a catalogue slug.
    """
    candidates = provider_candidates(departements=[departement] if departement else None)
    if service:
        offering = set(
            AccreditationSite.objects.filter(
                services__slug=service, services__is_active=True
            ).values_list("pk", flat=True)
        )
        candidates = [c for c in candidates if c.pk in offering]
    if postcode:
        return rank_by_distance(postcode=postcode, candidates=candidates, limit=len(candidates))
    candidates.sort(key=lambda c: (c.departement, c.city.casefold(), c.name.casefold(), c.pk))
    return [NearbyProvider.of(c) for c in candidates]
