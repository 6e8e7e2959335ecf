"""Two settlement runs at once, on PostgreSQL: one batch, one payout per provider, same totals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from redemption.models import Payout, Redemption, SettlementBatch
from redemption.services.redeem import cheques_redeem
from redemption.services.settlement import batch_compute, batch_create
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import actor_for, operator_membership

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_runs_at_once_produce_one_batch_with_each_redemption_paid_once(racing, monkeypatch):
    monkeypatch.setattr("redemption.tasks.compute_batch.delay", lambda batch_id: None)
    monkeypatch.setattr("redemption.tasks.render_statement.delay", lambda payout_id: None)
    world = handed_out_cheques(booklets=3, size=10)
    for index in range(6):
        member, site = accredited_provider_member(services=[world.service])
        for code in world.codes[index * 5 : index * 5 + 3]:
            cheques_redeem(actor=actor_for(member), codes=[code], service=world.service, site=site)
    Redemption.objects.update(created_at=timezone.now() - timedelta(days=1))
    operators = [operator_membership(), operator_membership()]
    period_end = timezone.localdate() - timedelta(days=1)

    created = racing(
        *[lambda o=o: batch_create(actor=actor_for(o), period_end=period_end) for o in operators]
    )
    assert SettlementBatch.objects.count() == 1
    batch = SettlementBatch.objects.get()
    assert any(getattr(result, "pk", None) == batch.pk for result in created)

    racing(*[lambda: batch_compute(batch_id=batch.pk)] * 2)
    batch = batch_compute(batch_id=batch.pk)  # whichever lost a unique race is finished here
    assert batch.status == "pending_approval"
    assert Payout.objects.filter(batch=batch).count() == 6
    assert not Redemption.objects.filter(payout__isnull=True).exists()
    paid = Payout.objects.aggregate(v=Sum("amount_cents"))["v"]
    assert paid == batch.total_cents == Redemption.objects.aggregate(v=Sum("amount_cents"))["v"]
