"""The provider's counter pages and the public cheque page: verdicts, basket, receipt, cancel."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from orgs.audit import Actor
from redemption.models import Redemption, ScanAttempt
from redemption.services.redeem import cheques_redeem
from tests.factories import MembershipFactory, ServiceCategoryFactory
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from vouchers import codes as cheque_codes
from vouchers.models import Beneficiary, Booklet, BookletStatus, Cheque, ChequeStatus

pytestmark = pytest.mark.django_db

COUNTER = reverse("redemption:counter")
CHECK = reverse("redemption:counter_check")
UNKNOWN = "ABCDEFGHJKMN" + cheque_codes.check_symbol("ABCDEFGHJKMN")


@pytest.fixture
def world():
    return handed_out_cheques(booklets=2, size=5)


@pytest.fixture
def provider(world):
    return accredited_provider_member(services=[world.service])


@pytest.fixture
def agent(provider, client_for):
    member, _site = provider
    return client_for(member)


def typo(code: str) -> str:
    """Two adjacent symbols swapped: the check symbol catches it."""
    index = next(i for i in range(len(code) - 1) if code[i] != code[i + 1])
    return code[:index] + code[index + 1] + code[index] + code[index + 2 :]


def check(client, code: str, site=None, service=None):
    data = {"code": code}
    if site is not None:
        data["site"] = site.pk
    if service is not None:
        data["service"] = service.pk
    return client.post(CHECK, data, HTTP_HX_REQUEST="true")


def redeem(client, codes, site, service, key="basket-1"):
    return client.post(
        COUNTER,
        {"codes": codes, "site": site.pk, "service": service.pk, "idempotency_key": key},
    )


def body(response) -> str:
    """The page's text with HTML entities decoded (French apostrophes come escaped)."""
    return unescape(response.content.decode())


def basket_codes(html: str) -> list[str]:
    return re.findall(r'<input type="hidden" name="codes" value="([^"]+)"', html)


# --- Counter page and checks --------------------------------------------------------------------


def test_the_counter_has_one_autofocused_field_and_the_only_site_and_service_preselected(
    agent, provider, world
):
    _member, site = provider
    response = agent.get(COUNTER)
    assert response.status_code == 200
    html = body(response)
    assert html.count("autofocus") == 1
    field = re.search(r"<input[^>]*data-scan-field[^>]*>", html).group(0)
    assert "autofocus" in field and 'name="code"' in field
    assert 'hx-sync="this:queue all"' in html  # scans queue, none is dropped
    assert re.search(rf'<option value="{site.pk}" selected>', html)
    assert re.search(rf'<option value="{world.service.pk}"[^>]*selected', html)
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html).group(1)
    again = body(agent.get(COUNTER))
    assert key not in again  # a fresh key per page load


def test_a_valid_cheque_comes_back_green_with_its_value(agent, provider, world):
    _member, site = provider
    response = check(agent, cheque_codes.display(world.codes[0]).lower(), site, world.service)
    assert response.status_code == 200
    html = body(response)
    assert f'data-code="{world.codes[0]}"' in html and 'data-verdict="ok"' in html
    assert "10,00\u00a0€" in html
    assert "<html" not in html and "<nav" not in html  # a lean partial
    assert not ScanAttempt.objects.exists()


def _redeemed_here(world, provider):
    member, site = provider
    cheques_redeem(
        actor=Actor(user=member.user, membership=member),
        codes=world.codes[:1],
        service=world.service,
        site=site,
    )
    return world.codes[0], None


def _expired(world, _provider):
    Cheque.objects.filter(code=world.codes[0]).update(expires_on=date.today() - timedelta(days=1))
    return world.codes[0], None


def _blocked(world, _provider):
    Cheque.objects.filter(code=world.codes[0]).update(
        status=ChequeStatus.BLOCKED, blocked_reason="chéquier volé"
    )
    return world.codes[0], None


def _voided(world, _provider):
    Cheque.objects.filter(code=world.codes[0]).update(status=ChequeStatus.VOIDED)
    return world.codes[0], None


def _service_outside_the_programme(world, provider):
    _member, site = provider
    other = ServiceCategoryFactory(name="Réparer son ordinateur")
    site.services.add(other)
    return world.codes[0], other


@pytest.mark.parametrize(
    ("make", "reason", "label", "detail"),
    [
        (lambda w, p: (typo(w.codes[0]), None), "invalid_code", "Code mal saisi", "caractère"),
        (lambda w, p: (UNKNOWN, None), "unknown_cheque", "Chèque inconnu", "Aucun chèque"),
        (_redeemed_here, "already_redeemed", "Chèque déjà encaissé", "Déjà encaissé chez vous le"),
        (_expired, "expired", "Chèque expiré", "expiré depuis le"),
        (_blocked, "blocked", "Chèque bloqué", "chéquier volé"),
        (_voided, "voided", "Chèque annulé", "remplacé"),
        (
            _service_outside_the_programme,
            "not_eligible",
            "Chèque non utilisable ici",
            "n'est pas financé par le programme",
        ),
    ],
)
def test_a_refused_cheque_comes_back_red_with_its_french_reason(
    agent, provider, world, make, reason, label, detail
):
    _member, site = provider
    code, service = make(world, provider)
    response = check(agent, code, site, service or world.service)
    assert response.status_code == 200
    html = body(response)
    assert f'data-verdict="{reason}"' in html
    assert label in html and detail in html
    assert 'name="codes"' not in html
    if reason == "already_redeemed":
        assert site.name in html  # when and where, for the same provider
    attempt = ScanAttempt.objects.get()
    assert (attempt.reason, attempt.kind) == (reason, "check")


def test_scans_made_during_a_check_come_together_and_get_a_row_each_in_order(
    agent, provider, world
):
    _member, site = provider
    scanned = [world.codes[0], typo(world.codes[1]), cheque_codes.display(world.codes[0])]
    response = agent.post(
        CHECK,
        {"code": scanned, "site": site.pk, "service": world.service.pk},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    rows = re.findall(r'data-code="([^"]+)" data-verdict="([^"]+)"', body(response))
    assert rows == [
        (world.codes[0], "ok"),
        (typo(world.codes[1]), "invalid_code"),
        (world.codes[0], "ok"),
    ]
    assert ScanAttempt.objects.count() == 1


def test_a_cheque_redeemed_by_another_provider_does_not_say_where(provider, world, client_for):
    _member, site = provider
    other, other_site = accredited_provider_member(services=[world.service])
    _redeemed_here(world, (other, other_site))
    html = body(check(client_for(provider[0]), world.codes[0], site, world.service))
    assert "Ce chèque a déjà été encaissé." in html
    assert other_site.name not in html and "chez vous" not in html


def test_without_javascript_a_check_answers_the_whole_counter_with_the_cheque_in_the_basket(
    agent, provider, world
):
    _member, site = provider
    response = agent.post(CHECK, {"code": world.codes[0], "site": site.pk})
    assert response.status_code == 200
    assert basket_codes(body(response)) == [world.codes[0]]


def test_a_code_from_the_public_page_arrives_already_in_the_basket(agent, world):
    html = body(agent.get(f"{COUNTER}?code={world.codes[1]}"))
    assert basket_codes(html) == [world.codes[1]]
    assert "Encaisser 1 chèque (10,00\u00a0€)" in html


def test_checks_are_rate_limited_per_membership(agent, provider, world, settings):
    settings.REDEEM_RATE_PER_MEMBERSHIP = 2
    _member, site = provider
    answers = [check(agent, world.codes[0], site, world.service) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Trop de scans, patientez" in body(answers[-1])
    assert int(answers[-1]["Retry-After"]) >= 1
    limited = redeem(agent, world.codes[:1], site, world.service)
    assert limited.status_code == 429 and "Trop de scans, patientez" in body(limited)
    assert not Redemption.objects.exists()


def test_a_locked_out_provider_is_told_why_at_the_counter(agent, provider, world, settings):
    settings.LOCKOUT_FAILURES = 2
    _member, site = provider
    check(agent, UNKNOWN, site, world.service)
    check(agent, typo(world.codes[0]), site, world.service)
    response = check(agent, world.codes[0], site, world.service)
    assert response.status_code == 429
    assert "l'encaissement est suspendu" in body(response)
    refused = redeem(agent, world.codes[:1], site, world.service)
    assert refused.status_code == 429 and not Redemption.objects.exists()


# --- Redeeming the basket -----------------------------------------------------------------------


def test_a_basket_is_redeemed_at_once_and_the_receipt_shows_it(agent, provider, world):
    member, site = provider
    response = redeem(agent, world.codes[:3], site, world.service)
    redemption = Redemption.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("redemption:redemption_detail", args=[redemption.pk])
    assert Cheque.objects.filter(code__in=world.codes[:3], status="redeemed").count() == 3
    html = body(agent.get(response["Location"]))
    assert "30,00\u00a0€" in html
    for code in world.codes[:3]:
        assert cheque_codes.mask(code) in html and code not in html
    assert site.name in html and world.service.name in html
    assert member.user.get_full_name() in html
    assert "Annuler cet encaissement" in html


def test_one_refused_cheque_redeems_nothing_and_the_basket_keeps_the_others(agent, provider, world):
    _member, site = provider
    bad = typo(world.codes[2])
    response = redeem(agent, [*world.codes[:2], bad], site, world.service)
    assert response.status_code == 409
    html = body(response)
    assert "Aucun chèque n'a été encaissé" in html
    assert "Code mal saisi" in html
    assert basket_codes(html) == world.codes[:2]
    assert not Redemption.objects.exists()
    assert not Cheque.objects.filter(status="redeemed").exists()


def test_a_double_submit_with_the_same_token_redeems_once(agent, provider, world):
    _member, site = provider
    first = redeem(agent, world.codes[:2], site, world.service, key="same-basket")
    second = redeem(agent, world.codes[:2], site, world.service, key="same-basket")
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Redemption.objects.count() == 1


def test_the_site_and_service_are_required_to_redeem(agent, provider, world):
    response = agent.post(COUNTER, {"codes": world.codes[:1], "idempotency_key": "k"})
    assert response.status_code == 400
    html = body(response)
    assert "Choisissez le lieu où vous encaissez." in html
    assert basket_codes(html) == world.codes[:1]
    assert not Redemption.objects.exists()


def test_an_empty_basket_is_refused_with_a_message(agent, provider, world):
    _member, site = provider
    response = redeem(agent, [], site, world.service)
    assert response.status_code == 400
    assert "Scannez au moins un chèque." in body(response)


# --- Receipts, list, cancel ---------------------------------------------------------------------


def test_cancel_within_24_hours_frees_the_cheques(agent, provider, world):
    _member, site = provider
    redeem(agent, world.codes[:2], site, world.service)
    redemption = Redemption.objects.get()
    url = reverse("redemption:redemption_cancel", args=[redemption.pk])
    response = agent.post(url)
    assert response.status_code == 302
    redemption.refresh_from_db()
    assert redemption.status == "cancelled"
    assert Cheque.objects.filter(code__in=world.codes[:2], status="active").count() == 2
    html = body(agent.get(response["Location"]))
    assert "Encaissement annulé" in html and "Annuler cet encaissement" not in html
    again = agent.post(url)
    assert again.status_code == 302  # told it is already cancelled, nothing changes
    assert "déjà annulé" in body(agent.get(again["Location"]))


def test_cancelling_asks_for_a_confirmation_that_says_what_will_happen(agent, provider, world):
    _member, site = provider
    redeem(agent, world.codes[:2], site, world.service)
    redemption = Redemption.objects.get()
    detail = reverse("redemption:redemption_detail", args=[redemption.pk])
    cancel = reverse("redemption:redemption_cancel", args=[redemption.pk])

    receipt = body(agent.get(detail))
    assert f'href="{detail}?confirmer=1#annulation"' in receipt  # a link, not a cancel form
    assert f'action="{cancel}"' not in receipt and "Confirmer l'annulation" not in receipt

    confirm = agent.get(detail, {"confirmer": "1"})
    assert confirm.status_code == 200
    html = body(confirm)
    assert "Les 2 chèques redeviendront utilisables" in html
    assert "cet encaissement de 20,00\u00a0€ ne vous sera pas remboursé" in html
    form = re.search(rf'<form method="post" action="{cancel}">(.*?)</form>', html, re.S)
    assert form and "csrfmiddlewaretoken" in form.group(1)
    assert "Confirmer l'annulation" in form.group(1)
    assert f'href="{detail}">Garder l\'encaissement</a>' in html
    assert Redemption.objects.get().status == "active"  # asking cancels nothing

    agent.post(cancel)
    assert Redemption.objects.get().status == "cancelled"


def test_no_confirmation_is_offered_for_a_redemption_that_cannot_be_cancelled(
    agent, provider, world
):
    _member, site = provider
    redeem(agent, world.codes[:1], site, world.service)
    redemption = Redemption.objects.get()
    Redemption.objects.filter(pk=redemption.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    detail = reverse("redemption:redemption_detail", args=[redemption.pk])
    html = body(agent.get(detail, {"confirmer": "1"}))
    assert "Confirmer l'annulation" not in html and "Annuler cet encaissement" not in html


def test_after_24_hours_a_redemption_cannot_be_cancelled(agent, provider, world):
    _member, site = provider
    redeem(agent, world.codes[:1], site, world.service)
    redemption = Redemption.objects.get()
    Redemption.objects.filter(pk=redemption.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    detail = reverse("redemption:redemption_detail", args=[redemption.pk])
    assert "Annuler cet encaissement" not in body(agent.get(detail))
    agent.post(reverse("redemption:redemption_cancel", args=[redemption.pk]))
    assert Redemption.objects.get().status == "active"
    assert Cheque.objects.get(code=world.codes[0]).status == ChequeStatus.REDEEMED


def test_another_providers_receipt_is_not_found(agent, provider, world, client_for):
    _member, site = provider
    redeem(agent, world.codes[:1], site, world.service)
    redemption = Redemption.objects.get()
    other, _other_site = accredited_provider_member(services=[world.service])
    outsider = client_for(other)
    detail = reverse("redemption:redemption_detail", args=[redemption.pk])
    assert outsider.get(detail).status_code == 404
    cancel = reverse("redemption:redemption_cancel", args=[redemption.pk])
    assert outsider.post(cancel).status_code == 404
    assert Redemption.objects.get().status == "active"


def test_the_funder_sees_the_receipt_but_cannot_cancel_it(agent, provider, world, client_for):
    _member, site = provider
    redeem(agent, world.codes[:1], site, world.service)
    redemption = Redemption.objects.get()
    funder = world.programme.funder
    funder.is_provider = True  # also a provider: holds the cancel permission, for its own only
    funder.save(update_fields=["is_provider"])
    funder_client = client_for(MembershipFactory(organisation=funder))
    detail = reverse("redemption:redemption_detail", args=[redemption.pk])
    page = funder_client.get(detail)
    assert page.status_code == 200 and "Annuler cet encaissement" not in body(page)
    cancel = reverse("redemption:redemption_cancel", args=[redemption.pk])
    assert funder_client.post(cancel).status_code == 404
    assert Redemption.objects.get().status == "active"


def test_the_list_shows_the_providers_redemptions_newest_first_with_totals(
    agent, provider, world, client_for
):
    _member, site = provider
    redeem(agent, world.codes[:1], site, world.service, key="a")
    redeem(agent, world.codes[1:3], site, world.service, key="b")
    first, second = Redemption.objects.order_by("created_at", "pk")
    agent.post(reverse("redemption:redemption_cancel", args=[first.pk]))
    other, other_site = accredited_provider_member(services=[world.service])
    redeem(client_for(other), world.codes[3:4], other_site, world.service, key="c")

    html = body(agent.get(reverse("redemption:redemption_list")))
    links = re.findall(r'href="/encaissements/(\d+)/"', html)
    assert links == [str(second.pk), str(first.pk)]
    assert "Annulé" in html and "Encaissé" in html
    assert "1 encaissement" in html and "20,00\u00a0€" in html


# --- Public cheque page -------------------------------------------------------------------------


def test_the_public_page_of_a_valid_cheque_shows_value_end_date_and_nearby_places(
    client, provider, world
):
    _member, site = provider
    Beneficiary.objects.update(postcode="33130")
    cheque = Cheque.objects.get(code=world.codes[0])
    for url in (f"/c/{cheque.code}", f"/c/{cheque.code}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        html = body(response)
        assert "Ce chèque est valable" in html
        assert "10,00\u00a0€" in html
        assert cheque.expires_on.strftime("%d/%m/%Y") in html
        assert world.programme.name in html
        assert site.name in html
        assert "Encaisser ce chèque" not in html  # anonymous visitor
    assert not ScanAttempt.objects.exists()


def test_the_public_page_never_shows_who_the_beneficiary_is(client, provider, world):
    Beneficiary.objects.update(postcode="33130")
    booklet = Booklet.objects.select_related("beneficiary").get(pk=world.booklets[0].pk)
    beneficiary = booklet.beneficiary
    html = body(client.get(f"/c/{world.codes[0]}/"))
    assert beneficiary.reference not in html
    assert beneficiary.postcode not in html
    assert booklet.number not in html
    assert beneficiary.distributor.name not in html
    assert "60-74" not in html and "60 à 74" not in html


def test_the_public_page_of_a_used_cheque_says_so_but_not_where_or_when(client, provider, world):
    _redeemed_here(world, provider)
    html = body(client.get(f"/c/{world.codes[0]}/"))
    assert "Ce chèque a déjà été utilisé" in html
    assert provider[1].name not in html
    assert not re.search(r"\d{2}:\d{2}", html)  # no time of redemption


def test_the_public_page_says_when_a_code_is_mistyped_or_unknown(client, world):
    mistyped = client.get(f"/c/{typo(world.codes[0])}/", REMOTE_ADDR="203.0.113.7")
    assert mistyped.status_code == 400
    assert "Code mal saisi" in body(mistyped)
    unknown = client.get(f"/c/{UNKNOWN}/", REMOTE_ADDR="203.0.113.7")
    assert unknown.status_code == 404
    assert "Chèque inconnu" in body(unknown)
    attempts = ScanAttempt.objects.order_by("created_at", "pk")
    assert [(a.reason, a.kind, a.organisation_id, a.ip) for a in attempts] == [
        ("invalid_code", "public", None, "203.0.113.7"),
        ("unknown_cheque", "public", None, "203.0.113.7"),
    ]


@pytest.mark.parametrize(
    ("change", "title"),
    [
        ({"status": ChequeStatus.BLOCKED, "blocked_reason": "volé à Mme Dupont"}, "bloqué"),
        ({"status": ChequeStatus.EXPIRED}, "a expiré"),
        ({"status": ChequeStatus.VOIDED}, "a été annulé"),
    ],
)
def test_the_public_page_of_a_refused_cheque_shows_no_places(
    client, provider, world, change, title
):
    Cheque.objects.filter(code=world.codes[0]).update(**change)
    html = body(client.get(f"/c/{world.codes[0]}/"))
    assert f"Ce chèque {title}" in html or f"Ce chèque est {title}" in html
    assert provider[1].name not in html
    assert "Dupont" not in html


def test_a_cheque_not_handed_out_yet_is_not_active(client, world):
    Booklet.objects.filter(pk=world.booklets[0].pk).update(status=BookletStatus.ALLOCATED)
    html = body(client.get(f"/c/{world.codes[0]}/"))
    assert "pas encore activé" in html


def test_the_public_page_is_rate_limited_per_ip(client, world, settings):
    settings.PUBLIC_CHEQUE_RATE_PER_IP = 2
    url = f"/c/{world.codes[0]}/"
    answers = [client.get(url, REMOTE_ADDR="198.51.100.1") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert "Trop de vérifications" in body(answers[-1])
    assert int(answers[-1]["Retry-After"]) >= 1
    assert client.get(url, REMOTE_ADDR="198.51.100.2").status_code == 200


def test_a_signed_in_provider_agent_gets_a_redeem_button(agent, client, world, client_for):
    html = body(agent.get(f"/c/{world.codes[0]}/"))
    assert "Encaisser ce chèque" in html
    assert f'href="/encaisser/?code={world.codes[0]}"' in html
    assert "Encaisser ce chèque" not in body(client.get(f"/c/{world.codes[0]}/"))
