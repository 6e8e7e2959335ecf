"""Reads of distribution that depend on who asks: booklets, movements, stock, follow-up.

Each starts from ``visible_to``. Figures are aggregated in the database (``values().annotate``
with filtered counts), so a page costs the same few queries whatever the number of booklets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from orgs.models import Membership, Organisation

from ..models import (
    Booklet,
    BookletMovement,
    BookletStatus,
    Cheque,
    ChequeStatus,
    Programme,
    ValidityKind,
)

EXPIRY_WARNING_DAYS = 30
_NUMBER = re.compile(r"^(.*?)(\d+)$")

# --- Booklets --------------------------------------------------------------------------------


def booklet_list(
    *,
    membership: Membership,
    programme: Programme | None = None,
    status: str = "",
    size: int | None = None,
    holder: Organisation | None = None,
    search: str = "",
    order: str = "recent",
) -> QuerySet[Booklet]:
    """Booklets the caller sees (its own as funder, those it holds), filtered and sorted."""
    booklets = Booklet.objects.visible_to(membership).select_related("programme", "holder")
    if programme is not None:
        booklets = booklets.filter(programme=programme)
    if status:
        booklets = booklets.filter(status=status)
    if size:
        booklets = booklets.filter(size=size)
    if holder is not None:
        booklets = booklets.filter(holder=holder)
    search = (search or "").strip().upper()
    if search:
        booklets = booklets.filter(number__contains=search)
    return booklets.order_by("number" if order == "number" else "-number")


def booklet_filter_programmes(*, membership: Membership) -> QuerySet[Programme]:
    """Programmes of the booklets the caller sees (a distributor sees no programme otherwise)."""
    visible = Booklet.objects.visible_to(membership)
    return Programme.objects.filter(pk__in=visible.values("programme")).order_by("name")


def booklet_filter_holders(*, membership: Membership) -> QuerySet[Organisation]:
    """Distributors holding booklets the caller sees."""
    visible = Booklet.objects.visible_to(membership).filter(holder__isnull=False)
    return Organisation.objects.filter(pk__in=visible.values("holder")).order_by("name")


def booklet_get(*, membership: Membership, number: str) -> Booklet:
    """The booklet with this number if the caller may see it; 404 otherwise."""
    return get_object_or_404(
        Booklet.objects.visible_to(membership).select_related(
            "programme", "funder", "holder", "beneficiary", "assigned_by", "replaces"
        ),
        number=(number or "").strip().upper(),
    )


def booklet_replacement(*, booklet: Booklet) -> Booklet | None:
    """The booklet issued to replace this one (same funder and holder: visible alike)."""
    return Booklet.objects.filter(replaces=booklet).first()


def booklet_cheques(*, booklet: Booklet) -> QuerySet[Cheque]:
    return Cheque.objects.filter(booklet=booklet).order_by("position")


def booklet_movements(*, membership: Membership, booklet: Booklet) -> QuerySet[BookletMovement]:
    """Movements of this booklet the caller took part in (not another holder's history)."""
    return (
        BookletMovement.objects.visible_to(membership)
        .filter(booklets=booklet)
        .select_related("from_organisation", "to_organisation", "actor")
        .order_by("-created_at", "-id")
    )


def may_see_full_codes(*, membership: Membership, booklet: Booklet) -> bool:
    """The funder and the operator read whole cheque codes; a holder sees them masked."""
    organisation = membership.organisation
    return organisation.is_operator or booklet.funder_id == organisation.pk


# --- Allocation and movements ----------------------------------------------------------------


def distributor_choices() -> QuerySet[Organisation]:
    """Every distributor a funder may allocate to (the funder itself when it distributes)."""
    return Organisation.objects.filter(is_distributor=True).order_by("name")


def allocatable_programmes(*, membership: Membership) -> QuerySet[Programme]:
    return Programme.objects.filter(funder=membership.organisation).order_by("-created_at", "name")


def movement_list(*, membership: Membership) -> QuerySet[BookletMovement]:
    return (
        BookletMovement.objects.visible_to(membership)
        .select_related("from_organisation", "to_organisation", "actor")
        .order_by("-created_at", "-id")
    )


# --- Stock -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockRow:
    programme_id: int
    programme_name: str
    size: int
    booklet_value_cents: int
    in_stock: int = 0
    allocated: int = 0
    assigned: int = 0
    blocked: int = 0

    @property
    def total(self) -> int:
        return self.in_stock + self.allocated + self.assigned + self.blocked


def _status_counts() -> dict:
    return {
        status: Count("pk", filter=Q(status=value))
        for status, value in (
            ("in_stock", BookletStatus.IN_STOCK),
            ("allocated", BookletStatus.ALLOCATED),
            ("assigned", BookletStatus.ASSIGNED),
            ("blocked", BookletStatus.BLOCKED),
        )
    }


def _stock_rows(booklets: QuerySet[Booklet]) -> list[StockRow]:
    rows = (
        booklets.values("programme_id", "programme__name", "programme__cheque_value_cents", "size")
        .annotate(**_status_counts())
        .order_by("programme__name", "programme_id", "-size")
    )
    return [
        StockRow(
            programme_id=row["programme_id"],
            programme_name=row["programme__name"],
            size=row["size"],
            booklet_value_cents=row["size"] * row["programme__cheque_value_cents"],
            in_stock=row["in_stock"],
            allocated=row["allocated"],
            assigned=row["assigned"],
            blocked=row["blocked"],
        )
        for row in rows
    ]


def funder_stock(*, membership: Membership) -> list[StockRow]:
    """The funder's booklets per programme and value: in its stock, allocated, handed out…"""
    if not membership.organisation.is_funder:
        return []
    return _stock_rows(Booklet.objects.filter(funder=membership.organisation))


def held_stock(*, membership: Membership) -> list[StockRow]:
    """The booklets the caller's organisation holds as a distributor, per programme and value."""
    if not membership.organisation.is_distributor:
        return []
    return _stock_rows(Booklet.objects.filter(holder=membership.organisation))


@dataclass(frozen=True)
class ExpiryWarning:
    """A fixed-date programme ending soon while booklets are still unused on the shelf."""

    programme: Programme
    last_day: date
    days_left: int
    in_stock: int  # at the funder, never allocated
    allocated: int  # at a distributor, not handed out
    ranges: list[str] = field(default_factory=list)
    more: int = 0  # booklets not listed in ``ranges``


def number_ranges(numbers: Iterable[str]) -> list[tuple[str, str, int]]:
    """Consecutive booklet numbers collapsed: (first, last, count), in number order."""
    ranges: list[list] = []
    previous: tuple[str, int] | None = None
    for number in sorted(numbers):
        match = _NUMBER.match(number)
        key = (match.group(1), int(match.group(2))) if match else (number, -2)
        if ranges and previous and key[0] == previous[0] and key[1] == previous[1] + 1:
            ranges[-1][1] = number
            ranges[-1][2] += 1
        else:
            ranges.append([number, number, 1])
        previous = key
    return [(first, last, count) for first, last, count in ranges]


def _unused_booklets(membership: Membership) -> Q | None:
    """Booklets the caller should still hand on: a funder's stock and allocations, a holder's."""
    organisation = membership.organisation
    condition = None
    if organisation.is_funder:
        condition = Q(
            funder=organisation, status__in=[BookletStatus.IN_STOCK, BookletStatus.ALLOCATED]
        )
    if organisation.is_distributor:
        held = Q(holder=organisation, status=BookletStatus.ALLOCATED)
        condition = held if condition is None else condition | held
    return condition


def expiry_warnings(
    *, membership: Membership, today: date | None = None, max_ranges: int = 6
) -> list[ExpiryWarning]:
    """Fixed-date programmes whose last valid day is within 30 days, with unused booklets.

    One query when no programme ends soon (the usual case, on every home page), two otherwise.
    """
    condition = _unused_booklets(membership)
    if condition is None:
        return []
    today = today or timezone.localdate()
    horizon = today + timedelta(days=EXPIRY_WARNING_DAYS)
    # valid_until <= last_valid_day (the tolerance is not negative): the database narrows to
    # programmes ending by the horizon, Python keeps those whose last day is still to come.
    organisation = membership.organisation
    concerned = Q(pk__in=Booklet.objects.filter(holder=organisation).values("programme"))
    if organisation.is_funder:
        concerned |= Q(funder=organisation)
    programmes = Programme.objects.filter(
        concerned, validity_kind=ValidityKind.FIXED_DATE, valid_until__lte=horizon
    )
    ending = {p.pk: p for p in programmes if today <= p.last_valid_day <= horizon}
    if not ending:
        return []
    rows = (
        Booklet.objects.filter(condition, programme_id__in=list(ending))
        .values_list("programme_id", "status", "number")
        .order_by("number")
    )
    grouped: dict[int, dict] = {}
    for programme_id, status, number in rows:
        entry = grouped.setdefault(programme_id, {"in_stock": 0, "allocated": 0, "numbers": []})
        entry["in_stock" if status == BookletStatus.IN_STOCK else "allocated"] += 1
        entry["numbers"].append(number)
    warnings = []
    for programme_id, entry in grouped.items():
        programme = ending[programme_id]
        ranges = number_ranges(entry["numbers"])
        warnings.append(
            ExpiryWarning(
                programme=programme,
                last_day=programme.last_valid_day,
                days_left=(programme.last_valid_day - today).days,
                in_stock=entry["in_stock"],
                allocated=entry["allocated"],
                ranges=[
                    first if first == last else f"{first} → {last}"
                    for first, last, _count in ranges[:max_ranges]
                ],
                more=sum(count for _first, _last, count in ranges[max_ranges:]),
            )
        )
    return sorted(warnings, key=lambda w: (w.last_day, w.programme.name))


# --- Follow-up -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUpRow:
    """One line of the follow-up: a distributor (for a funder) or an agent (for a distributor)."""

    key: int | None
    label: str
    in_stock: int
    allocated: int
    handed_out: int
    started: int
    blocked: int


def _period(since: date | None, until: date | None) -> Q:
    """Hand-overs between two local dates, both included."""
    condition = Q()
    zone = timezone.get_current_timezone()
    if since:
        condition &= Q(assigned_at__gte=datetime.combine(since, time.min, tzinfo=zone))
    if until and until < date.max:  # up to the last possible day: no upper bound at all
        end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)
        condition &= Q(assigned_at__lt=end)
    return condition


def _follow_up_counts(since: date | None, until: date | None) -> dict:
    """Filtered counts: current stock states, and hand-overs (within the period when given)."""
    handed_out = Q(status=BookletStatus.ASSIGNED) & _period(since, until)
    started = Exists(Cheque.objects.filter(booklet=OuterRef("pk"), status=ChequeStatus.REDEEMED))
    return {
        "n_in_stock": Count("pk", filter=Q(status=BookletStatus.IN_STOCK)),
        "n_allocated": Count("pk", filter=Q(status=BookletStatus.ALLOCATED)),
        "n_handed_out": Count("pk", filter=handed_out),
        "n_started": Count("pk", filter=handed_out & Q(started)),
        "n_blocked": Count("pk", filter=Q(status=BookletStatus.BLOCKED)),
    }


def _rows(queryset, key: str, label) -> list[FollowUpRow]:
    return [
        FollowUpRow(
            key=row[key],
            label=label(row),
            in_stock=row["n_in_stock"],
            allocated=row["n_allocated"],
            handed_out=row["n_handed_out"],
            started=row["n_started"],
            blocked=row["n_blocked"],
        )
        for row in queryset
    ]


def follow_up_by_distributor(
    *,
    membership: Membership,
    programme: Programme | None = None,
    since: date | None = None,
    until: date | None = None,
    stock_label: str = "",
) -> list[FollowUpRow]:
    """A funder's booklets per holding distributor (its unallocated stock on a line of its own).

    Stock, allocation and blocking are today's state; hand-overs count within the period.
    One query whatever the number of booklets and distributors.
    """
    organisation = membership.organisation
    booklets = Booklet.objects.visible_to(membership)
    if not organisation.is_operator:
        booklets = booklets.filter(funder=organisation)
    if programme is not None:
        booklets = booklets.filter(programme=programme)
    rows = (
        booklets.values("holder_id", "holder__name")
        .annotate(**_follow_up_counts(since, until))
        .order_by("holder__name", "holder_id")
    )
    found = _rows(rows, "holder_id", lambda row: row["holder__name"] or stock_label)
    # The funder's own stock first, then distributors by name.
    return sorted(found, key=lambda r: (r.key is not None, r.label.casefold()))


def follow_up_by_agent(
    *,
    membership: Membership,
    programme: Programme | None = None,
    since: date | None = None,
    until: date | None = None,
    pending_label: str = "",
) -> list[FollowUpRow]:
    """A distributor's booklets per agent who handed them out (not yet handed out: one line)."""
    booklets = Booklet.objects.filter(holder=membership.organisation)
    if programme is not None:
        booklets = booklets.filter(programme=programme)
    rows = (
        booklets.values("assigned_by_id", "assigned_by__full_name", "assigned_by__email")
        .annotate(**_follow_up_counts(since, until))
        .order_by("assigned_by__full_name", "assigned_by_id")
    )
    found = _rows(
        rows,
        "assigned_by_id",
        lambda row: (
            (row["assigned_by__full_name"] or row["assigned_by__email"])
            if row["assigned_by_id"]
            else pending_label
        ),
    )
    return sorted(found, key=lambda r: (r.key is None, r.label.casefold()))


def follow_up_programmes(*, membership: Membership) -> QuerySet[Programme]:
    """Programmes of the booklets the caller funds or holds (the follow-up filter)."""
    organisation = membership.organisation
    booklets = Booklet.objects.visible_to(membership)
    if not organisation.is_operator:
        booklets = booklets.filter(Q(funder=organisation) | Q(holder=organisation))
    return Programme.objects.filter(pk__in=booklets.values("programme")).order_by("name")
