"""A lock wait past the timeout answers "busy" (503 with Retry-After), never a 500."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.urls import path

from aptic.urls import urlpatterns as project_urls
from orgs.decorators import membership_required
from tests.postgres import another_connection

pytestmark = pytest.mark.django_db


class LockNotAvailable(Exception):
    pass


@membership_required()
def _locked(request):
    try:
        raise LockNotAvailable("canceling statement due to lock timeout")
    except LockNotAvailable as cause:
        raise OperationalError("canceling statement due to lock timeout") from cause


urlpatterns = [path("verrou/", _locked), path("api/v1/verrou/", _locked), *project_urls]


@pytest.mark.urls("tests.test_busy")
def test_a_lock_timeout_is_a_busy_page_and_a_busy_api_answer(client_for, funder_admin):
    client = client_for(funder_admin)
    page = client.get("/verrou/")
    assert page.status_code == 503
    assert page["Retry-After"] == "2"
    assert "réessayez dans quelques secondes" in page.content.decode()
    api = client.get("/api/v1/verrou/")
    assert api.status_code == 503
    assert api.json()["code"] == "busy"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_killed_under_a_request_answers_busy_then_the_next_request_works(
    api_for, provider_admin
):
    """Connections are reused without a health check: the one request that meets a dead one
    answers 503 "busy" (to retry), never a 500, and the next request gets a fresh connection."""
    from django.db import connection

    client = api_for(provider_admin)
    assert client.get("/api/v1/redemptions/").status_code == 200
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    with another_connection() as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", [pid])
    busy = client.get("/api/v1/redemptions/")
    assert busy.status_code == 503
    assert busy.json()["code"] == "busy"
    assert busy["Retry-After"] == "2"
    connection.close_if_unusable_or_obsolete()
    assert client.get("/api/v1/redemptions/").status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_migration_changing_a_read_column_costs_one_busy_answer_then_requests_work(
    api_for, provider_admin
):
    """The reads prepared per connection are refused by PostgreSQL once a column they return
    changes type (a migration run while the servers are up): one 503 "busy", then a fresh
    connection prepares them again."""

    api = api_for(provider_admin)
    for _ in range(3):  # the token read is prepared
        assert api.get("/api/v1/me/").status_code == 200
    with another_connection() as other:
        other.execute("ALTER TABLE orgs_user ALTER COLUMN full_name TYPE varchar(200)")
        try:
            answers = [api.get("/api/v1/me/") for _ in range(3)]
        finally:
            other.execute("ALTER TABLE orgs_user ALTER COLUMN full_name TYPE varchar(150)")
    assert [a.status_code for a in answers] == [503, 200, 200]
    assert answers[0].json()["code"] == "busy"
    assert answers[0]["Retry-After"] == "2"
