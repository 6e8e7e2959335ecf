"""Dates and times as people read them: « 27/11/2026 à 16:50 », "27/11/2026 at 16:50"."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import pgettext


def date_at_time(value: datetime | None) -> str:
    """The local date and time joined by the language's word for "at" (empty for None)."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    # Translators: a Django date format; letters that are not format codes need a backslash.
    return date_format(value, pgettext("date and time format", "d/m/Y à H:i"))
