"""Funders' accounts: the append-only ledger and the programme close with its credit note.

An account is one funder and one programme. Its rows (``LedgerEntry``) are never changed:

- ``paid_in``  plus the face value, when the operator approves an order (payment received);
- ``fee``      plus the operator's fee paid on top: on the statement, not part of the money held;
- ``paid_to_providers``  minus what a paid payout reimbursed for the account's cheques, and
  plus the same back when the bank rejects a payout that was already marked paid;
- ``credited`` minus the unused value given back at the programme's end (« avoir »).

``held`` (every kind but ``fee``) is the money the operator holds for the funder. The writers run
in their caller's transaction, so an entry commits or rolls back with the change it records.

The ledger is the one part of vouchers that reads settlement rows (payouts, redemption lines). It
reaches them through vouchers' own relations (``LedgerEntry.payout``, ``Cheque.redemption_lines``)
and never imports the redemption app, so code dependencies still run redemption → vouchers.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Sum
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from aptic.errors import Conflict
from orgs.audit import Actor, audit_record
from orgs.models import Organisation
from orgs.notifications import email_on_commit
from orgs.selectors import organisation_admin_emails

from ..counters import counter_take
from ..models import (
    Cheque,
    ChequeStatus,
    CreditedCheque,
    CreditNote,
    LedgerEntry,
    LedgerKind,
    Order,
    OrderStatus,
    Programme,
    ValidityKind,
)
from .distribution import cheques_expire

if TYPE_CHECKING:
    from django.db import models

logger = logging.getLogger(__name__)

# redemption.PayoutStatus.PAID, spelled out: vouchers never imports the redemption app.
PAYOUT_PAID = "paid"
UNUSED_STATUSES = (ChequeStatus.ACTIVE, ChequeStatus.EXPIRED, ChequeStatus.BLOCKED)


def _settlement_models() -> tuple[type[models.Model], type[models.Model]]:
    """``redemption.Payout`` and ``redemption.RedemptionLine``, through vouchers' relations."""
    payout = LedgerEntry._meta.get_field("payout").related_model
    line = Cheque._meta.get_field("redemption_lines").related_model
    return payout, line


def _in_transaction() -> None:
    assert transaction.get_connection().in_atomic_block, "ledger writers need a transaction"


def credit_note_number(year: int, number: int) -> str:
    return f"AV-{year}-{number:06d}"


# --- Writers (called from inside other services) -----------------------------------------------


def ledger_record_order_paid(*, order: Order) -> list[LedgerEntry]:
    """``paid_in`` (face value) and ``fee`` rows of an order the operator just approved.

    Once per order: a unique index on (order, kind) refuses a second recording.
    """
    _in_transaction()
    common = {"funder_id": order.funder_id, "programme_id": order.programme_id, "order": order}
    entries = [LedgerEntry(kind=LedgerKind.PAID_IN, amount_cents=order.face_value_cents, **common)]
    if order.fee_cents:
        entries.append(LedgerEntry(kind=LedgerKind.FEE, amount_cents=order.fee_cents, **common))
    return LedgerEntry.objects.bulk_create(entries)


def ledger_record_payout_paid(*, batch: Any) -> list[LedgerEntry]:
    """``paid_to_providers`` rows for the paid payouts of a batch just marked paid.

    One row per payout and account (funder, programme): minus the value of the payout's cheques
    of that programme. Payouts already recorded are skipped, so a second call adds nothing.
    """
    _in_transaction()
    payout_model, line_model = _settlement_models()
    payout_ids = list(
        payout_model.objects.filter(
            batch_id=batch.pk, status=PAYOUT_PAID, ledger_entries__isnull=True
        ).values_list("pk", flat=True)
    )
    if not payout_ids:
        return []
    shares = (
        line_model.objects.filter(live=True, redemption__payout_id__in=payout_ids)
        .values(
            "redemption__payout_id", "cheque__booklet__funder_id", "cheque__booklet__programme_id"
        )
        .annotate(total=Sum("value_cents"))
        .order_by("redemption__payout_id", "cheque__booklet__programme_id")
    )
    now = timezone.now()
    return LedgerEntry.objects.bulk_create(
        LedgerEntry(
            funder_id=share["cheque__booklet__funder_id"],
            programme_id=share["cheque__booklet__programme_id"],
            kind=LedgerKind.PAID_TO_PROVIDERS,
            amount_cents=-share["total"],
            payout_id=share["redemption__payout_id"],
            created_at=now,
        )
        for share in shares
        if share["total"]
    )


def ledger_record_payout_reversed(*, payout: Any) -> list[LedgerEntry]:
    """Give back to each account what a rejected payout had taken from it when marked paid.

    Writes the opposite of the payout's net ``paid_to_providers`` per account: nothing for a
    payout that was never marked paid, nothing on a second call (the net is then zero).
    """
    _in_transaction()
    nets = (
        LedgerEntry.objects.filter(payout_id=payout.pk, kind=LedgerKind.PAID_TO_PROVIDERS)
        .values("funder_id", "programme_id")
        .annotate(total=Sum("amount_cents"))
        .order_by("programme_id")
    )
    now = timezone.now()
    return LedgerEntry.objects.bulk_create(
        LedgerEntry(
            funder_id=net["funder_id"],
            programme_id=net["programme_id"],
            kind=LedgerKind.PAID_TO_PROVIDERS,
            amount_cents=-net["total"],
            payout_id=payout.pk,
            created_at=now,
        )
        for net in nets
        if net["total"]
    )


# --- Programme close: the unused value and its credit note ---------------------------------------


def programme_closes_on(programme: Programme) -> date | None:
    """The first day a programme can be closed, or None when it has no fixed end.

    The day after its last valid day (end date plus tolerance), plus the time a provider has to
    cancel a redemption (a cancelled cheque becomes unused again): so the credit note is final.
    """
    last_day = programme.last_valid_day
    if last_day is None:
        return None
    cancel_days = math.ceil(settings.REDEMPTION_CANCEL_HOURS / 24)
    return last_day + timedelta(days=1 + cancel_days)


def programmes_to_close(*, today: date | None = None) -> list[int]:
    """Ids of the fixed-end programmes past their close day that have no credit note yet."""
    today = today or timezone.localdate()
    candidates = Programme.objects.filter(
        validity_kind=ValidityKind.FIXED_DATE,
        valid_until__lt=today,
        credit_note__isnull=True,
    ).order_by("pk")
    return [
        programme.pk
        for programme in candidates
        if (closes_on := programme_closes_on(programme)) is not None and closes_on <= today
    ]


def _breakdown(programme: Programme, unused: list[tuple[int, int, str]], today: date) -> dict:
    by_status: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "cents": 0})
    for _pk, value, status in unused:
        by_status[status]["count"] += 1
        by_status[status]["cents"] += value
    redeemed = Cheque.objects.filter(
        booklet__programme=programme, status=ChequeStatus.REDEEMED
    ).aggregate(count=Count("pk"), cents=Sum("value_cents"))
    paid_in = LedgerEntry.objects.filter(programme=programme, kind=LedgerKind.PAID_IN).aggregate(
        cents=Sum("amount_cents")
    )["cents"]
    return {
        "paid_in_cents": paid_in or 0,
        "redeemed_cents": redeemed["cents"] or 0,
        "redeemed_count": redeemed["count"],
        **{f"{status}_cents": by_status[status]["cents"] for status in UNUSED_STATUSES},
        **{f"{status}_count": by_status[status]["count"] for status in UNUSED_STATUSES},
        "policy": programme.unused_value_policy,
        "last_valid_day": programme.last_valid_day.isoformat(),
        "closed_on": today.isoformat(),
    }


def credit_note_render(credit_note: CreditNote) -> bytes:
    """The credit note (« Avoir ») as PDF bytes: WeasyPrint, French, fixed metadata."""
    from weasyprint import HTML

    from ..printing.design import FIXED_CREATED
    from ..printing.proforma import OPERATOR_NAME

    operator = Organisation.objects.filter(is_operator=True).order_by("pk").first()
    context = {
        "credit_note": credit_note,
        "programme": credit_note.programme,
        "funder": credit_note.funder,
        "breakdown": credit_note.breakdown,
        "operator": operator,
        "operator_name": operator.name if operator else OPERATOR_NAME,
        "issued_on": timezone.localtime(credit_note.issued_at).date(),
        "site_host": settings.SITE_URL.split("://", 1)[-1],
    }
    with translation.override(settings.LANGUAGE_CODE):
        html = render_to_string("vouchers/credit_note.html", context)
    document = HTML(string=html, base_url=str(settings.BASE_DIR)).render()
    document.metadata.created = FIXED_CREATED
    document.metadata.modified = FIXED_CREATED
    document.metadata.generator = "Aptic"
    return document.write_pdf()


@transaction.atomic
def programme_close(
    *, programme_id: int, today: date | None = None, actor: Actor | None = None
) -> CreditNote | None:
    """Close an ended programme: the unused value goes back to the funder, once.

    Only for a programme with a fixed end date, from :func:`programme_closes_on` on. Month-based
    programmes are not closed here: each booklet's validity starts at its hand-over (a booklet
    never handed out never expires), so there is no day when their unused value is final.

    Expires the cheques still active, then sums the cheques never redeemed (active, expired,
    blocked; voided ones were replaced and are counted in their replacement). Creates the credit
    note (one per programme, a unique index; a second call returns None and changes nothing),
    records each credited cheque (once per cheque, so the account still balances afterwards),
    writes the ``credited`` ledger row, closes the programme to new orders, renders the PDF,
    writes the audit event and e-mails the funder's admins on commit.
    """
    today = today or timezone.localdate()
    actor = actor or Actor.system()
    programme = Programme.objects.select_for_update().select_related("funder").get(pk=programme_id)
    if CreditNote.objects.filter(programme=programme).exists():
        return None
    closes_on = programme_closes_on(programme)
    if closes_on is None:
        raise Conflict(
            _("Ce programme n'a pas de date de fin fixe : il ne se clôt pas automatiquement."),
            code="programme_without_end_date",
        )
    if today < closes_on:
        raise Conflict(
            _("Ce programme pourra être clos à partir du %(date)s.")
            % {"date": closes_on.strftime("%d/%m/%Y")},
            code="programme_not_ended",
        )
    if Order.objects.filter(programme=programme, status=OrderStatus.APPROVED).exists():
        # Paid for but not yet issued: its cheques would miss the credit note.
        raise Conflict(
            _("Une commande validée de ce programme n'est pas encore émise."),
            code="orders_not_issued",
        )
    cheques_expire(today=today)
    unused = list(
        Cheque.objects.filter(
            booklet__programme=programme, status__in=UNUSED_STATUSES, credited__isnull=True
        )
        .order_by("pk")
        .values_list("pk", "value_cents", "status")
    )
    amount = sum(value for _pk, value, _status in unused)
    year = timezone.localdate().year
    credit_note = CreditNote.objects.create(
        number=credit_note_number(year, counter_take(name="credit_note", year=year)),
        funder=programme.funder,
        programme=programme,
        amount_cents=amount,
        breakdown=_breakdown(programme, unused, today),
    )
    CreditedCheque.objects.bulk_create(
        (
            CreditedCheque(credit_note=credit_note, cheque_id=pk, value_cents=value, status=status)
            for pk, value, status in unused
        ),
        batch_size=1000,
    )
    if amount:
        LedgerEntry.objects.create(
            funder=programme.funder,
            programme=programme,
            kind=LedgerKind.CREDITED,
            amount_cents=-amount,
            credit_note=credit_note,
            created_at=credit_note.issued_at,
        )
    Programme.objects.filter(pk=programme.pk).update(is_active=False)
    credit_note.pdf.save(
        f"avoir-{credit_note.number}.pdf", ContentFile(credit_note_render(credit_note)), save=False
    )
    CreditNote.objects.filter(pk=credit_note.pk).update(pdf=credit_note.pdf.name)
    audit_record(
        actor=actor,
        action="vouchers.programme.closed",
        target=credit_note,
        organisation=programme.funder,
        data={
            "programme": programme.pk,
            "amount_cents": amount,
            "cheques": len(unused),
            "policy": programme.unused_value_policy,
        },
    )
    emails = organisation_admin_emails(organisation=programme.funder)
    if emails:
        email_on_commit(
            to=emails,
            template="credit_note",
            organisation=programme.funder,
            context={
                "credit_note": credit_note,
                "programme": programme.name,
                "number": credit_note.number,
                "policy": programme.get_unused_value_policy_display(),
            },
        )
    return credit_note
