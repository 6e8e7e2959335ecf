"""Building blocks for vouchers tests: orders taken through the real services.

``issued_order`` walks an order along the funder's and the operator's journey (create, submit,
approve, issue) so that tests start from data the application itself produced.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from orgs.audit import Actor
from orgs.models import MemberRole, Membership
from tests.factories import MembershipFactory, OrganisationFactory, ProgrammeFactory
from vouchers.models import Order, Programme
from vouchers.services.issuance import order_issue
from vouchers.services.orders import order_approve, order_create, order_submit


def funder_membership(**organisation: Any) -> Membership:
    """An admin of a new funder organisation."""
    return MembershipFactory(
        organisation=OrganisationFactory(is_funder=True, **organisation), role=MemberRole.ADMIN
    )


def operator_membership() -> Membership:
    """An admin of a new operator organisation (Médias-Cité)."""
    return MembershipFactory(
        organisation=OrganisationFactory(is_funder=False, is_operator=True, name="Médias-Cité"),
        role=MemberRole.ADMIN,
    )


def actor_for(membership: Membership) -> Actor:
    return Actor(user=membership.user, membership=membership)


def approved_order(
    *,
    lines: dict[int, int],
    funder: Membership | None = None,
    operator: Membership | None = None,
    programme: Programme | None = None,
    **order_fields: Any,
) -> Order:
    """An order created and submitted by a funder admin, then approved by an operator admin.

    ``order_fields`` go to ``order_create`` (``print_text``, ``logo``, ``purchase_order_number``).
    Without ``funder``, an admin of the programme's funder (or of a new funder) orders.
    Inside a test transaction the issuance task that approval queues on commit does not run.
    """
    if funder is None:
        funder = (
            MembershipFactory(organisation=programme.funder, role=MemberRole.ADMIN)
            if programme is not None
            else funder_membership()
        )
    operator = operator or operator_membership()
    if programme is None:
        programme = ProgrammeFactory(
            funder=funder.organisation, max_booklets_per_order=max(10000, sum(lines.values()))
        )
    order = order_create(actor=actor_for(funder), programme=programme, lines=lines, **order_fields)
    order_submit(actor=actor_for(funder), order=order)
    order_approve(
        actor=actor_for(operator),
        order=order,
        payment_reference=f"VIR-{order.reference}",
        payment_received_on=timezone.localdate(),
    )
    return order


def issued_order(
    *,
    lines: dict[int, int],
    funder: Membership | None = None,
    operator: Membership | None = None,
    programme: Programme | None = None,
    **order_fields: Any,
) -> Order:
    """An approved order whose booklets and cheques have been issued (status ``issued``).

    Printing is queued on commit by issuance; inside a test transaction it does not run, so
    tests start it themselves (``print_run_start`` under ``django_capture_on_commit_callbacks``).
    """
    order = approved_order(
        lines=lines, funder=funder, operator=operator, programme=programme, **order_fields
    )
    order_issue(order_id=order.pk)
    order.refresh_from_db()
    return order
