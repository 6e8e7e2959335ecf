"""Reminders: unused booklets of a programme ending soon are e-mailed to who holds them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import mail

from orgs.models import MemberRole, Notification
from tests.factories import MembershipFactory
from tests.vouchers.helpers import funder_membership
from tests.vouchers.test_stock import allocate, distributor_membership, hand_out, stock_of
from vouchers.services.reminders import booklets_expiry_warn

pytestmark = pytest.mark.django_db

TODAY = date(2027, 5, 2)


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def holders():
    """A programme whose last valid day is in 30 days: 3 booklets, 2 allocated, 1 handed out."""
    funder = funder_membership()
    stock_of(
        funder,
        {5: 3},
        valid_until=TODAY + timedelta(days=20),
        tolerance_days=10,
    )
    distributor = distributor_membership()
    movement = allocate(funder, distributor, count=2, size=5)
    hand_out(
        MembershipFactory(organisation=distributor.organisation, role=MemberRole.AGENT),
        movement.booklets.order_by("number").first(),
    )
    return funder, distributor


def test_funder_and_distributor_admins_are_warned_thirty_days_before(holders, on_commit):
    funder, distributor = holders
    distributor.user.language = "en"
    distributor.user.save(update_fields=["language"])

    with on_commit():
        warned = booklets_expiry_warn(today=TODAY)

    assert warned == 2
    to_funder = next(m for m in mail.outbox if m.to == [funder.user.email])
    assert "plus que 30 jours pour remettre vos chéquiers" in to_funder.subject
    # The funder follows its unused booklets: one in stock, one still held by the distributor.
    assert "2 chéquiers du programme" in to_funder.body
    assert (TODAY + timedelta(days=30)).strftime("%d/%m/%Y") in to_funder.body
    assert to_funder.body.startswith("Bonjour,")
    to_distributor = next(m for m in mail.outbox if m.to == [distributor.user.email])
    assert to_distributor.body.startswith("Hello,")  # the template family's English version
    logged = Notification.objects.filter(template="booklets_expiring")
    assert {n.organisation for n in logged} == {funder.organisation, distributor.organisation}


def test_a_second_run_the_same_day_sends_nothing(holders, on_commit):
    with on_commit():
        booklets_expiry_warn(today=TODAY)
    sent = len(mail.outbox)

    with on_commit():
        assert booklets_expiry_warn(today=TODAY) == 0

    assert len(mail.outbox) == sent
    assert Notification.objects.filter(template="booklets_expiring").count() == sent


def test_warned_once_at_thirty_and_once_at_seven_days_before_the_last_valid_day(holders, on_commit):
    with on_commit():
        assert booklets_expiry_warn(today=TODAY - timedelta(days=1)) == 0  # 31 days left
        assert booklets_expiry_warn(today=TODAY) == 2
        assert booklets_expiry_warn(today=TODAY + timedelta(days=1)) == 0
        assert booklets_expiry_warn(today=TODAY + timedelta(days=22)) == 0  # 8 days left
        assert booklets_expiry_warn(today=TODAY + timedelta(days=23)) == 2
        assert booklets_expiry_warn(today=TODAY + timedelta(days=29)) == 0
        assert booklets_expiry_warn(today=TODAY + timedelta(days=31)) == 0  # ended
    subjects = [m.subject for m in mail.outbox]
    assert sum("30 jours" in s for s in subjects) == 2
    assert sum("7 jours" in s for s in subjects) == 2


def test_a_missed_day_is_caught_up_by_the_next_run_with_the_days_really_left(holders, on_commit):
    """The worker was down on the day 30 days before: the next run still warns, once."""
    with on_commit():
        assert booklets_expiry_warn(today=TODAY + timedelta(days=3)) == 2
        assert booklets_expiry_warn(today=TODAY + timedelta(days=4)) == 0
    assert all("plus que 27 jours" in m.subject for m in mail.outbox)


def test_a_run_already_past_the_seven_day_mark_sends_only_that_warning(holders, on_commit):
    with on_commit():
        assert booklets_expiry_warn(today=TODAY + timedelta(days=26)) == 2
    assert len(mail.outbox) == 2
    assert all("plus que 4 jours" in m.subject for m in mail.outbox)


def test_nobody_is_warned_when_every_booklet_was_handed_out(on_commit):
    funder = funder_membership(is_distributor=True)
    (booklet,) = stock_of(funder, {5: 1}, valid_until=TODAY + timedelta(days=30), tolerance_days=0)
    allocate(funder, funder, count=1, size=5)
    booklet.refresh_from_db()
    hand_out(funder, booklet)

    with on_commit():
        assert booklets_expiry_warn(today=TODAY) == 0
    assert mail.outbox == []
