"""A lock wait past the timeout answers "busy" (503 with Retry-After), never a 500."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.urls import path

from aptic.urls import urlpatterns as project_urls
from orgs.decorators import membership_required

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
