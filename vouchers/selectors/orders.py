"""Reads of the vouchers app that depend on who asks. Each starts from ``visible_to``."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from orgs.models import Membership, Organisation

from ..models import Order, OrderStatus, Programme, ServiceCategory


def programme_list(*, membership: Membership) -> QuerySet[Programme]:
    return (
        Programme.objects.visible_to(membership)
        .select_related("funder")
        .prefetch_related("categories")
        .order_by("-created_at", "name")
    )


def programme_get(*, membership: Membership, pk: int) -> Programme:
    return get_object_or_404(Programme.objects.visible_to(membership), pk=pk)


def programmes_orderable(*, membership: Membership) -> QuerySet[Programme]:
    """Programmes the caller's organisation can order from."""
    return Programme.objects.filter(funder=membership.organisation, is_active=True).order_by("name")


def funder_choices() -> QuerySet[Organisation]:
    return Organisation.objects.filter(is_funder=True).order_by("name")


def service_category_list(*, active_only: bool = False) -> QuerySet[ServiceCategory]:
    categories = ServiceCategory.objects.order_by("name")
    return categories.filter(is_active=True) if active_only else categories


def service_category_get(*, pk: int) -> ServiceCategory:
    return get_object_or_404(ServiceCategory, pk=pk)


def order_list(*, membership: Membership, status: str = "") -> QuerySet[Order]:
    orders = (
        Order.objects.visible_to(membership)
        .select_related("programme", "funder")
        .prefetch_related("lines")
    )
    if status:
        orders = orders.filter(status=status)
    return orders.order_by("-created_at", "-id")


def order_get(*, membership: Membership, pk: int) -> Order:
    return get_object_or_404(
        Order.objects.visible_to(membership).select_related(
            "programme", "funder", "created_by", "approved_by"
        ),
        pk=pk,
    )


def order_approval_queue(*, membership: Membership) -> QuerySet[Order]:
    return order_list(membership=membership, status=OrderStatus.SUBMITTED).order_by(
        "submitted_at", "id"
    )
