"""GET/POST /api/v1/orders/: a funder's orders, machine-readable errors, nothing half-made."""

from __future__ import annotations

import pytest

from orgs.models import AuditEvent
from tests.factories import ProgrammeFactory
from vouchers.models import Order, OrderStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def programme(funder_admin):
    return ProgrammeFactory(funder=funder_admin.organisation, max_booklets_per_order=100)


def test_a_funder_creates_and_submits_an_order_through_the_api(api_for, funder_admin, programme):
    api = api_for(funder_admin)
    response = api.post(
        "/api/v1/orders/",
        {
            "programme": programme.pk,
            "lines": [{"booklet_size": 10, "quantity": 4}],
            "purchase_order_number": "BC-API-1",
            "submit": True,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == OrderStatus.SUBMITTED
    assert body["reference"].startswith("CMD-")
    assert (body["face_value_cents"], body["fee_cents"], body["total_cents"]) == (
        40000,
        1600,
        41600,
    )
    assert body["currency"] == "EUR"
    listing = api.get("/api/v1/orders/").json()
    assert [o["reference"] for o in listing["results"]] == [body["reference"]]
    assert api.get(f"/api/v1/orders/{body['id']}/").json()["lines"] == [
        {"booklet_size": 10, "quantity": 4}
    ]


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"programme": [], "lines": [{"booklet_size": 10, "quantity": 1}]}, 400, "invalid"),
        ({"programme": "abc", "lines": [{"booklet_size": 10, "quantity": 1}]}, 400, "invalid"),
        ({"programme": None, "lines": []}, 400, "invalid"),
        ({"lines": [{"booklet_size": 7, "quantity": 1}]}, 400, "invalid"),
        ({"lines": [{"booklet_size": 10, "quantity": 0}]}, 400, "invalid"),
        ({"lines": [{"booklet_size": 10, "quantity": -3}]}, 400, "invalid"),
        ({"lines": [{"booklet_size": 10, "quantity": 101}]}, 400, "over_order_limit"),
        (
            {"lines": [{"booklet_size": 5, "quantity": 1}, {"booklet_size": 5, "quantity": 2}]},
            400,
            "invalid",
        ),
        ({"lines": "many"}, 400, "invalid"),
    ],
)
def test_bad_orders_get_a_code_and_create_nothing(
    api_for, funder_admin, programme, payload, status, code
):
    payload = {"programme": programme.pk, **payload}
    response = api_for(funder_admin).post("/api/v1/orders/", payload, format="json")
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert "detail" in response.json()
    assert Order.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="vouchers.order").exists()


def test_malformed_json_is_a_parse_error_not_a_500(api_for, funder_admin):
    response = api_for(funder_admin).post(
        "/api/v1/orders/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_another_funders_programme_and_order_answer_404(api_for, funder_admin, programme):
    other = ProgrammeFactory()
    api = api_for(funder_admin)
    response = api.post(
        "/api/v1/orders/",
        {"programme": other.pk, "lines": [{"booklet_size": 10, "quantity": 1}]},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    created = api.post(
        "/api/v1/orders/",
        {"programme": programme.pk, "lines": [{"booklet_size": 10, "quantity": 1}]},
        format="json",
    ).json()
    from tests.factories import MembershipFactory, OrganisationFactory

    outsider = MembershipFactory(organisation=OrganisationFactory(is_funder=True))
    assert api_for(outsider).get(f"/api/v1/orders/{created['id']}/").status_code == 404
    assert api_for(outsider).get("/api/v1/orders/").json()["results"] == []


def test_a_provider_cannot_use_the_orders_api(api_for, provider_admin):
    response = api_for(provider_admin).get("/api/v1/orders/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
