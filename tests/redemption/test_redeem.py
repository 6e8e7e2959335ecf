"""Redeeming at the counter and through the API: verdicts, all-or-nothing, replay, cancel."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from orgs.models import Accreditation, AccreditationStatus, AuditEvent
from redemption.models import Lockout, Redemption, RedemptionLine, ScanAttempt
from tests.factories import ServiceCategoryFactory
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from vouchers import codes as cheque_codes
from vouchers.models import Booklet, BookletStatus, Cheque, ChequeStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return handed_out_cheques(booklets=2, size=5)


@pytest.fixture
def provider(world):
    return accredited_provider_member(services=[world.service])


def _typo(code: str) -> str:
    swapped = code[0] + code[2] + code[1] + code[3:]
    return swapped if swapped != code else code[:1] + ("0" if code[1] != "0" else "1") + code[2:]


def redeem(api, codes, service, site=None, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = {"codes": codes, "service": service.slug}
    if site is not None:
        body["site"] = site.pk
    return api.post("/api/v1/redemptions/", body, format="json", **headers)


def test_a_basket_is_redeemed_at_once(api_for, world, provider):
    member, site = provider
    response = redeem(api_for(member), world.codes[:3], world.service, site)
    assert response.status_code == 201, response.content
    body = response.json()
    assert sorted(body["codes"]) == sorted(world.codes[:3])
    assert body["total_cents"] == 3000
    assert set(body) >= {"id", "codes", "total_cents", "created_at"}
    assert Cheque.objects.filter(code__in=world.codes[:3], status="redeemed").count() == 3
    assert AuditEvent.objects.filter(action="redemption.redeemed").count() == 1


def test_the_answer_to_a_redemption_is_the_one_the_list_gives(api_for, world, provider):
    member, site = provider
    api = api_for(member)
    created = redeem(api, world.codes[:2], world.service, site).json()
    plain = redeem(api, world.codes[2:3], world.service).json()
    listed = api.get("/api/v1/redemptions/").json()["results"]
    assert listed == [plain, created]  # newest first, field for field
    assert created["site"] == site.pk and plain["site"] is None
    assert created["status"] == "active" and created["cancelled_at"] is None


def test_a_lockout_blocks_until_it_ends(api_for, world, provider):
    member, site = provider
    api = api_for(member)
    Lockout.objects.create(
        organisation=member.organisation, until=timezone.now() - timedelta(seconds=1), failures=9
    )
    assert redeem(api, world.codes[:1], world.service, site).status_code == 201
    Lockout.objects.create(
        organisation=member.organisation, until=timezone.now() + timedelta(minutes=10), failures=9
    )
    refused = redeem(api, world.codes[1:2], world.service, site)
    assert (refused.status_code, refused.json()["code"]) == (429, "locked_out")
    assert "10 minute" in refused.json()["detail"]
    assert int(refused["Retry-After"]) == 600
    assert Cheque.objects.get(code=world.codes[1]).status == ChequeStatus.ACTIVE


def test_a_service_taken_out_of_the_catalogue_is_unknown(api_for, world, provider):
    member, site = provider
    world.service.is_active = False
    world.service.save(update_fields=["is_active"])
    refused = redeem(api_for(member), world.codes[:1], world.service, site)
    assert (refused.status_code, refused.json()["code"]) == (400, "unknown_service")
    assert not Redemption.objects.exists()


def test_one_bad_cheque_refuses_the_whole_basket_with_each_reason(api_for, world, provider):
    member, site = provider
    basket = [
        *world.codes[:2],
        _typo(world.codes[2]),
        "ZZZZZZZZZZZZ" + cheque_codes.check_symbol("ZZZZZZZZZZZZ"),
    ]
    response = redeem(api_for(member), basket, world.service, site)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "not_redeemable"
    assert sorted(e["reason"] for e in body["errors"]) == ["invalid_code", "unknown_cheque"]
    assert not Cheque.objects.filter(status="redeemed").exists()
    assert not Redemption.objects.exists()
    assert ScanAttempt.objects.count() == 2  # the signal survives the rollback


def test_a_code_scanned_twice_counts_once(api_for, world, provider):
    member, site = provider
    code = world.codes[0]
    response = redeem(
        api_for(member), [code, cheque_codes.display(code).lower()], world.service, site
    )
    assert response.status_code == 201
    assert response.json()["total_cents"] == 1000


def test_already_redeemed_says_when_and_where_only_to_the_same_provider(api_for, world, provider):
    member, site = provider
    other, _other_site = accredited_provider_member(services=[world.service])
    redeem(api_for(member), world.codes[:1], world.service, site)
    again = api_for(member).get(f"/api/v1/cheques/{world.codes[0]}/").json()
    assert again["reason"] == "already_redeemed" and not again["redeemable"]
    assert "Déjà encaissé chez vous le" in again["detail"] and site.name in again["detail"]
    elsewhere = api_for(other).get(f"/api/v1/cheques/{world.codes[0]}/").json()
    assert elsewhere["reason"] == "already_redeemed"
    assert site.name not in elsewhere["detail"]


def test_the_check_api_answers_the_contract_shape(api_for, world, provider):
    member, _site = provider
    api = api_for(member)
    ok = api.get(f"/api/v1/cheques/{cheque_codes.display(world.codes[0])}/")
    assert ok.status_code == 200
    assert set(ok.json()) >= {
        "code",
        "status",
        "value_cents",
        "currency",
        "expires_on",
        "programme",
        "booklet",
        "redeemable",
        "reason",
    }
    assert ok.json()["reason"] == "ok" and ok.json()["currency"] == "EUR"
    # Built without the serializer on the hot path: exactly what ChequeOutput would give.
    from redemption.api import ChequeOutput

    schema = ChequeOutput(data=ok.json())
    assert schema.is_valid(), schema.errors
    assert set(ok.json()) == set(ChequeOutput().fields)
    assert dict(ChequeOutput(schema.validated_data).data) == ok.json()
    typo = api.get(f"/api/v1/cheques/{_typo(world.codes[0])}/")
    assert (typo.status_code, typo.json()["code"]) == (400, "invalid_code")
    unknown = "ABCDEFGHJKMN" + cheque_codes.check_symbol("ABCDEFGHJKMN")
    missing = api.get(f"/api/v1/cheques/{unknown}/")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_cheque")


def test_expired_cheques_are_refused_even_before_the_nightly_task(api_for, world, provider):
    member, site = provider
    Cheque.objects.filter(code=world.codes[0]).update(expires_on=date.today() - timedelta(days=1))
    response = redeem(api_for(member), world.codes[:1], world.service, site)
    assert response.json()["errors"][0]["reason"] == "expired"
    assert Cheque.objects.get(code=world.codes[0]).status == ChequeStatus.ACTIVE


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (ChequeStatus.BLOCKED, "blocked"),
        (ChequeStatus.VOIDED, "voided"),
        (ChequeStatus.EXPIRED, "expired"),
    ],
)
def test_blocked_voided_and_expired_cheques_are_refused(api_for, world, provider, status, reason):
    member, site = provider
    Cheque.objects.filter(code=world.codes[0]).update(status=status)
    response = redeem(api_for(member), world.codes[:1], world.service, site)
    assert response.status_code == 409
    assert response.json()["errors"][0]["reason"] == reason


def test_only_accredited_providers_redeem(api_for, world, provider):
    member, site = provider
    accreditation = Accreditation.objects.get(organisation=member.organisation)
    for change in (
        {"status": AccreditationStatus.SUSPENDED},
        {"status": AccreditationStatus.APPROVED, "valid_until": date.today() - timedelta(days=1)},
    ):
        Accreditation.objects.filter(pk=accreditation.pk).update(**change)
        response = redeem(api_for(member), world.codes[:1], world.service, site)
        assert response.json()["errors"][0]["reason"] == "not_eligible"
    assert not Redemption.objects.exists()


def test_a_service_outside_the_programme_or_a_site_outside_the_territory_is_not_eligible(
    api_for, world
):
    other_service = ServiceCategoryFactory()
    member, site = accredited_provider_member(services=[world.service, other_service])
    response = redeem(api_for(member), world.codes[:1], other_service, site)
    assert response.json()["errors"][0]["reason"] == "not_eligible"
    far, far_site = accredited_provider_member(services=[world.service], departement="59")
    response = redeem(api_for(far), world.codes[:1], world.service, far_site)
    assert response.json()["errors"][0]["reason"] == "not_eligible"


def test_a_cheque_of_a_booklet_not_yet_handed_out_is_not_eligible(api_for, world, provider):
    member, site = provider
    Booklet.objects.filter(pk=world.booklets[0].pk).update(status=BookletStatus.ALLOCATED)
    response = redeem(api_for(member), world.codes[:1], world.service, site)
    assert response.json()["errors"][0]["reason"] == "not_eligible"


def test_the_same_idempotency_key_returns_the_first_answer(api_for, world, provider):
    member, site = provider
    api = api_for(member)
    first = redeem(api, world.codes[:2], world.service, site, key="scan-42")
    again = redeem(api, world.codes[:2], world.service, site, key="scan-42")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Redemption.objects.count() == 1
    other_body = redeem(api, world.codes[2:3], world.service, site, key="scan-42")
    assert (other_body.status_code, other_body.json()["code"]) == (422, "idempotency_key_reused")
    assert Redemption.objects.count() == 1


def test_cancel_within_24_hours_frees_the_cheques(api_for, world, provider):
    member, site = provider
    api = api_for(member)
    created = redeem(api, world.codes[:2], world.service, site).json()
    cancelled = api.post(f"/api/v1/redemptions/{created['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert Cheque.objects.filter(code__in=world.codes[:2], status="active").count() == 2
    assert not RedemptionLine.objects.filter(live=True).exists()
    assert redeem(api, world.codes[:2], world.service, site).status_code == 201
    twice = api.post(f"/api/v1/redemptions/{created['id']}/cancel/")
    assert (twice.status_code, twice.json()["code"]) == (409, "already_cancelled")


def test_cancel_after_24_hours_or_by_another_provider_is_refused(api_for, world, provider):
    member, site = provider
    created = redeem(api_for(member), world.codes[:1], world.service, site).json()
    other, _ = accredited_provider_member(services=[world.service])
    assert api_for(other).post(f"/api/v1/redemptions/{created['id']}/cancel/").status_code == 404
    Redemption.objects.filter(pk=created["id"]).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    late = api_for(member).post(f"/api/v1/redemptions/{created['id']}/cancel/")
    assert (late.status_code, late.json()["code"]) == (409, "too_late")
    assert Cheque.objects.get(code=world.codes[0]).status == ChequeStatus.REDEEMED


def test_a_provider_sees_only_its_own_redemptions(api_for, world, provider):
    member, site = provider
    other, other_site = accredited_provider_member(services=[world.service])
    redeem(api_for(member), world.codes[:1], world.service, site)
    redeem(api_for(other), world.codes[1:2], world.service, other_site)
    mine = api_for(member).get("/api/v1/redemptions/").json()
    assert [r["codes"] for r in mine["results"]] == [[world.codes[0]]]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"codes": "ABC", "service": "x"}, "invalid"),
        ({"codes": [1, 2], "service": None}, "invalid"),
        ({"codes": [], "service": "x"}, "invalid"),
        ({"codes": ["A"] * 500, "service": "x"}, "invalid"),
        ({"codes": ["ABCD"], "service": "no-such-service"}, "unknown_service"),
        ({"codes": ["ABCD"], "service": "x", "site": "here"}, "invalid"),
    ],
)
def test_bad_api_input_gets_a_code_never_a_500(api_for, world, provider, payload, code):
    member, _site = provider
    response = api_for(member).post("/api/v1/redemptions/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert not Redemption.objects.exists()


def test_malformed_json_is_refused_cleanly(api_for, provider):
    member, _site = provider
    response = api_for(member).post(
        "/api/v1/redemptions/", data="{codes: [", content_type="application/json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_checks_are_rate_limited_per_membership(api_for, world, provider, settings):
    settings.REDEEM_RATE_PER_MEMBERSHIP = 3
    member, _site = provider
    api = api_for(member)
    answers = [api.get(f"/api/v1/cheques/{world.codes[0]}/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "throttled"
    assert int(answers[-1]["Retry-After"]) >= 1


def test_too_many_failures_lock_the_provider_out_and_alert(api_for, world, provider, settings):
    settings.LOCKOUT_FAILURES = 3
    member, site = provider
    api = api_for(member)
    bogus = ["ABCDEFGHJKMN" + cheque_codes.check_symbol("ABCDEFGHJKMN")]
    for _ in range(3):
        redeem(api, bogus, world.service, site)
    assert Lockout.objects.active().filter(organisation=member.organisation).exists()
    response = redeem(api, world.codes[:1], world.service, site)
    assert (response.status_code, response.json()["code"]) == (429, "locked_out")
    assert "Retry-After" in response
    assert AuditEvent.objects.filter(action="redemption.lockout.started").count() == 1


def test_operators_see_the_lockout_alert_and_providers_cannot(
    api_for, client_for, world, provider, settings, operator_admin
):
    settings.LOCKOUT_FAILURES = 2
    member, site = provider
    bogus = ["ABCDEFGHJKMN" + cheque_codes.check_symbol("ABCDEFGHJKMN")]
    for _ in range(2):
        redeem(api_for(member), bogus, world.service, site)
    page = client_for(operator_admin).get("/alertes/")
    assert page.status_code == 200
    text = page.content.decode()
    assert member.organisation.name in text and "Chèque inconnu" in text
    assert "unknown_cheque" not in text  # the label people read, not the API code
    assert "Aucune suspension en cours." not in text
    assert client_for(member).get("/alertes/").status_code == 403
