"""Reminders by e-mail: unused booklets of a programme that ends soon.

The stock pages already show these warnings to whoever signs in; the e-mail reaches the admins
of the funder and of each distributor still holding such booklets, 30 and 7 days before the
programme's last valid day, so that the cheques are handed out before they are lost.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from orgs.audit import Actor, audit_record
from orgs.models import AuditEvent, Organisation
from orgs.notifications import email_on_commit
from orgs.selectors import organisation_admin_emails

from ..models import Booklet, BookletStatus, Programme, ValidityKind

WARN_DAYS_BEFORE = (30, 7)
ACTION = "vouchers.programme.expiry_warned"


def _threshold(days_left: int) -> int | None:
    """The warning due with ``days_left`` days to go: the closest of WARN_DAYS_BEFORE reached."""
    reached = [days for days in WARN_DAYS_BEFORE if days_left <= days]
    return min(reached) if reached else None


def booklets_expiry_warn(*, today: date | None = None) -> int:
    """Daily: warn each organisation with unused booklets of a programme ending within 30 days.

    The warning at 30 days goes out on the first run 30 days or fewer before the programme's
    last valid day, the one at 7 days likewise: a run missed (worker down that day) is caught up
    by the next one, which says how many days are really left. Returns how many organisations
    were warned. Idempotent: each (programme, organisation, threshold) is warned once,
    recorded by its audit event; a second run the same day sends nothing.
    """
    today = today or timezone.localdate()
    warned = 0
    # valid_until <= last valid day: a cheap bound; the tolerance is added per programme.
    candidates = Programme.objects.filter(
        validity_kind=ValidityKind.FIXED_DATE,
        valid_until__lte=today + timedelta(days=max(WARN_DAYS_BEFORE)),
    )
    for programme in candidates:
        last_day = programme.last_valid_day
        if last_day is None or last_day < today:
            continue
        days_left = (last_day - today).days
        threshold = _threshold(days_left)
        if threshold is None:
            continue
        unused: Counter[int] = Counter()
        for funder_id, holder_id, status in Booklet.objects.filter(
            programme=programme, status__in=[BookletStatus.IN_STOCK, BookletStatus.ALLOCATED]
        ).values_list("funder_id", "holder_id", "status"):
            unused[funder_id] += 1  # the funder follows all of its unused booklets
            if status == BookletStatus.ALLOCATED and holder_id and holder_id != funder_id:
                unused[holder_id] += 1
        for organisation_id, count in sorted(unused.items()):
            warned += _warn(programme.pk, organisation_id, threshold, days_left, count)
    return warned


@transaction.atomic
def _warn(programme_id: int, organisation_id: int, days: int, days_left: int, count: int) -> int:
    # The programme row lock serialises two runs at once: only one finds no earlier warning.
    programme = Programme.objects.select_for_update().get(pk=programme_id)
    organisation = Organisation.objects.get(pk=organisation_id)
    already = AuditEvent.objects.filter(
        action=ACTION,
        target_id=str(programme.pk),
        organisation=organisation,
        data__days=days,
    ).exists()
    if already:
        return 0
    audit_record(
        actor=Actor.system(),
        action=ACTION,
        target=programme,
        organisation=organisation,
        data={"days": days, "days_left": days_left, "booklets": count},
    )
    emails = organisation_admin_emails(organisation=organisation)
    if emails:
        email_on_commit(
            to=emails,
            template="booklets_expiring",
            organisation=organisation,
            context={
                "programme": programme.name,
                "last_day": programme.last_valid_day,
                "days": days_left,
                "booklets": count,
                "stock_path": reverse("vouchers:stock"),
            },
        )
    return 1
