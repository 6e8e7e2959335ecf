"""Allocation under concurrency, on PostgreSQL: a booklet is never handed to two distributors."""

from __future__ import annotations

from collections import Counter

import pytest

from aptic.errors import Conflict
from tests.factories import MembershipFactory, OrganisationFactory, ProgrammeFactory
from tests.vouchers.helpers import actor_for, funder_membership, issued_order
from vouchers.models import Booklet, BookletMovement, BookletStatus
from vouchers.services.distribution import booklets_allocate

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _distributor():
    return MembershipFactory(organisation=OrganisationFactory(is_funder=False, is_distributor=True))


@pytest.fixture
def stock_of_15(monkeypatch):
    # Issuance and printing run here explicitly, not from on-commit tasks.
    monkeypatch.setattr("vouchers.tasks.issue_order.delay", lambda order_id: None)
    monkeypatch.setattr("vouchers.tasks.start_printing.delay", lambda order_id: None)
    funder = funder_membership()
    programme = ProgrammeFactory(funder=funder.organisation)
    issued_order(lines={10: 15}, funder=funder, programme=programme)
    return funder, programme


def test_two_allocations_of_the_next_ten_from_fifteen_one_wins(stock_of_15, racing):
    funder, programme = stock_of_15
    distributors = [_distributor() for _ in range(2)]

    def allocate_to(distributor):
        return lambda: booklets_allocate(
            actor=actor_for(funder),
            distributor=distributor.organisation,
            programme=programme,
            size=10,
            count=10,
        )

    results = racing(*(allocate_to(d) for d in distributors))

    won = [r for r in results if isinstance(r, BookletMovement)]
    lost = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 1 and len(lost) == 1, results
    # A clear conflict: either it saw the booklets being taken, or the stock already short.
    assert lost[0].code in {"concurrent_allocation", "insufficient_stock"}
    assert "réessayez" in str(lost[0].message) or "Stock insuffisant" in str(lost[0].message)

    assert BookletMovement.objects.count() == 1
    links = BookletMovement.booklets.through.objects.values_list("booklet_id", flat=True)
    assert max(Counter(links).values()) == 1  # no booklet in two movements
    winner = won[0].to_organisation
    assert Booklet.objects.filter(status=BookletStatus.ALLOCATED, holder=winner).count() == 10
    assert Booklet.objects.filter(status=BookletStatus.IN_STOCK, holder__isnull=True).count() == 5
    assert not Booklet.objects.exclude(holder__isnull=True).exclude(holder=winner).exists()


def test_allocations_of_disjoint_booklets_at_once_both_succeed(stock_of_15, racing):
    """The control: two requests that do not compete both go through, with distinct booklets."""
    funder, programme = stock_of_15
    distributors = [_distributor() for _ in range(2)]
    numbers = list(Booklet.objects.order_by("number").values_list("number", flat=True))
    ranges = [(numbers[0], numbers[4]), (numbers[5], numbers[9])]
    results = racing(
        *(
            lambda d=d, r=r: booklets_allocate(
                actor=actor_for(funder),
                distributor=d.organisation,
                programme=programme,
                first_number=r[0],
                last_number=r[1],
            )
            for d, r in zip(distributors, ranges, strict=True)
        )
    )
    assert all(isinstance(r, BookletMovement) for r in results), results
    assert Booklet.objects.filter(status=BookletStatus.ALLOCATED).count() == 10
