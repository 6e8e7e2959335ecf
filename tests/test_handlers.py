"""The WSGI application sends token API requests through the shorter middleware stack."""

from __future__ import annotations

import io
import sys

import pytest
from django.conf import settings
from django.core import signals
from django.db import OperationalError, close_old_connections
from django.urls import path

from aptic.handlers import carries_api_token
from aptic.urls import urlpatterns as project_urls
from orgs.audit import Actor
from orgs.authentication import ApiTokenAuthentication
from orgs.services import api_token_create

pytestmark = pytest.mark.django_db


class LockNotAvailable(Exception):
    pass


def _locked(request):
    try:
        raise LockNotAvailable("canceling statement due to lock timeout")
    except LockNotAvailable as cause:
        raise OperationalError("canceling statement due to lock timeout") from cause


urlpatterns = [path("api/v1/verrou/", _locked), *project_urls]


@pytest.mark.parametrize(
    ("path_info", "authorization", "expected"),
    [
        ("/api/v1/redemptions/", "Token abc", True),
        ("/api/v1/redemptions/", "token abc", True),
        ("/api/v1/redemptions/", "TOKEN\tabc", True),
        ("/api/v1/redemptions/", "Token", True),  # refused by the token authentication: 401
        ("/api/v1/redemptions/", "Bearer abc", False),
        ("/api/v1/redemptions/", "Tokenabc", False),
        ("/api/v1/redemptions/", "", False),
        ("/encaissements/", "Token abc", False),
        ("/apiv1/", "Token abc", False),
    ],
)
def test_a_token_request_is_recognised_as_the_token_authentication_reads_it(
    path_info, authorization, expected
):
    assert carries_api_token(path_info, authorization) is expected
    if path_info.startswith("/api/"):  # the token authentication takes exactly these headers
        scheme = authorization.encode().split()
        keyword = ApiTokenAuthentication.keyword.lower().encode()
        assert (bool(scheme) and scheme[0].lower() == keyword) is expected


def test_the_short_stack_is_the_full_one_without_the_browser_middlewares():
    short, full = settings.TOKEN_API_MIDDLEWARE, settings.MIDDLEWARE
    assert [m for m in full if m in short] == short  # a subset, in the same order
    assert "django.middleware.security.SecurityMiddleware" in short
    assert "aptic.middleware.BusyDatabaseMiddleware" in short
    for browser_only in (
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "security.middleware.TwoFactorMiddleware",
    ):
        assert browser_only not in short


@pytest.fixture
def wsgi(monkeypatch):
    """Call ``aptic.wsgi.application`` as gunicorn does; the test's connection stays open."""
    from aptic.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)

    def call(path_info: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path_info,
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
        }
        answer = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = {name.lower(): value for name, value in response_headers}

        body = b"".join(application(environ, start_response))
        return answer["status"], answer["headers"], body

    yield call
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _token(membership) -> str:
    return api_token_create(actor=Actor.system(), membership=membership, name="wsgi")[1]


def test_the_server_answers_token_requests_without_session_or_page_headers(wsgi, provider_admin):
    status, headers, body = wsgi(
        "/api/v1/redemptions/", authorization=f"Token {_token(provider_admin)}"
    )
    assert status == 200
    assert b'"results"' in body
    assert "set-cookie" not in headers
    assert "content-security-policy" not in headers
    assert "cookie" not in headers.get("vary", "").lower()
    assert headers["x-content-type-options"] == "nosniff"  # SecurityMiddleware still runs
    assert headers["x-frame-options"] == "DENY"


def test_the_server_answers_pages_and_session_api_calls_through_the_whole_stack(wsgi):
    status, headers, _body = wsgi("/ou-utiliser/")
    assert status == 200
    assert "content-security-policy" in headers
    status, headers, body = wsgi("/api/v1/redemptions/")  # no token: the session's checks
    assert status in (401, 403)
    assert b'"code"' in body
    assert "cookie" in headers.get("vary", "").lower()


def test_token_errors_stay_json_on_the_short_stack(wsgi, provider_admin):
    status, _headers, body = wsgi("/api/v1/redemptions/", authorization="Token not-a-token")
    assert status == 401
    assert b'"code"' in body
    key = _token(provider_admin)
    status, _headers, body = wsgi("/api/v1/nothing-here/", authorization=f"Token {key}")
    assert status == 404
    assert b'"not_found"' in body
    # The API's documentation page renders its template (context processors) without a session.
    status, _headers, body = wsgi("/api/v1/docs/", authorization=f"Token {key}")
    assert status == 200
    assert b"swagger" in body.lower()


@pytest.mark.urls("tests.test_handlers")
def test_a_lock_timeout_is_a_busy_answer_on_the_short_stack(wsgi, provider_admin):
    status, headers, body = wsgi("/api/v1/verrou/", authorization=f"Token {_token(provider_admin)}")
    assert status == 503
    assert headers["retry-after"] == "2"
    assert b'"busy"' in body


def test_the_api_test_client_takes_the_short_stack_like_the_server(
    api_for, client_for, provider_admin
):
    by_token = api_for(provider_admin).get("/api/v1/redemptions/")
    assert by_token.status_code == 200
    assert not hasattr(by_token.wsgi_request, "session")
    by_session = client_for(provider_admin).get("/api/v1/redemptions/")
    assert by_session.status_code == 200
    assert hasattr(by_session.wsgi_request, "session")
