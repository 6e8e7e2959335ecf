"""The API against its own OpenAPI schema, with generated requests (schemathesis).

Every operation of ``/api/v1/schema/`` is called with generated parameters and bodies, as a
provider, a distributor and a funder (each with its API token): no answer is a server error, and
every answer (status code, content type and body) is one the schema documents.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from aptic.wsgi import application
from orgs.audit import Actor
from orgs.models import MemberRole, Membership
from orgs.services import api_token_create
from tests.factories import MembershipFactory, OrganisationFactory
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import actor_for, issued_order
from vouchers.services.distribution import booklets_allocate

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 50  # per operation, each sent as all three roles: about a minute here


def _served_schema() -> dict:
    """The document ``/api/v1/schema/`` serves, built by the same generator, without a request.

    Loaded at import (``schemathesis.pytest.from_fixture`` does not run on this pytest), when
    no database is open yet: generating the schema needs none.
    """
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    raw = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw))


SERVED = _served_schema()
schema = schemathesis.openapi.from_dict(SERVED)
schema.app = application  # the server's: token requests take the short stack
schema.location = "/api/v1/schema/"


@pytest.fixture(autouse=True)
def _requests_keep_the_test_connection():
    # Like Django's test client: a request must not close the test's database connection, whose
    # transaction holds the test data.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def test_the_fuzzed_schema_is_the_one_served(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert json.loads(response.content) == SERVED


class Roles:
    """A funder that also distributes (handed-out booklets), an accredited provider, and a
    distributor holding one booklet still to hand out, each with an API token."""

    def __init__(self) -> None:
        self.world = handed_out_cheques(booklets=2)
        funder = Membership.objects.get(organisation=self.world.booklets[0].funder)
        self.provider, self.site = accredited_provider_member(services=[self.world.service])
        distributor = MembershipFactory(
            organisation=OrganisationFactory(is_funder=False, is_distributor=True),
            role=MemberRole.ADMIN,
        )
        issued_order(lines={5: 1}, funder=funder, programme=self.world.programme)
        self.to_hand_out = booklets_allocate(
            actor=actor_for(funder), distributor=distributor.organisation, count=1
        ).booklets.get()
        self.keys = {
            "funder": _key(funder),
            "distributor": _key(distributor),
            "provider": _key(self.provider),
        }

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Token {self.keys[role]}", **extra}


def _key(membership) -> str:
    return api_token_create(actor=Actor.system(), membership=membership, name="fuzz")[1]


@pytest.fixture
def roles(db) -> Roles:
    return Roles()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_every_generated_request_as_its_schema_says(case, roles):
    for role in roles.keys:
        case.call_and_validate(headers=roles.headers(role), checks=CHECKS)


def _call(operation, roles: Roles, role: str, expected: int, **parts):
    headers = roles.headers(role, **parts.pop("headers", {}))
    case = schema[operation[1]][operation[0]].Case(headers=headers, **parts)
    response = case.call_and_validate(checks=CHECKS)
    assert response.status_code == expected, response.text
    return response.json()


def test_real_journeys_answer_as_the_schema_says(roles):
    """Generated values rarely name real objects: walk the success and refusal paths too."""
    codes, service = roles.world.codes, roles.world.service.slug
    cheque = ("GET", "/api/v1/cheques/{code}/")
    assert _call(cheque, roles, "provider", 200, path_parameters={"code": codes[0]})["redeemable"]
    redeem = ("POST", "/api/v1/redemptions/")
    body = {"codes": codes[:2], "service": service, "site": roles.site.pk}
    created = _call(redeem, roles, "provider", 201, body=body, headers={"Idempotency-Key": "k1"})
    replay = _call(redeem, roles, "provider", 201, body=body, headers={"Idempotency-Key": "k1"})
    assert replay["id"] == created["id"]
    refused = _call(redeem, roles, "provider", 409, body={"codes": codes[:1], "service": service})
    assert refused["code"] == "not_redeemable"
    _call(("GET", "/api/v1/redemptions/"), roles, "provider", 200)
    cancel = ("POST", "/api/v1/redemptions/{id}/cancel/")
    _call(cancel, roles, "provider", 200, path_parameters={"id": created["id"]})
    _call(cancel, roles, "provider", 409, path_parameters={"id": created["id"]})
    _call(("GET", "/api/v1/payouts/"), roles, "provider", 200)

    number = roles.to_hand_out.number
    booklet = ("GET", "/api/v1/booklets/{number}/")
    _call(booklet, roles, "distributor", 200, path_parameters={"number": number})
    assign = ("POST", "/api/v1/booklets/{number}/assign/")
    person = {
        "last_name": "Martin",
        "first_name": "Lou",
        "birth_date": "1970-01-01",
        "age_bracket": "45-59",
        "postcode": "33000",
    }
    _call(assign, roles, "distributor", 201, path_parameters={"number": number}, body=person)
    _call(assign, roles, "distributor", 409, path_parameters={"number": number}, body=person)
    _call(("GET", "/api/v1/booklets/"), roles, "distributor", 200)

    orders = ("POST", "/api/v1/orders/")
    order = {"programme": roles.world.programme.pk, "lines": [{"booklet_size": 5, "quantity": 1}]}
    made = _call(orders, roles, "funder", 201, body=order)
    _call(("GET", "/api/v1/orders/{id}/"), roles, "funder", 200, path_parameters={"id": made["id"]})
    _call(("GET", "/api/v1/orders/"), roles, "funder", 200)
    _call(("GET", "/api/v1/programmes/"), roles, "funder", 200)
    for role in roles.keys:
        _call(("GET", "/api/v1/me/"), roles, role, 200)


def test_every_operation_documents_its_error_answers():
    error = {"$ref": "#/components/schemas/Error"}
    assert SERVED["components"]["schemas"]["Error"]["required"] == ["code", "detail"]
    for path, operations in SERVED["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("401", "403"):
                assert responses[status]["content"]["application/json"]["schema"] == error
            if method == "post":
                assert "409" in responses, path
            if "requestBody" in operation:
                assert {"400", "415"} <= set(responses), (method, path)
    limited = SERVED["paths"]["/api/v1/redemptions/"]
    assert "429" in limited["post"]["responses"] and "429" not in limited["get"]["responses"]
    assert "429" in SERVED["paths"]["/api/v1/cheques/{code}/"]["get"]["responses"]
