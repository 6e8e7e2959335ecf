"""« Où utiliser mes chèques ? »: the public directory of accredited places.

Anyone may search it, without an account; it lists only places that take cheques today, nearest
first from a postcode, and says in French what is wrong with a bad search.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from io import BytesIO

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from orgs.models import Accreditation, AccreditationSite, AccreditationStatus, ServiceCategory
from tests.factories import MembershipFactory, OrganisationFactory, accredited_provider

pytestmark = pytest.mark.django_db

URL = "/ou-utiliser/"


def _names(response) -> list[str]:
    return re.findall(r'<p class="public-place-name"><strong>([^<]+)</strong>', _html(response))


def _html(response) -> str:
    return unescape(response.content.decode())


@pytest.fixture
def places():
    """Approved places around Bordeaux and in Lille, and providers that must never show."""
    smartphone, _ = ServiceCategory.objects.get_or_create(
        slug="smartphone", defaults={"name": "Prendre en main un smartphone"}
    )
    demarches, _ = ServiceCategory.objects.get_or_create(
        slug="demarches", defaults={"name": "Démarches administratives en ligne"}
    )
    accredited_provider("Médiathèque de Pessac", "33600", "Pessac", services=[smartphone])
    accredited_provider("Cap Numérique Bègles", "33130", "Bègles", services=[demarches])
    accredited_provider("EPN de Mérignac", "33700", "Mérignac", services=[smartphone, demarches])
    accredited_provider(
        "La Cabane du Web", "59000", "Lille", departement="59", services=[demarches]
    )
    # Never listed: suspended, expired, not yet approved, a site not approved or closed.
    suspended = accredited_provider("Suspendu Bordeaux", "33000", "Bordeaux")
    Accreditation.objects.filter(organisation=suspended).update(
        status=AccreditationStatus.SUSPENDED
    )
    expired = accredited_provider("Expiré Bordeaux", "33000", "Bordeaux")
    Accreditation.objects.filter(organisation=expired).update(
        valid_until=timezone.localdate() - timedelta(days=1)
    )
    pending = accredited_provider("En examen Bordeaux", "33000", "Bordeaux")
    Accreditation.objects.filter(organisation=pending).update(status=AccreditationStatus.IN_REVIEW)
    unapproved_site = accredited_provider("Site non validé", "33000", "Bordeaux")
    AccreditationSite.objects.filter(accreditation__organisation=unapproved_site).update(
        is_approved=False
    )
    closed_site = accredited_provider("Site fermé", "33000", "Bordeaux")
    AccreditationSite.objects.filter(accreditation__organisation=closed_site).update(
        is_active=False
    )
    return {"smartphone": smartphone, "demarches": demarches}


NEVER = [
    "Suspendu Bordeaux",
    "Expiré Bordeaux",
    "En examen Bordeaux",
    "Site non validé",
    "Site fermé",
]


def test_anyone_lists_every_accredited_place_without_an_account(client, places):
    response = client.get(URL)

    assert response.status_code == 200
    page = _html(response)
    assert "Où utiliser mes chèques ?" in page
    names = _names(response)
    assert sorted(names) == sorted(
        ["Médiathèque de Pessac", "Cap Numérique Bègles", "EPN de Mérignac", "La Cabane du Web"]
    )
    for name in NEVER:
        assert name not in page
    assert "3 place de la Mairie" in page and "33600 Pessac" in page
    assert "Démarches administratives en ligne · Prendre en main un smartphone" in page


def test_a_postcode_ranks_places_nearest_first_with_their_distance(client, places):
    response = client.get(URL, {"cp": "33000"})

    names = _names(response)
    assert names[:3] == ["Cap Numérique Bègles", "Médiathèque de Pessac", "EPN de Mérignac"]
    assert names[-1] == "La Cabane du Web"  # Lille, hundreds of kilometres away
    distances = [
        float(km.replace(",", ".")) for km in re.findall(r"à (\d+,\d) km", _html(response))
    ]
    assert distances == sorted(distances) and len(distances) == 4
    assert "Du plus proche au plus éloigné du code postal 33000." in _html(response)
    for name in NEVER:
        assert name not in _html(response)


def test_a_departement_and_a_service_narrow_the_list(client, places):
    in_gironde = _names(client.get(URL, {"departement": "33"}))
    assert "La Cabane du Web" not in in_gironde and len(in_gironde) == 3

    smartphone = _names(client.get(URL, {"service": "smartphone"}))
    assert sorted(smartphone) == ["EPN de Mérignac", "Médiathèque de Pessac"]

    both = _names(client.get(URL, {"departement": "59", "service": "smartphone"}))
    assert both == []
    assert "Aucun lieu qualifié ne correspond" in _html(
        client.get(URL, {"departement": "59", "service": "smartphone"})
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"cp": "99999"}, "Le code postal 99999 n'existe pas."),
        ({"cp": "33 0"}, "Le code postal doit comporter 5 chiffres."),
        ({"cp": "abcde"}, "Le code postal doit comporter 5 chiffres."),
        ({"departement": "99"}, "Numéro de département inconnu"),
        ({"departement": "<b>"}, "Numéro de département inconnu"),
        ({"service": "n-existe-pas"}, "Sélectionnez un choix valide."),
    ],
)
def test_a_bad_search_says_what_is_wrong_in_french_and_lists_nothing(
    client, places, query, message
):
    response = client.get(URL, query)

    assert response.status_code == 200
    assert message in _html(response)
    assert _names(response) == []
    assert "<b>" not in response.content.decode().split("<main", 1)[1]  # escaped


def test_a_bad_page_number_shows_the_last_or_first_page(client, places):
    assert client.get(URL, {"page": "999"}).status_code == 200
    assert client.get(URL, {"page": "abc"}).status_code == 200


def test_results_are_paginated_by_twenty(client, places):
    service = places["demarches"]
    for n in range(25):
        accredited_provider(f"Lieu {n:02d}", "33000", "Bordeaux", services=[service])

    first = client.get(URL, {"departement": "33"})
    second = client.get(URL, {"departement": "33", "page": "2"})

    assert "28 lieux qualifiés" in _html(first)
    assert len(_names(first)) == 20 and len(_names(second)) == 8
    assert not set(_names(first)) & set(_names(second))
    assert 'href="?departement=33&amp;page=2"' in first.content.decode()


def test_too_many_searches_from_one_address_are_refused_for_a_while(client, places, settings):
    settings.PUBLIC_DIRECTORY_RATE_PER_IP = 2
    assert client.get(URL).status_code == 200
    assert client.get(URL).status_code == 200

    refused = client.get(URL)

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "Trop de recherches" in _html(refused)
    other_address = client.get(URL, REMOTE_ADDR="10.0.0.9")
    assert other_address.status_code == 200


def test_the_footer_links_to_the_directory(client):
    assert f'href="{URL}"' in client.get(reverse("login")).content.decode()


# --- Links from the receipt and the public cheque page --------------------------------------


def test_the_receipt_links_to_the_directory_near_the_beneficiary(client_for, places):
    from tests.vouchers.test_counter import tenancy_receipt_kwargs

    owner = MembershipFactory(organisation=OrganisationFactory(is_funder=True, is_distributor=True))
    kwargs = tenancy_receipt_kwargs(owner)  # handed out to someone living in 33000
    client = client_for(owner)

    page = client.get(reverse("vouchers:receipt", kwargs=kwargs)).content.decode()
    assert "/ou-utiliser/?cp=33000" in page

    pdf = client.get(reverse("vouchers:receipt_pdf", kwargs=kwargs))
    reader = PdfReader(BytesIO(pdf.content))
    text = re.sub(r"\s+", "", "".join(p.extract_text() for p in reader.pages))
    assert "/ou-utiliser/?cp=33000" in text
    links = [
        annotation.get_object()["/A"]["/URI"]
        for p in reader.pages
        for annotation in p.get("/Annots") or []
        if "/A" in annotation.get_object()
    ]
    assert any(link.endswith("/ou-utiliser/?cp=33000") for link in links)


def test_the_public_cheque_page_links_to_the_directory_in_its_holders_departement(client, places):
    from tests.redemption.helpers import handed_out_cheques

    world = handed_out_cheques()  # handed out to someone living in 33000

    page = client.get(reverse("redemption:public_cheque", args=[world.codes[0]]))

    assert page.status_code == 200
    html = page.content.decode()
    # The département, never the postcode: the page must not tell where the holder lives.
    assert 'href="/ou-utiliser/?departement=33"' in html
    assert "33000" not in html.replace("33000 Bordeaux", "")
    listed = client.get("/ou-utiliser/?departement=33")
    assert "La Cabane du Web" not in _html(listed) and len(_names(listed)) == 3


def test_a_postcode_the_counter_accepts_is_searched_too(client, places):
    """Saint-Barthélemy (97133) is missing from the postcode dataset: the hand-over accepts it,
    so the receipt's link to the directory must not answer that it does not exist."""
    response = client.get(URL, {"cp": "97133"})

    assert response.status_code == 200
    assert "n'existe pas" not in _html(response)
