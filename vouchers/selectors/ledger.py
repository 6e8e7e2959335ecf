"""Reads of the funders' accounts: balances per programme, entries, credit notes.

A funder sees its own accounts, operators see every funder's. ``held`` is the money the operator
holds for the funder (every ledger row but the fee). An account **balances** when ``held``
equals what the cheques say it should be:

    held == awaiting issuance + active + redeemed not yet paid + blocked + expired

where cheques whose value a credit note gave back are left out, and « redeemed not yet paid »
is redeemed cheques minus those in a payout marked paid. The two sides come from independent
sources (ledger rows; cheques and payouts), so an imbalance points at a real inconsistency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from orgs.models import Organisation

from ..models import (
    Cheque,
    ChequeStatus,
    CreditNote,
    LedgerEntry,
    LedgerKind,
    Order,
    OrderStatus,
    Programme,
)
from ..services.ledger import PAYOUT_PAID

if TYPE_CHECKING:
    from orgs.models import Membership


def _until(at: date | datetime | None) -> Q:
    """Rows up to ``at``: a datetime (inclusive), or a whole day (Paris time)."""
    if at is None:
        return Q()
    if isinstance(at, datetime):
        return Q(created_at__lte=at)
    if at >= date.max:  # the last possible day: every row
        return Q()
    next_day = datetime.combine(
        at + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone()
    )
    return Q(created_at__lt=next_day)


def _sums_by_kind() -> dict:
    return {
        "paid_in": Sum("amount_cents", filter=Q(kind=LedgerKind.PAID_IN), default=0),
        "fees": Sum("amount_cents", filter=Q(kind=LedgerKind.FEE), default=0),
        "paid_to_providers": Sum(
            "amount_cents", filter=Q(kind=LedgerKind.PAID_TO_PROVIDERS), default=0
        ),
        "credited": Sum("amount_cents", filter=Q(kind=LedgerKind.CREDITED), default=0),
        "held": Sum("amount_cents", filter=~Q(kind=LedgerKind.FEE), default=0),
    }


@dataclass(frozen=True)
class Breakdown:
    """What the held value is, according to the cheques (now)."""

    awaiting_issue_cents: int = 0
    active_cents: int = 0
    redeemed_unpaid_cents: int = 0
    blocked_cents: int = 0
    expired_cents: int = 0

    @property
    def total_cents(self) -> int:
        return (
            self.awaiting_issue_cents
            + self.active_cents
            + self.redeemed_unpaid_cents
            + self.blocked_cents
            + self.expired_cents
        )


@dataclass(frozen=True)
class ProgrammeAccount:
    """One funder's account for one programme. Amounts are signed sums of ledger rows."""

    programme: Programme
    paid_in_cents: int
    fee_cents: int
    paid_to_providers_cents: int  # ≤ 0: money out to providers
    credited_cents: int  # ≤ 0: unused value given back
    held_cents: int
    breakdown: Breakdown | None  # None for an account read at a past date
    credit_note: CreditNote | None

    @property
    def funder(self) -> Organisation:
        return self.programme.funder

    @property
    def paid_out_cents(self) -> int:
        return -self.paid_to_providers_cents

    @property
    def returned_cents(self) -> int:
        return -self.credited_cents

    @property
    def difference_cents(self) -> int | None:
        return None if self.breakdown is None else self.held_cents - self.breakdown.total_cents

    @property
    def balances(self) -> bool | None:
        return None if self.breakdown is None else self.difference_cents == 0


def _breakdowns(programmes: QuerySet[Programme]) -> dict[int, Breakdown]:
    """The current breakdown of every programme's held value, from cheques and payouts."""
    cheques = (
        Cheque.objects.filter(booklet__programme__in=programmes, credited__isnull=True)
        .values("booklet__programme_id")
        .annotate(
            active=Sum("value_cents", filter=Q(status=ChequeStatus.ACTIVE), default=0),
            redeemed=Sum("value_cents", filter=Q(status=ChequeStatus.REDEEMED), default=0),
            blocked=Sum("value_cents", filter=Q(status=ChequeStatus.BLOCKED), default=0),
            expired=Sum("value_cents", filter=Q(status=ChequeStatus.EXPIRED), default=0),
        )
        .order_by()
    )
    line_model = Cheque._meta.get_field("redemption_lines").related_model
    paid = dict(
        line_model.objects.filter(
            live=True,
            cheque__status=ChequeStatus.REDEEMED,
            cheque__booklet__programme__in=programmes,
            redemption__payout__status=PAYOUT_PAID,
        )
        .values("cheque__booklet__programme_id")
        .annotate(total=Sum("value_cents"))
        .order_by()
        .values_list("cheque__booklet__programme_id", "total")
    )
    awaiting = dict(
        Order.objects.filter(programme__in=programmes, status=OrderStatus.APPROVED)
        .values("programme_id")
        .annotate(total=Sum("face_value_cents"))
        .order_by()
        .values_list("programme_id", "total")
    )
    result = {
        row["booklet__programme_id"]: Breakdown(
            active_cents=row["active"],
            redeemed_unpaid_cents=row["redeemed"] - paid.get(row["booklet__programme_id"], 0),
            blocked_cents=row["blocked"],
            expired_cents=row["expired"],
        )
        for row in cheques
    }
    for programme_id, total in awaiting.items():
        base = result.get(programme_id, Breakdown())
        result[programme_id] = Breakdown(
            awaiting_issue_cents=total,
            active_cents=base.active_cents,
            redeemed_unpaid_cents=base.redeemed_unpaid_cents,
            blocked_cents=base.blocked_cents,
            expired_cents=base.expired_cents,
        )
    return result


def funder_account(
    *,
    membership: Membership,
    programme: Programme | None = None,
    at: date | datetime | None = None,
    funder: Organisation | None = None,
) -> list[ProgrammeAccount]:
    """The accounts (one per programme) the membership may see, as they stood at ``at``.

    A funder sees its own; an operator sees every funder's, or one funder's with ``funder``.
    Without ``at``, each account also carries its current breakdown (see the module docstring).
    Programmes with no ledger row yet are left out unless asked for with ``programme``.
    """
    programmes = Programme.objects.visible_to(membership)
    if funder is not None:
        programmes = programmes.filter(funder=funder)
    if programme is not None:
        programmes = programmes.filter(pk=programme.pk)
    sums = {
        row["programme_id"]: row
        for row in LedgerEntry.objects.visible_to(membership)
        .filter(_until(at), programme__in=programmes)
        .values("programme_id")
        .annotate(**_sums_by_kind())
        .order_by()
    }
    shown = programmes if programme is not None else programmes.filter(pk__in=list(sums))
    shown = list(shown.select_related("funder").order_by("funder__name", "name", "pk"))
    breakdowns = _breakdowns(programmes.filter(pk__in=[p.pk for p in shown])) if at is None else {}
    notes = {
        note.programme_id: note
        for note in CreditNote.objects.visible_to(membership).filter(programme__in=shown)
    }
    empty = dict.fromkeys(("paid_in", "fees", "paid_to_providers", "credited", "held"), 0)
    accounts = []
    for item in shown:
        row = sums.get(item.pk, empty)
        accounts.append(
            ProgrammeAccount(
                programme=item,
                paid_in_cents=row["paid_in"],
                fee_cents=row["fees"],
                paid_to_providers_cents=row["paid_to_providers"],
                credited_cents=row["credited"],
                held_cents=row["held"],
                breakdown=breakdowns.get(item.pk, Breakdown()) if at is None else None,
                credit_note=notes.get(item.pk),
            )
        )
    return accounts


@dataclass(frozen=True)
class FunderBalance:
    funder_id: int
    funder_name: str
    paid_in_cents: int
    fee_cents: int
    paid_to_providers_cents: int
    credited_cents: int
    held_cents: int

    @property
    def paid_out_cents(self) -> int:
        return -self.paid_to_providers_cents

    @property
    def returned_cents(self) -> int:
        return -self.credited_cents


def operator_balances(
    *, membership: Membership, at: date | datetime | None = None
) -> list[FunderBalance]:
    """Every visible funder's money held at ``at`` (default: now), in one aggregate query.

    Operators see every funder; a funder would see only itself (the page is operator-only).
    """
    rows = (
        LedgerEntry.objects.visible_to(membership)
        .filter(_until(at))
        .values("funder_id", "funder__name")
        .annotate(**_sums_by_kind())
        .order_by("funder__name", "funder_id")
    )
    return [
        FunderBalance(
            funder_id=row["funder_id"],
            funder_name=row["funder__name"],
            paid_in_cents=row["paid_in"],
            fee_cents=row["fees"],
            paid_to_providers_cents=row["paid_to_providers"],
            credited_cents=row["credited"],
            held_cents=row["held"],
        )
        for row in rows
    ]


def ledger_entries(
    *,
    membership: Membership,
    funder: Organisation | None = None,
    at: date | datetime | None = None,
) -> QuerySet[LedgerEntry]:
    """The visible ledger rows up to ``at``, newest first, with what each refers to."""
    entries = LedgerEntry.objects.visible_to(membership).filter(_until(at))
    if funder is not None:
        entries = entries.filter(funder=funder)
    return entries.select_related("programme", "order", "credit_note", "payout__batch").order_by(
        "-created_at", "-id"
    )


def credit_notes(
    *, membership: Membership, funder: Organisation | None = None
) -> QuerySet[CreditNote]:
    notes = CreditNote.objects.visible_to(membership)
    if funder is not None:
        notes = notes.filter(funder=funder)
    return notes.select_related("programme", "funder")


def credit_note_get(*, membership: Membership, pk: int) -> CreditNote:
    """A credit note the membership may see; 404 otherwise (existence does not leak)."""
    note = credit_notes(membership=membership).filter(pk=pk).first()
    if note is None:
        raise Http404
    return note


def account_funder_get(*, membership: Membership, pk: int | str) -> Organisation:
    """A funder whose account the membership may open (operators: any funder); 404 otherwise."""
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404 from exc
    funder = Organisation.objects.visible_to(membership).filter(pk=pk, is_funder=True).first()
    if funder is None:
        raise Http404
    return funder
