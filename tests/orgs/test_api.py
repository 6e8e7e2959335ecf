"""The API: token authentication, the error shape, the schema and docs, and where keys come from.

A few test-only endpoints below (served with ``pytest.mark.urls`` on this module) exercise the
error paths no real endpoint reaches yet: a JSON body that does not parse, invalid input, a
business refusal and an unexpected crash.
"""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import include, path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from aptic.errors import Conflict
from orgs.audit import Actor
from orgs.models import ApiToken, AuditEvent, MemberRole, Membership
from orgs.permissions import permissions_of
from orgs.services import api_token_create, api_token_revoke
from orgs.tokens import digest
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"


# --- Test-only endpoints ------------------------------------------------------------------


class _EchoInput(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1)


class _EchoView(APIView):
    def post(self, request):
        data = _EchoInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(data.validated_data)


class _RefuseView(APIView):
    def post(self, request):
        raise Conflict("Ce chèque a déjà été encaissé.", code="already_redeemed")


class _CrashView(APIView):
    def get(self, request):
        raise RuntimeError("boom")


urlpatterns = [
    path("api/v1/test-echo/", _EchoView.as_view()),
    path("api/v1/test-refuse/", _RefuseView.as_view()),
    path("api/v1/test-crash/", _CrashView.as_view()),
    path("", include("aptic.urls")),
]
handler400 = "aptic.views.bad_request"
handler403 = "aptic.views.permission_denied"
handler404 = "aptic.views.page_not_found"
handler500 = "aptic.views.server_error"

with_test_endpoints = pytest.mark.urls(__name__)


# --- Helpers ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _client(authorization: str | None = None) -> APIClient:
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client


def _key_for(membership) -> str:
    _token, key = api_token_create(actor=Actor.system(), membership=membership, name="douchette")
    return key


def _assert_error(response, status: int, code: str, extras: frozenset = frozenset()) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"code", "detail"} | extras, body
    assert body["code"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


# --- Token authentication -----------------------------------------------------------------


def test_a_token_answers_for_its_membership(funder_admin):
    key = _key_for(funder_admin)

    response = _client(f"Token {key}").get(ME)

    assert response.status_code == 200
    assert response.json() == {
        "email": funder_admin.user.email,
        "full_name": funder_admin.user.full_name,
        "organisation": funder_admin.organisation.name,
        "organisation_slug": funder_admin.organisation.slug,
        "organisation_roles": ["funder"],
        "member_role": "admin",
        "permissions": sorted(permissions_of(funder_admin)),
    }
    assert "members:manage" in response.json()["permissions"]


def test_a_token_acts_for_its_own_membership_not_the_persons_first_one(funder_admin):
    # The same person is an agent of a provider too: the token decides which one.
    provider = MembershipFactory(
        user=funder_admin.user,
        organisation__is_funder=False,
        organisation__is_provider=True,
        organisation__name="AAA Lieu",
        role=MemberRole.AGENT,
    )

    body = _client(f"Token {_key_for(provider)}").get(ME).json()

    assert (body["organisation"], body["member_role"]) == ("AAA Lieu", "agent")
    assert "cheques:redeem" in body["permissions"]
    assert "members:manage" not in body["permissions"]


def test_without_credentials_the_api_asks_for_a_token():
    response = _client().get(ME)

    body = _assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    assert "authentification" in body["detail"]


@pytest.mark.parametrize("header", ["Token", "Token a b", "token   "])
def test_a_malformed_authorization_header_is_refused(header):
    response = _client(header).get(ME)

    body = _assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Token"
    assert "mal formé" in body["detail"]


def test_an_unknown_key_is_refused(funder_admin):
    _key_for(funder_admin)

    response = _client("Token apt_this-key-was-never-issued").get(ME)

    body = _assert_error(response, 401, "authentication_failed")
    assert body["detail"] == "Jeton inconnu."


def test_a_revoked_token_is_refused_and_says_so(funder_admin):
    key = _key_for(funder_admin)
    client = _client(f"Token {key}")
    assert client.get(ME).status_code == 200
    api_token_revoke(
        actor=Actor(user=funder_admin.user, membership=funder_admin),
        token=ApiToken.objects.get(),
    )

    response = client.get(ME)

    body = _assert_error(response, 401, "authentication_failed")
    assert body["detail"] == "Ce jeton a été révoqué."


def test_the_token_of_a_removed_member_is_refused(funder_admin):
    colleague = MembershipFactory(organisation=funder_admin.organisation, role=MemberRole.AGENT)
    key = _key_for(colleague)
    # Removal through the ORM alone, so the token itself stays unrevoked.
    Membership.objects.filter(pk=colleague.pk).update(removed_at=timezone.now())

    response = _client(f"Token {key}").get(ME)

    body = _assert_error(response, 401, "authentication_failed")
    assert "membre actif" in body["detail"]


def test_the_token_of_a_deactivated_account_is_refused(funder_admin):
    key = _key_for(funder_admin)
    funder_admin.user.is_active = False
    funder_admin.user.save()

    _assert_error(_client(f"Token {key}").get(ME), 401, "authentication_failed")


def test_another_authorization_scheme_is_not_a_token(funder_admin):
    response = _client(f"Bearer {_key_for(funder_admin)}").get(ME)

    _assert_error(response, 401, "not_authenticated")


# --- The error shape ----------------------------------------------------------------------


def test_an_unknown_api_url_answers_json_even_with_debug_off(funder_admin):
    assert settings.DEBUG is False

    anonymous = Client().get("/api/v1/does-not-exist/")
    signed = _client(f"Token {_key_for(funder_admin)}").get("/api/v1/does-not-exist/")

    for response in (anonymous, signed):
        body = _assert_error(response, 404, "not_found")
        assert body["detail"] == "Introuvable."


def test_malformed_json_to_an_endpoint_without_post_is_a_json_405(funder_admin):
    response = _client(f"Token {_key_for(funder_admin)}").post(
        ME, data="{not json", content_type="application/json"
    )

    _assert_error(response, 405, "method_not_allowed")


@with_test_endpoints
def test_malformed_json_is_a_json_400(funder_admin):
    client = _client(f"Token {_key_for(funder_admin)}")

    response = client.post("/api/v1/test-echo/", data="{not json", content_type="application/json")

    _assert_error(response, 400, "parse_error")
    assert client.post("/api/v1/test-echo/", {"quantity": 2}, format="json").json() == {
        "quantity": 2
    }


@with_test_endpoints
def test_a_form_encoded_body_is_a_json_415(funder_admin):
    response = _client(f"Token {_key_for(funder_admin)}").post(
        "/api/v1/test-echo/", {"quantity": 2}
    )

    _assert_error(response, 415, "unsupported_media_type")


@with_test_endpoints
def test_invalid_input_lists_its_field_errors(funder_admin):
    response = _client(f"Token {_key_for(funder_admin)}").post(
        "/api/v1/test-echo/", {"quantity": 0}, format="json"
    )

    body = _assert_error(response, 400, "invalid", extras=frozenset({"errors"}))
    assert set(body["errors"]) == {"quantity"}


@with_test_endpoints
def test_a_business_refusal_keeps_its_code_and_french_message(funder_admin):
    response = _client(f"Token {_key_for(funder_admin)}").post("/api/v1/test-refuse/")

    body = _assert_error(response, 409, "already_redeemed")
    assert body["detail"] == "Ce chèque a déjà été encaissé."


@with_test_endpoints
def test_a_crash_is_a_json_500_without_the_traceback(funder_admin):
    client = _client(f"Token {_key_for(funder_admin)}")
    client.raise_request_exception = False

    response = client.get("/api/v1/test-crash/")

    _assert_error(response, 500, "server_error")
    assert b"boom" not in response.content


def test_the_session_alone_does_not_allow_unsafe_api_calls_without_csrf(funder_admin, client_for):
    client = client_for(funder_admin)
    client.handler.enforce_csrf_checks = True

    response = client.post(ME, data="{}", content_type="application/json")

    _assert_error(response, 403, "permission_denied")


# --- Schema and docs ----------------------------------------------------------------------


def test_the_schema_is_json_and_describes_the_token_scheme(client):
    response = client.get("/api/v1/schema/?format=json")

    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Token-based authentication: `Token <key>`.",
    }
    assert {"tokenAuth": []} in schema["paths"][ME]["get"]["security"]


def test_the_docs_load_their_scripts_and_styles_from_our_own_static_files(client):
    response = client.get("/api/v1/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["']([^"']+)""", html)
    assert any(a.endswith(".js") for a in assets)
    assert any(a.endswith(".css") for a in assets)
    # Swagger UI's start-up script comes from the docs view itself (no inline script: CSP).
    own = [a for a in assets if not a.startswith("/api/v1/docs/?script")]
    assert all(a.startswith(settings.STATIC_URL) for a in own), assets
    assert not re.search(r"https?://", html)


# --- Where keys come from: the token page and the command ---------------------------------


def test_an_admin_creates_a_token_and_sees_its_key_only_once(funder_admin, client_for):
    colleague = MembershipFactory(organisation=funder_admin.organisation, role=MemberRole.AGENT)
    client = client_for(funder_admin)

    created = client.post("/jetons/", {"name": "Douchette accueil", "membership": colleague.pk})

    assert created.status_code == 200
    key = created.context["new_key"]
    assert key.startswith("apt_")
    html = created.content.decode()
    assert key in html
    assert "Copiez cette clé maintenant" in html
    token = ApiToken.objects.get()
    assert (token.name, token.membership, token.created_by) == (
        "Douchette accueil",
        colleague,
        funder_admin.user,
    )
    assert token.key_hash != key
    assert key not in token.key_hash
    assert token.key_hash == digest(key)
    assert token.prefix == key[:8]

    later = client.get("/jetons/")

    assert later.status_code == 200
    assert key not in later.content.decode()
    assert "Douchette accueil" in later.content.decode()
    assert _client(f"Token {key}").get(ME).json()["email"] == colleague.user.email
    assert AuditEvent.objects.filter(action="orgs.api_token.created").count() == 1


def test_an_admin_cannot_create_a_token_for_another_organisations_member(
    funder_admin, provider_admin, client_for
):
    response = client_for(funder_admin).post(
        "/jetons/", {"name": "intrus", "membership": provider_admin.pk}
    )

    assert response.status_code == 200
    assert response.context["new_key"] is None
    assert "membership" in response.context["form"].errors
    assert not ApiToken.objects.exists()


def test_an_admin_revokes_a_token_from_the_page(funder_admin, client_for):
    key = _key_for(funder_admin)

    response = client_for(funder_admin).post(
        f"/jetons/{ApiToken.objects.get().pk}/revoquer/", follow=True
    )

    assert "Jeton « douchette » révoqué." in response.content.decode()
    _assert_error(_client(f"Token {key}").get(ME), 401, "authentication_failed")


def test_the_command_prints_a_key_that_works(funder_admin):
    out = StringIO()

    call_command(
        "create_api_token",
        "--email",
        funder_admin.user.email.upper(),
        "--org",
        funder_admin.organisation.slug,
        "--name",
        "Caisse",
        stdout=out,
    )

    key = out.getvalue().strip()
    assert key.startswith("apt_")
    assert _client(f"Token {key}").get(ME).json()["organisation"] == funder_admin.organisation.name
    token = ApiToken.objects.get()
    assert (token.name, token.created_by, token.key_hash) == ("Caisse", None, digest(key))


@pytest.mark.parametrize("who", ["unknown-person", "unknown-org", "removed-member"])
def test_the_command_fails_clearly_for_someone_who_is_not_a_member(funder_admin, who):
    email, org = funder_admin.user.email, funder_admin.organisation.slug
    if who == "unknown-person":
        email = "personne@example.org"
    elif who == "unknown-org":
        org = "nulle-part"
    else:
        colleague = MembershipFactory(organisation=funder_admin.organisation, role="agent")
        Membership.objects.filter(pk=colleague.pk).update(removed_at=timezone.now())
        email = colleague.user.email

    with pytest.raises(CommandError, match="No active member"):
        call_command("create_api_token", "--email", email, "--org", org, stdout=StringIO())

    assert not ApiToken.objects.exists()
