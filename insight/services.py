"""Rebuilding the dashboards' monthly tallies from the source tables."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, DateField, F, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from redemption.models import RedemptionLine, RedemptionStatus, ScanAttempt
from vouchers.models import Booklet, Cheque, ChequeStatus

from .models import Dimension, Measure, Snapshot, Tally

SNAPSHOT_PK = 1
_QUEUED_KEY = "insight:refresh-queued"

# The breakdowns of redeemed cheques: the dimension and the path from a redemption line.
REDEEMED_BREAKDOWNS: dict[str, object] = {
    Dimension.SERVICE: F("redemption__service_id"),
    # The redemption site's place; the provider's address when no site was recorded.
    Dimension.DEPARTEMENT: Coalesce(
        "redemption__site__departement", "redemption__provider__departement"
    ),
    Dimension.POSTCODE: Coalesce("redemption__site__postcode", "redemption__provider__postcode"),
    Dimension.DISTRIBUTOR: Value(""),
    Dimension.AGE_BRACKET: F("cheque__booklet__beneficiary__age_bracket"),
    Dimension.SITUATION: F("cheque__booklet__beneficiary__situation"),
}


def _month(field: str) -> TruncMonth:
    return TruncMonth(field, output_field=DateField())


def _tallies() -> Iterator[Tally]:
    """Every tally, computed with one GROUP BY query per measure and breakdown."""
    booklet_value = F("size") * F("programme__cheque_value_cents")
    issued = (
        Booklet.objects.values("programme_id", "funder_id", month=_month("created_at"))
        .annotate(quantity=Sum("size"), amount=Sum(booklet_value), booklets=Count("pk"))
        .order_by()
    )
    for row in issued:
        yield Tally(measure=Measure.ISSUED, **_common(row), booklets=row["booklets"])

    handed_out = (
        Booklet.objects.filter(assigned_at__isnull=False)
        .values("programme_id", "funder_id", "holder_id", month=_month("assigned_at"))
        .annotate(quantity=Sum("size"), amount=Sum(booklet_value), booklets=Count("pk"))
        .order_by()
    )
    for row in handed_out:
        yield Tally(
            measure=Measure.HANDED_OUT,
            dimension=Dimension.DISTRIBUTOR,
            organisation_id=row["holder_id"],
            booklets=row["booklets"],
            **_common(row),
        )

    handed_redeemed = (
        Cheque.objects.filter(booklet__assigned_at__isnull=False, status=ChequeStatus.REDEEMED)
        .values(
            programme_id=F("booklet__programme_id"),
            funder_id=F("booklet__funder_id"),
            holder_id=F("booklet__holder_id"),
            month=_month("booklet__assigned_at"),
        )
        .annotate(quantity=Count("pk"), amount=Sum("value_cents"))
        .order_by()
    )
    for row in handed_redeemed:
        yield Tally(
            measure=Measure.HANDED_REDEEMED,
            dimension=Dimension.DISTRIBUTOR,
            organisation_id=row["holder_id"],
            **_common(row),
        )

    expired = (
        Cheque.objects.filter(status=ChequeStatus.EXPIRED, expires_on__isnull=False)
        .values(
            programme_id=F("booklet__programme_id"),
            funder_id=F("booklet__funder_id"),
            month=_month("expires_on"),
        )
        .annotate(quantity=Count("pk"), amount=Sum("value_cents"))
        .order_by()
    )
    for row in expired:
        yield Tally(measure=Measure.EXPIRED, **_common(row))

    lines = RedemptionLine.objects.filter(live=True, redemption__status=RedemptionStatus.ACTIVE)
    for dimension, path in REDEEMED_BREAKDOWNS.items():
        group = {
            "programme_id": F("cheque__booklet__programme_id"),
            "funder_id": F("cheque__booklet__funder_id"),
            "key": path,
            "month": _month("redemption__created_at"),
        }
        if dimension == Dimension.DISTRIBUTOR:
            group["holder_id"] = F("cheque__booklet__holder_id")
        rows = (
            lines.values(**group)
            .annotate(quantity=Count("pk"), amount=Sum("value_cents"))
            .order_by()
        )
        for row in rows:
            yield Tally(
                measure=Measure.REDEEMED,
                dimension=dimension,
                key=str(row["key"] if row["key"] is not None else ""),
                organisation_id=row.get("holder_id"),
                **_common(row),
            )

    scans = (
        ScanAttempt.objects.values("organisation_id", key=F("reason"), month=_month("created_at"))
        .annotate(quantity=Count("pk"))
        .order_by()
    )
    for row in scans:
        yield Tally(
            measure=Measure.FAILED_SCANS,
            month=row["month"],
            dimension=Dimension.REASON,
            key=row["key"],
            organisation_id=row["organisation_id"],
            quantity=row["quantity"],
        )


def _common(row: dict) -> dict:
    return {
        "month": row["month"],
        "programme_id": row["programme_id"],
        "funder_id": row["funder_id"],
        "quantity": row["quantity"] or 0,
        "amount_cents": row.get("amount") or 0,
    }


def insight_refresh() -> Snapshot | None:
    """Rebuild every tally from the source tables, in one transaction.

    Dashboards read either the previous tallies or the new ones, never a mix. When another
    rebuild holds the snapshot row, this one returns None at once: that rebuild is as fresh.
    Running it twice gives the same tallies (nothing is accumulated).
    """
    started = time.perf_counter()
    with transaction.atomic():
        snapshot = (
            Snapshot.objects.select_for_update(skip_locked=True).filter(pk=SNAPSHOT_PK).first()
        )
        if snapshot is None:
            if Snapshot.objects.filter(pk=SNAPSHOT_PK).exists():
                return None  # another rebuild is running
            snapshot = Snapshot.objects.create(pk=SNAPSHOT_PK)
        Tally.objects.all().delete()
        created = Tally.objects.bulk_create(_tallies(), batch_size=5000)
        snapshot.refreshed_at = timezone.now()
        snapshot.rows = len(created)
        snapshot.duration_ms = round((time.perf_counter() - started) * 1000)
        snapshot.save(update_fields=["refreshed_at", "rows", "duration_ms"])
    cache.delete(_QUEUED_KEY)
    return snapshot


def insight_refresh_if_stale(*, snapshot: Snapshot | None) -> bool:
    """Queue a rebuild when the tallies are older than ``INSIGHT_MAX_AGE_SECONDS``; True if queued.

    At most one rebuild is queued at a time (a cache key), after the current transaction.
    """
    max_age = timedelta(seconds=settings.INSIGHT_MAX_AGE_SECONDS)
    if (
        snapshot is not None
        and snapshot.refreshed_at
        and (timezone.now() - snapshot.refreshed_at < max_age)
    ):
        return False
    if not cache.add(_QUEUED_KEY, 1, timeout=int(max_age.total_seconds())):
        return False
    from .tasks import refresh_insight

    refresh_insight.delay_on_commit()
    return True
