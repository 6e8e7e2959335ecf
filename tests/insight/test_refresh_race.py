"""Rebuilding the tallies on PostgreSQL while another rebuild runs: never doubled, never stuck."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from insight.models import Snapshot, Tally
from insight.services import insight_refresh
from tests.concurrency.conftest import race
from tests.insight.helpers import funded_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _tallies() -> list[tuple]:
    return sorted(
        Tally.objects.values_list(
            "month", "measure", "dimension", "key", "programme_id", "quantity", "amount_cents"
        )
    )


def test_two_rebuilds_at_once_leave_one_set_of_tallies():
    funded_world(booklets=3, redeem_per_booklet=2)
    insight_refresh()
    expected = _tallies()

    results = race(insight_refresh, insight_refresh)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert any(isinstance(r, Snapshot) for r in results)
    assert _tallies() == expected  # a second, overlapping rebuild would have doubled them


def test_a_rebuild_skips_at_once_while_another_holds_the_snapshot():
    funded_world(booklets=1, redeem_per_booklet=1)
    insight_refresh()
    held, release = threading.Event(), threading.Event()

    def rebuilding_elsewhere():
        try:
            with transaction.atomic():
                Snapshot.objects.select_for_update().get(pk=1)
                held.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=rebuilding_elsewhere)
    thread.start()
    assert held.wait(10)
    try:
        assert insight_refresh() is None  # no wait for the lock, nothing rebuilt twice
    finally:
        release.set()
        thread.join()
    assert isinstance(insight_refresh(), Snapshot)  # free again
