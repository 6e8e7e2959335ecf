"""Dates with their time read naturally in each language."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import translation

from aptic.dates import date_at_time

MOMENT = datetime(2026, 11, 27, 15, 50, tzinfo=UTC)  # 16:50 in Paris


def test_french_says_a_and_english_says_at_in_local_time():
    with translation.override("fr"):
        assert date_at_time(MOMENT) == "27/11/2026 à 16:50"
    with translation.override("en"):
        assert date_at_time(MOMENT) == "27/11/2026 at 16:50"
    assert date_at_time(None) == ""
