"""``seed_demo`` publishes its passwords and TOTP key: it refuses to run on production settings."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orgs.models import User

pytestmark = pytest.mark.django_db


def test_seed_demo_refuses_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--allow-without-debug"):
        call_command("seed_demo", stdout=StringIO())

    assert not User.objects.exists()


def test_seed_demo_runs_with_debug_or_the_explicit_flag(settings):
    settings.DEBUG = False
    out = StringIO()

    call_command("seed_demo", "--allow-without-debug", stdout=out)

    assert "Demo data ready" in out.getvalue()
    assert User.objects.filter(email__endswith=".demo").exists()
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())  # idempotent
