"""Reads of the redemption app that depend on who asks. Each starts from ``visible_to``."""

from __future__ import annotations

import functools

from django.db import connections, router
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from aptic import rows
from orgs.models import AccreditationSite, Membership, ServiceCategory

from .models import Redemption


def redemption_list(*, membership: Membership) -> QuerySet[Redemption]:
    return (
        Redemption.objects.visible_to(membership)
        .select_related("service", "site", "agent")
        .prefetch_related("lines__cheque")
        .order_by("-created_at", "-id")
    )


def redemption_get(*, membership: Membership, pk: int) -> Redemption:
    return get_object_or_404(redemption_list(membership=membership), pk=pk)


def provider_sites(*, membership: Membership) -> QuerySet[AccreditationSite]:
    """The caller's approved, active sites."""
    return (
        AccreditationSite.objects.filter(
            accreditation__organisation=membership.organisation, is_approved=True, is_active=True
        )
        .prefetch_related("services")
        .order_by("name")
    )


def provider_services(*, membership: Membership) -> QuerySet[ServiceCategory]:
    """Services offered at any of the caller's sites."""
    return (
        ServiceCategory.objects.filter(
            is_active=True, sites__in=provider_sites(membership=membership)
        )
        .distinct()
        .order_by("name")
    )


@functools.cache
def _active_service_sql(db: str) -> str:
    qn = connections[db].ops.quote_name
    meta = ServiceCategory._meta
    return (
        f"SELECT {', '.join(rows.columns(ServiceCategory, 's', db).select)}"  # noqa: S608 - _meta
        f" FROM {qn(meta.db_table)} s WHERE s.{qn(meta.get_field('slug').column)} = %s"
        f" AND s.{qn(meta.get_field('is_active').column)}"
    )


def active_service(*, slug: str) -> ServiceCategory | None:
    """The catalogue service with this slug if it is offered (any provider may name it).

    ``ServiceCategory.objects.filter(slug=slug, is_active=True).first()`` from SQL written once:
    it is read on every redemption through the API.
    """
    db = router.db_for_read(ServiceCategory)
    with rows.prepared_cursor(db) as cursor:
        cursor.execute(_active_service_sql(db), [slug])
        row = cursor.fetchone()
    if row is None:
        return None
    return rows.instance(ServiceCategory, rows.columns(ServiceCategory, "s", db), db, list(row))


def fraud_signals(*, membership: Membership, days: int = 7) -> dict:
    """For operators: active lock-outs and failed scans per organisation over ``days`` days."""
    from datetime import timedelta

    from django.db.models import Count
    from django.utils import timezone

    from .models import Lockout, Reason, ScanAttempt

    since = timezone.now() - timedelta(days=days)
    failures = (
        ScanAttempt.objects.visible_to(membership)
        .filter(created_at__gte=since)
        .values("organisation__name", "reason")
        .annotate(count=Count("id"))
        .order_by("organisation__name", "-count")
    )
    return {
        "lockouts": list(
            Lockout.objects.active().select_related("organisation").order_by("-started_at")
        ),
        "recent_lockouts": list(
            Lockout.objects.filter(started_at__gte=since)
            .select_related("organisation")
            .order_by("-started_at")[:50]
        ),
        # Each reason with its label, as the counter shows it (the code stays for the API).
        "failures": [
            {
                **row,
                "reason_label": Reason(row["reason"]).label
                if row["reason"] in Reason
                else row["reason"],
            }
            for row in failures
        ],
        "days": days,
    }
