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


def test_seed_demo_dates_follow_each_other(settings):
    """Issued, then allocated, then handed out, then redeemed, then settled: the demo backdates
    the services' "now" stamps consistently, once (a second run moves nothing)."""
    from django.utils import timezone

    from insight.models import Measure, Tally
    from redemption.models import RedemptionLine

    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    lines = RedemptionLine.objects.filter(live=True).select_related(
        "cheque__booklet__order", "redemption__payout__batch"
    )

    def stamps():
        return [
            (
                line.cheque.booklet.order.approved_at,
                line.cheque.booklet.allocated_at,
                line.cheque.booklet.assigned_at,
                line.redemption.created_at,
            )
            for line in lines.order_by("pk")
        ]

    first = stamps()
    assert first
    now, today = timezone.now(), timezone.localdate()
    for approved, allocated, assigned, redeemed in first:
        assert approved < allocated < assigned < redeemed <= now
    for line in lines:
        assert line.cheque.expires_on >= today
        batch = line.redemption.payout.batch if line.redemption.payout_id else None
        if batch is not None:
            assert timezone.localtime(line.redemption.created_at).date() <= batch.period_end
            if batch.paid_at:
                assert timezone.localtime(batch.paid_at).date() > batch.period_end

    def first_month(measure):
        return min(Tally.objects.filter(measure=measure).values_list("month", flat=True))

    assert (
        first_month(Measure.ISSUED)
        < first_month(Measure.HANDED_OUT)
        < first_month(Measure.REDEEMED)
    )
    call_command("seed_demo", stdout=StringIO())
    assert stamps() == first
