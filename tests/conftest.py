"""Shared fixtures: organisations of each role, members, signed-in clients, API clients."""

from __future__ import annotations

import functools

import pytest
from django.db import connection
from rest_framework.test import APIClient, ForceAuthClientHandler

from aptic.celery import app as celery_app
from aptic.handlers import TokenApiMiddleware, carries_api_token
from orgs.audit import Actor
from orgs.models import MemberRole
from orgs.services import api_token_create
from security.selectors import user_requires_two_factor
from tests.factories import MembershipFactory, OrganisationFactory
from tests.security.helpers import verify_second_factor


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests skip, with the reason, on another database."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL (set DATABASE_URL or start PostgreSQL on 127.0.0.1:5432)"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _tasks_run_in_process():
    # Tests run tasks in-process unless a test starts a real worker itself.
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 is deliberately slow; tests create many users and sign them in.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@functools.cache
def _postcode_rows() -> list[tuple[str, float, float, str]]:
    from orgs.geo import postcode_points

    return [(code, *point) for code, point in sorted(postcode_points().items())]


@pytest.fixture(autouse=True)
def _postcodes_loaded(request):
    """Refill the postcode table that a transactional test's flush emptied.

    The data migration fills it once per test database; ``transaction=True`` tests (browser,
    concurrency) truncate every table when they end.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker and marker.kwargs.get("transaction")) or (
        "transactional_db" in request.fixturenames or "live_server" in request.fixturenames
    )
    if transactional:
        request.getfixturevalue("transactional_db")
    elif marker or "db" in request.fixturenames:
        request.getfixturevalue("db")
    else:
        return
    from orgs.models import Postcode

    if not Postcode.objects.exists():
        Postcode.objects.bulk_create(
            Postcode(code=code, latitude=lat, longitude=lon, departement=dep)
            for code, lat, lon, dep in _postcode_rows()
        )


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def _member(role_flags: dict, member_role: str = MemberRole.ADMIN, **org):
    flags = {"is_funder": False, "is_distributor": False, "is_provider": False}
    organisation = OrganisationFactory(**{**flags, **role_flags}, **org)
    return MembershipFactory(organisation=organisation, role=member_role)


@pytest.fixture
def operator_admin(db):
    return _member({"is_operator": True}, name="Médias-Cité")


@pytest.fixture
def funder_admin(db):
    return _member({"is_funder": True})


@pytest.fixture
def distributor_admin(db):
    return _member({"is_distributor": True})


@pytest.fixture
def provider_admin(db):
    return _member({"is_provider": True})


@pytest.fixture
def client_for():
    """A Django test client signed in as the given membership, acting for it."""
    from django.test import Client

    def make(membership):
        client = Client()
        client.force_login(membership.user)
        session = client.session
        session["membership_id"] = membership.pk
        session.save()
        if user_requires_two_factor(user=membership.user):
            # Operators cannot go past the second sign-in step without a verified authenticator.
            verify_second_factor(client, membership.user)
        return client

    return make


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's signed-in superuser, past the second sign-in step staff accounts need."""
    client.force_login(admin_user)
    verify_second_factor(client, admin_user)
    return client


class _TokenApiClientHandler(TokenApiMiddleware, ForceAuthClientHandler):
    pass


class _SplitClientHandler(ForceAuthClientHandler):
    """The test client's handler, split as ``aptic.wsgi.application`` is: requests carrying an
    API token go through ``TOKEN_API_MIDDLEWARE``, the others through ``MIDDLEWARE``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.token_api = _TokenApiClientHandler(*args, **kwargs)

    def __call__(self, environ):
        if carries_api_token(environ.get("PATH_INFO", ""), environ.get("HTTP_AUTHORIZATION", "")):
            self.token_api._force_user = self._force_user
            self.token_api._force_token = self._force_token
            return self.token_api(environ)
        return super().__call__(environ)


@pytest.fixture
def api_for():
    """An API client authenticated by a fresh token bound to the given membership, served by
    the same handlers as in production (token API requests take the shorter stack)."""

    def make(membership):
        _token, key = api_token_create(actor=Actor.system(), membership=membership, name="test")
        client = APIClient()
        client.handler = _SplitClientHandler(enforce_csrf_checks=False)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make
