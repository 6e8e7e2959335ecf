"""Orders under concurrency, on PostgreSQL: one issuance per order, distinct references."""

from __future__ import annotations

import pytest
from django.utils import timezone

from aptic.errors import Conflict
from orgs.audit import Actor
from tests.factories import ProgrammeFactory
from vouchers.models import Booklet, Cheque, Order, OrderStatus
from vouchers.services.issuance import order_issue
from vouchers.services.orders import order_approve, order_create, order_submit

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def setup(funder_admin, operator_admin):
    programme = ProgrammeFactory(funder=funder_admin.organisation)
    funder = Actor(user=funder_admin.user, membership=funder_admin)
    operator = Actor(user=operator_admin.user, membership=operator_admin)
    return programme, funder, operator


def _approve(operator, order_id):
    def call():
        order = Order.objects.get(pk=order_id)
        return order_approve(
            actor=operator,
            order=order,
            payment_reference="VIR",
            payment_received_on=timezone.localdate(),
        )

    return call


def test_two_approvals_at_once_issue_one_set_of_booklets(setup, racing, monkeypatch):
    programme, funder, operator = setup
    # Issuance is queued on commit; run it here explicitly, twice at once, like two workers.
    monkeypatch.setattr("vouchers.tasks.issue_order.delay", lambda order_id: None)
    order = order_create(actor=funder, programme=programme, lines={10: 6, 5: 4})
    order_submit(actor=funder, order=order)

    approvals = racing(_approve(operator, order.pk), _approve(operator, order.pk))
    assert sum(isinstance(r, Order) for r in approvals) == 1
    assert sum(isinstance(r, Conflict) for r in approvals) == 1

    monkeypatch.setattr("vouchers.tasks.start_printing.delay", lambda order_id: None)
    issued = racing(*[lambda: order_issue(order_id=order.pk)] * 3)
    assert sorted(issued) == [False, False, True]
    assert Booklet.objects.filter(order=order).count() == 10
    assert Cheque.objects.filter(booklet__order=order).count() == 80
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ISSUED


def test_orders_created_at_once_get_distinct_gap_free_references(setup, racing):
    programme, funder, _operator = setup
    orders = racing(*[lambda: order_create(actor=funder, programme=programme, lines={5: 1})] * 8)
    assert all(isinstance(o, Order) for o in orders), orders
    numbers = sorted(int(o.reference.rsplit("-", 1)[1]) for o in orders)
    assert numbers == list(range(1, 9))


def test_two_orders_issued_at_once_get_distinct_booklet_numbers(setup, racing, monkeypatch):
    programme, funder, operator = setup
    monkeypatch.setattr("vouchers.tasks.issue_order.delay", lambda order_id: None)
    monkeypatch.setattr("vouchers.tasks.start_printing.delay", lambda order_id: None)
    orders = []
    for _ in range(2):
        order = order_create(actor=funder, programme=programme, lines={5: 20})
        order_submit(actor=funder, order=order)
        _approve(operator, order.pk)()
        orders.append(order)
    racing(*[lambda o=o: order_issue(order_id=o.pk) for o in orders])
    numbers = list(Booklet.objects.values_list("number", flat=True))
    assert len(numbers) == len(set(numbers)) == 40
    assert sorted(int(n.split("-")[1]) for n in numbers) == list(range(1, 41))
