"""Gap-free yearly numbering under a row lock: order references and booklet numbers."""

from __future__ import annotations

from django.db import transaction

from .models import YearlyCounter


def counter_take(*, name: str, year: int, count: int = 1) -> int:
    """Reserve ``count`` consecutive numbers and return the first.

    Must run inside the caller's transaction: the row lock is held until it commits, so two
    callers never get the same number, and a rolled-back caller gives its numbers back (no gap).
    """
    assert transaction.get_connection().in_atomic_block, "counter_take needs a transaction"
    YearlyCounter.objects.get_or_create(name=name, year=year)
    counter = YearlyCounter.objects.select_for_update().get(name=name, year=year)
    first = counter.value + 1
    counter.value += count
    counter.save(update_fields=["value"])
    return first


def order_reference(year: int, number: int) -> str:
    return f"CMD-{year}-{number:06d}"


def booklet_number(year: int, number: int) -> str:
    return f"AP{year % 100:02d}-{number:07d}"
