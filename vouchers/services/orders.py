"""Orders: a funder creates, submits or cancels; the operator approves or rejects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from aptic.errors import Conflict, NotFound, ValidationFailed
from orgs.audit import Actor, audit_record
from orgs.notifications import email_on_commit
from orgs.permissions import require
from orgs.selectors import organisation_admin_emails

from ..counters import counter_take, order_reference
from ..models import ORDER_TRANSITIONS, CreditNote, Order, OrderLine, OrderStatus, Programme
from ..uploads import clean_logo
from .ledger import ledger_record_order_paid


@dataclass(frozen=True)
class Quote:
    booklets: int
    cheques: int
    face_value_cents: int
    fee_cents: int
    total_cents: int


def order_quote(*, programme: Programme, lines: dict[int, int]) -> Quote:
    """Face value, operator fee (rounded half up to the cent) and total of the given lines."""
    booklets = sum(lines.values())
    cheques = sum(size * quantity for size, quantity in lines.items())
    face = cheques * programme.cheque_value_cents
    fee = (face * programme.fee_rate_bp + 5000) // 10000
    return Quote(booklets, cheques, face, fee, face + fee)


def clean_lines(*, programme: Programme, lines: dict) -> dict[int, int]:
    """Sizes offered by the programme, whole positive quantities, within the order limit."""
    cleaned: dict[int, int] = {}
    for raw_size, raw_quantity in lines.items():
        try:
            size, quantity = int(raw_size), int(raw_quantity or 0)
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(
                _("Les quantités doivent être des nombres entiers."),
                field="lines",
                code="invalid_quantity",
            ) from exc
        if size not in programme.booklet_sizes:
            raise ValidationFailed(
                _("Ce programme ne propose pas de chéquiers de %(size)s chèques.") % {"size": size},
                field="lines",
                code="size_not_offered",
            )
        if quantity < 0:
            raise ValidationFailed(
                _("Une quantité ne peut pas être négative."), field="lines", code="invalid_quantity"
            )
        if quantity:
            cleaned[size] = quantity
    if not cleaned:
        raise ValidationFailed(
            _("Commandez au moins un chéquier."), field="lines", code="empty_order"
        )
    total = sum(cleaned.values())
    if total > programme.max_booklets_per_order:
        raise ValidationFailed(
            _("Ce programme limite une commande à %(max)s chéquiers (vous en demandez %(n)s).")
            % {"max": programme.max_booklets_per_order, "n": total},
            field="lines",
            code="over_order_limit",
        )
    return cleaned


def _notify_funder(order: Order, template: str, **context) -> None:
    recipients = set(organisation_admin_emails(organisation=order.funder))
    if order.created_by_id and order.created_by.is_active:
        recipients.add(order.created_by.email)
    if recipients:
        email_on_commit(
            to=sorted(recipients),
            template=template,
            organisation=order.funder,
            context={"order": order, "reference": order.reference, **context},
        )


def _transition(order: Order, target: str, **changes) -> None:
    """Compare-and-set the status from any state allowed to reach ``target``."""
    sources = [s for s, targets in ORDER_TRANSITIONS.items() if target in targets]
    updated = Order.objects.filter(pk=order.pk, status__in=sources).update(status=target, **changes)
    if updated != 1:
        order.refresh_from_db(fields=["status"])
        raise Conflict(
            _("Cette commande est « %(status)s » : l'opération n'est plus possible.")
            % {"status": order.get_status_display()},
            code="order_state_conflict",
        )
    order.refresh_from_db()


@transaction.atomic
def order_create(
    *,
    actor: Actor,
    programme: Programme,
    lines: dict[int, int],
    purchase_order_number: str = "",
    print_text: str = "",
    logo: UploadedFile | None = None,
) -> Order:
    """A draft order for the actor's organisation, with its reference and totals."""
    require(actor.membership, "orders:create")
    if programme.funder_id != actor.organisation.pk:
        raise NotFound(code="programme_not_found")
    if not programme.is_active:
        raise ValidationFailed(
            _("Ce programme n'est plus ouvert aux commandes."),
            field="programme",
            code="programme_closed",
        )
    cleaned = clean_lines(programme=programme, lines=lines)
    if logo is not None:
        logo = clean_logo(logo)
    quote = order_quote(programme=programme, lines=cleaned)
    year = timezone.localdate().year
    order = Order.objects.create(
        reference=order_reference(year, counter_take(name="order", year=year)),
        funder=actor.organisation,
        programme=programme,
        purchase_order_number=(purchase_order_number or "").strip()[:60],
        print_text=(print_text or "").strip()[:200],
        face_value_cents=quote.face_value_cents,
        fee_cents=quote.fee_cents,
        total_cents=quote.total_cents,
        created_by=actor.user,
    )
    if logo is not None:
        order.logo.save(logo.name, logo, save=True)
    OrderLine.objects.bulk_create(
        OrderLine(order=order, booklet_size=size, quantity=quantity)
        for size, quantity in sorted(cleaned.items())
    )
    audit_record(
        actor=actor,
        action="vouchers.order.created",
        target=order,
        data={
            "after": {"lines": cleaned, "total_cents": quote.total_cents, "programme": programme.pk}
        },
    )
    return order


@transaction.atomic
def order_submit(*, actor: Actor, order: Order) -> Order:
    require(actor.membership, "orders:submit")
    _transition(order, OrderStatus.SUBMITTED, submitted_at=timezone.now())
    audit_record(
        actor=actor,
        action="vouchers.order.submitted",
        target=order,
        data={"before": {"status": "draft"}, "after": {"status": "submitted"}},
    )
    _notify_funder(order, "order_submitted")
    return order


@transaction.atomic
def order_cancel(*, actor: Actor, order: Order) -> Order:
    require(actor.membership, "orders:cancel")
    before = order.status
    _transition(order, OrderStatus.CANCELLED, cancelled_at=timezone.now())
    audit_record(
        actor=actor,
        action="vouchers.order.cancelled",
        target=order,
        data={"before": {"status": before}, "after": {"status": "cancelled"}},
    )
    _notify_funder(order, "order_cancelled")
    return order


@transaction.atomic
def order_approve(
    *, actor: Actor, order: Order, payment_reference: str, payment_received_on: date
) -> Order:
    """Record the payment (or purchase order) and approve; issuance follows in a task."""
    require(actor.membership, "orders:approve")
    payment_reference = (payment_reference or "").strip()
    if not payment_reference:
        raise ValidationFailed(
            _("Indiquez la référence du paiement ou du bon de commande."),
            field="payment_reference",
            code="required",
        )
    if payment_received_on is None or payment_received_on > timezone.localdate():
        raise ValidationFailed(
            _("La date de réception ne peut pas être dans le futur."),
            field="payment_received_on",
            code="invalid_date",
        )
    programme = order.programme
    ended = programme.last_valid_day is not None and programme.last_valid_day < timezone.localdate()
    if ended or CreditNote.objects.filter(programme=programme).exists():
        # Its unused value is (or is about to be) credited back: no new cheques in it.
        raise Conflict(
            _("Le programme « %(name)s » est terminé : cette commande ne peut plus être validée.")
            % {"name": programme.name},
            code="programme_ended",
        )
    _transition(
        order,
        OrderStatus.APPROVED,
        approved_at=timezone.now(),
        approved_by=actor.user,
        payment_reference=payment_reference[:100],
        payment_received_on=payment_received_on,
    )
    ledger_record_order_paid(order=order)
    audit_record(
        actor=actor,
        action="vouchers.order.approved",
        target=order,
        organisation=order.funder,
        data={
            "before": {"status": "submitted"},
            "after": {"status": "approved"},
            "payment_reference": payment_reference,
            "payment_received_on": payment_received_on,
        },
    )
    _notify_funder(order, "order_approved")
    from ..tasks import issue_order

    transaction.on_commit(lambda: issue_order.delay(order.pk))
    return order


@transaction.atomic
def order_reject(*, actor: Actor, order: Order, reason: str) -> Order:
    require(actor.membership, "orders:approve")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(_("Indiquez le motif du refus."), field="reason", code="required")
    _transition(order, OrderStatus.REJECTED, rejected_at=timezone.now(), rejection_reason=reason)
    audit_record(
        actor=actor,
        action="vouchers.order.rejected",
        target=order,
        organisation=order.funder,
        data={"before": {"status": "submitted"}, "after": {"status": "rejected"}, "reason": reason},
    )
    _notify_funder(order, "order_rejected", reason=reason)
    return order
