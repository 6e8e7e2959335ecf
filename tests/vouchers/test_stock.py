"""Distribution in the browser: a funder allocates booklets to distributors, either side returns
them, both follow the stock; lost booklets are blocked and replaced once."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import date, timedelta
from itertools import count

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from aptic.errors import ValidationFailed
from orgs.models import MemberRole
from tests.factories import MembershipFactory, OrganisationFactory, ProgrammeFactory
from tests.vouchers.helpers import actor_for, funder_membership, issued_order
from vouchers import codes
from vouchers.models import (
    Booklet,
    BookletMovement,
    BookletStatus,
    Cheque,
    ChequeStatus,
    MovementKind,
)
from vouchers.selectors.stock import (
    expiry_warnings,
    follow_up_by_agent,
    follow_up_by_distributor,
)
from vouchers.services.distribution import Person, booklet_assign, booklets_allocate

pytestmark = pytest.mark.django_db

_people = count(1)


def distributor_membership(role: str = MemberRole.ADMIN, organisation=None, **fields):
    organisation = organisation or OrganisationFactory(
        is_funder=False, is_distributor=True, **fields
    )
    return MembershipFactory(organisation=organisation, role=role)


def stock_of(funder, lines: dict[int, int], **programme_fields) -> list[Booklet]:
    """Booklets issued through the real order journey, in number order (5s first, then 10s)."""
    programme = ProgrammeFactory(
        funder=funder.organisation, max_booklets_per_order=10000, **programme_fields
    )
    order = issued_order(lines=lines, funder=funder, programme=programme)
    return list(Booklet.objects.filter(order=order).order_by("number"))


def tenancy_booklet_kwargs(owner) -> dict:
    """For tests/test_tenancy.py: the number of a booklet the owner's organisation funds."""
    (booklet,) = stock_of(owner, {5: 1})
    return {"number": booklet.number}


def allocate(funder, distributor, **kwargs):
    return booklets_allocate(
        actor=actor_for(funder), distributor=distributor.organisation, **kwargs
    )


def hand_out(agent, booklet: Booklet) -> None:
    n = next(_people)
    booklet_assign(
        actor=actor_for(agent),
        booklet=booklet,
        person=Person(last_name=f"Martin{n}", first_name="Lou", birth_date=date(1970, 1, 1)),
        age_bracket="45-59",
        postcode="33000",
    )


def numbers(booklets) -> list[str]:
    return sorted(b.number for b in booklets)


@pytest.fixture
def funder():
    return funder_membership()


@pytest.fixture
def distributor():
    return distributor_membership()


# --- Allocation ------------------------------------------------------------------------------


def test_allocating_by_count_takes_the_lowest_in_stock_numbers_of_that_size(
    funder, distributor, client_for
):
    booklets = stock_of(funder, {5: 3, 10: 6})
    tens = [b for b in booklets if b.size == 10]
    page = client_for(funder).get(reverse("vouchers:booklet_allocate"))
    assert page.status_code == 200
    assert "Votre stock" in page.content.decode()

    answer = client_for(funder).post(
        reverse("vouchers:booklet_allocate"),
        {
            "distributor": distributor.organisation.pk,
            "programme": tens[0].programme_id,
            "mode": "count",
            "count": 4,
            "size": 10,
        },
        follow=True,
    )
    assert answer.redirect_chain[-1][0] == reverse("vouchers:movement_list")
    assert "4 chéquiers confiés à" in answer.content.decode()
    held = Booklet.objects.filter(holder=distributor.organisation, status=BookletStatus.ALLOCATED)
    assert numbers(held) == numbers(tens[:4])
    movement = BookletMovement.objects.get()
    assert (movement.first_number, movement.last_number) == (tens[0].number, tens[3].number)
    assert movement.value_cents == 4 * 10 * 1000

    # The next allocation continues where the first stopped.
    allocate(funder, distributor, programme=tens[0].programme, size=10, count=1)
    assert Booklet.objects.get(number=tens[4].number).status == BookletStatus.ALLOCATED


def test_allocating_a_range_moves_exactly_those_booklets(funder, distributor, client_for):
    booklets = stock_of(funder, {10: 8})
    answer = client_for(funder).post(
        reverse("vouchers:booklet_allocate"),
        {
            "distributor": distributor.organisation.pk,
            "programme": booklets[0].programme_id,
            "mode": "range",
            # Typed loosely: lower case, without the leading zeros.
            "first_number": booklets[2].number.lower(),
            "last_number": booklets[5].number.replace("-000000", "-"),
        },
    )
    assert answer.status_code == 302
    moved = Booklet.objects.filter(holder=distributor.organisation)
    assert numbers(moved) == numbers(booklets[2:6])


def test_the_distributor_admins_are_emailed_with_a_link_to_their_stock(
    distributor, django_capture_on_commit_callbacks
):
    funder = funder_membership(name="Ville d'Arcachon")
    booklets = stock_of(funder, {10: 3})
    with django_capture_on_commit_callbacks(execute=True):
        allocate(funder, distributor, programme=booklets[0].programme, size=10, count=2)
    (message,) = mail.outbox
    assert message.to == [distributor.user.email]
    assert message.subject == "Ville d'Arcachon vous confie 2 chéquiers APTIC"
    assert f"les numéros {booklets[0].number} à {booklets[1].number}" in message.body
    assert "200,00\u00a0€" in message.body
    assert f"{reverse('vouchers:stock')}" in message.body


def test_insufficient_stock_is_refused_in_french_and_moves_nothing(funder, distributor, client_for):
    booklets = stock_of(funder, {10: 3})
    answer = client_for(funder).post(
        reverse("vouchers:booklet_allocate"),
        {
            "distributor": distributor.organisation.pk,
            "programme": booklets[0].programme_id,
            "mode": "count",
            "count": 40,
            "size": 10,
        },
    )
    assert answer.status_code == 200
    assert "Stock insuffisant : 3 chéquier(s) disponible(s)." in answer.content.decode()
    assert not BookletMovement.objects.exists()
    assert Booklet.objects.filter(status=BookletStatus.IN_STOCK).count() == 3


def test_a_range_holding_a_booklet_not_in_stock_is_refused_and_moves_nothing(
    funder, distributor, client_for
):
    booklets = stock_of(funder, {10: 6})
    allocate(funder, distributor, first_number=booklets[3].number, last_number=booklets[3].number)
    answer = client_for(funder).post(
        reverse("vouchers:booklet_allocate"),
        {
            "distributor": distributor.organisation.pk,
            "programme": booklets[0].programme_id,
            "mode": "range",
            "first_number": booklets[0].number,
            "last_number": booklets[5].number,
        },
    )
    assert "1 chéquier(s) de cette plage ne sont pas en stock." in answer.content.decode()
    assert BookletMovement.objects.count() == 1
    assert Booklet.objects.filter(holder=distributor.organisation).count() == 1


def test_allocating_to_an_organisation_that_does_not_distribute_is_refused(funder, client_for):
    booklets = stock_of(funder, {10: 2})
    provider = OrganisationFactory(is_funder=False, is_provider=True)
    answer = client_for(funder).post(
        reverse("vouchers:booklet_allocate"),
        {
            "distributor": provider.pk,
            "programme": booklets[0].programme_id,
            "mode": "count",
            "count": 1,
            "size": 10,
        },
    )
    assert answer.status_code == 200
    assert answer.context["form"].errors["distributor"]
    with pytest.raises(ValidationFailed) as refused:
        booklets_allocate(
            actor=actor_for(funder), distributor=provider, programme=booklets[0].programme, count=1
        )
    assert refused.value.code == "not_a_distributor"
    assert not BookletMovement.objects.exists()


def test_a_funder_that_distributes_may_allocate_to_itself(client_for):
    funder = funder_membership(is_distributor=True)
    booklets = stock_of(funder, {5: 2})
    allocate(funder, funder, programme=booklets[0].programme, size=5, count=2)
    assert Booklet.objects.filter(holder=funder.organisation).count() == 2
    page = client_for(funder).get(reverse("vouchers:booklet_allocate"))
    assert funder.organisation in page.context["form"].fields["distributor"].queryset


def test_a_distributor_cannot_allocate(distributor, client_for):
    client = client_for(distributor)
    assert client.get(reverse("vouchers:booklet_allocate")).status_code == 403
    assert client.post(reverse("vouchers:booklet_allocate"), {}).status_code == 403


# --- Return and movements --------------------------------------------------------------------


def test_the_funder_recalls_and_the_holder_gives_back(funder, distributor, client_for):
    booklets = stock_of(funder, {10: 4})
    allocate(funder, distributor, programme=booklets[0].programme, size=10, count=4)

    recalled = client_for(funder).post(
        reverse("vouchers:booklet_return"), {"numbers": booklets[0].number}
    )
    assert recalled.status_code == 302
    given_back = client_for(distributor).post(
        reverse("vouchers:booklet_return"),
        {"numbers": f"{booklets[1].number}, {booklets[2].number.lower()}\n"},
    )
    assert given_back.status_code == 302

    back = Booklet.objects.filter(status=BookletStatus.IN_STOCK, holder__isnull=True)
    assert numbers(back) == numbers(booklets[:3])
    assert Booklet.objects.get(number=booklets[3].number).holder == distributor.organisation
    returns = BookletMovement.objects.filter(kind=MovementKind.RETURN).order_by("id")
    assert [m.booklet_count for m in returns] == [1, 2]
    assert all(m.to_organisation == funder.organisation for m in returns)
    assert [m.actor for m in returns] == [funder.user, distributor.user]


def test_a_distributor_cannot_return_another_distributors_booklets(funder, distributor, client_for):
    booklets = stock_of(funder, {10: 2})
    allocate(funder, distributor, programme=booklets[0].programme, size=10, count=2)
    other = distributor_membership()
    answer = client_for(other).post(
        reverse("vouchers:booklet_return"), {"numbers": booklets[0].number}
    )
    assert answer.status_code == 200
    assert "Chéquier introuvable." in answer.content.decode()
    assert Booklet.objects.filter(holder=distributor.organisation).count() == 2
    assert not BookletMovement.objects.filter(kind=MovementKind.RETURN).exists()


def test_movements_are_visible_to_both_sides_and_to_nobody_else(funder, distributor, client_for):
    booklets = stock_of(funder, {10: 3})
    allocate(funder, distributor, programme=booklets[0].programme, size=10, count=3)
    for member in (funder, distributor):
        page = client_for(member).get(reverse("vouchers:movement_list"))
        assert page.status_code == 200
        assert booklets[0].number in page.content.decode()
        assert len(page.context["page"].object_list) == 1
    outsider = distributor_membership()
    page = client_for(outsider).get(reverse("vouchers:movement_list"))
    assert booklets[0].number not in page.content.decode()
    assert len(page.context["page"].object_list) == 0


# --- Booklets: list, detail, blocking, replacement -------------------------------------------


def test_the_booklet_list_shows_what_the_caller_may_see_with_filters(
    funder, distributor, client_for
):
    booklets = stock_of(funder, {5: 2, 10: 3})
    allocate(funder, distributor, programme=booklets[0].programme, size=10, count=2)
    stock_of(funder_membership(), {5: 1})  # another funder's booklet

    page = client_for(funder).get(reverse("vouchers:booklet_list"))
    assert [b.number for b in page.context["page"]] == numbers(booklets)[::-1]  # newest first
    by_number = client_for(funder).get(reverse("vouchers:booklet_list"), {"tri": "number"})
    assert [b.number for b in by_number.context["page"]] == numbers(booklets)
    held = client_for(distributor).get(reverse("vouchers:booklet_list"))
    assert sorted(b.number for b in held.context["page"]) == numbers(booklets[2:4])
    filtered = client_for(funder).get(
        reverse("vouchers:booklet_list"),
        {"etat": "in_stock", "taille": "10", "structure": "", "q": booklets[4].number[-3:]},
    )
    assert [b.number for b in filtered.context["page"]] == [booklets[4].number]
    by_holder = client_for(funder).get(
        reverse("vouchers:booklet_list"), {"structure": distributor.organisation.pk}
    )
    assert by_holder.context["page"].paginator.count == 2


def test_a_booklet_outside_the_callers_reach_answers_404(funder, client_for):
    (booklet,) = stock_of(funder, {5: 1})
    outsider = distributor_membership()
    url = reverse("vouchers:booklet_detail", args=[booklet.number])
    assert client_for(outsider).get(url).status_code == 404
    assert client_for(funder).get(url).status_code == 200


def test_codes_are_whole_for_the_funder_and_masked_for_the_holder(funder, distributor, client_for):
    (booklet,) = stock_of(funder, {5: 1})
    allocate(funder, distributor, programme=booklet.programme, size=5, count=1)
    cheque = booklet.cheques.get(position=1)
    url = reverse("vouchers:booklet_detail", args=[booklet.number])
    as_funder = client_for(funder).get(url).content.decode()
    as_holder = client_for(distributor).get(url).content.decode()
    assert codes.display(cheque.code) in as_funder
    assert codes.display(cheque.code) not in as_holder
    assert codes.mask(cheque.code) in as_holder


def test_blocking_a_booklet_blocks_its_active_cheques_and_leaves_redeemed_ones(
    funder, distributor, client_for
):
    (booklet,) = stock_of(funder, {10: 1})
    allocate(funder, distributor, programme=booklet.programme, size=10, count=1)
    redeemed = booklet.cheques.get(position=1)
    Cheque.objects.filter(pk=redeemed.pk).update(status=ChequeStatus.REDEEMED)

    answer = client_for(distributor).post(
        reverse("vouchers:booklet_block", args=[booklet.number]), {"reason": "Vol du sac"}
    )
    assert answer.status_code == 302
    booklet.refresh_from_db()
    assert booklet.status == BookletStatus.BLOCKED
    assert booklet.blocked_reason == "Vol du sac"
    statuses = Counter(booklet.cheques.values_list("status", flat=True))
    assert statuses == {ChequeStatus.BLOCKED: 9, ChequeStatus.REDEEMED: 1}
    assert set(
        booklet.cheques.exclude(pk=redeemed.pk).values_list("blocked_reason", flat=True)
    ) == {"Vol du sac"}
    assert Cheque.objects.get(pk=redeemed.pk).blocked_reason == ""


def test_blocking_is_offered_only_while_a_cheque_can_still_be_used(funder, distributor, client_for):
    (booklet,) = stock_of(funder, {5: 1})
    allocate(funder, distributor, programme=booklet.programme, size=5, count=1)
    page = reverse("vouchers:booklet_detail", args=[booklet.number])
    assert "Perte ou vol" in client_for(distributor).get(page).content.decode()

    booklet.cheques.update(status=ChequeStatus.REDEEMED)

    assert "Perte ou vol" not in client_for(distributor).get(page).content.decode()


def test_blocking_without_a_reason_changes_nothing(funder, client_for):
    (booklet,) = stock_of(funder, {5: 1})
    answer = client_for(funder).post(
        reverse("vouchers:booklet_block", args=[booklet.number]), {"reason": " "}
    )
    assert answer.status_code == 200
    assert answer.context["block_form"].errors["reason"]
    assert Booklet.objects.get(pk=booklet.pk).status == BookletStatus.IN_STOCK


def test_single_cheques_are_blocked_and_the_booklet_stays_usable(funder, distributor, client_for):
    (booklet,) = stock_of(funder, {10: 1})
    allocate(funder, distributor, programme=booklet.programme, size=10, count=1)
    lost = list(booklet.cheques.filter(position__in=[3, 4]))
    answer = client_for(distributor).post(
        reverse("vouchers:cheques_block", args=[booklet.number]),
        {"cheques": [c.pk for c in lost], "reason": "Chèques arrachés"},
    )
    assert answer.status_code == 302
    assert set(
        booklet.cheques.filter(status=ChequeStatus.BLOCKED).values_list("position", flat=True)
    ) == {3, 4}
    assert Booklet.objects.get(pk=booklet.pk).status == BookletStatus.ALLOCATED


def test_cheques_of_another_booklet_cannot_be_slipped_into_the_form(funder, client_for):
    first, second = stock_of(funder, {5: 2})
    foreign = second.cheques.get(position=1)
    answer = client_for(funder).post(
        reverse("vouchers:cheques_block", args=[first.number]),
        {"cheques": [foreign.pk], "reason": "Perte"},
    )
    assert answer.status_code == 200
    assert answer.context["cheques_form"].errors["cheques"]
    assert Cheque.objects.get(pk=foreign.pk).status == ChequeStatus.ACTIVE


def test_a_blocked_booklet_is_replaced_once_with_its_unspent_value(funder, client_for):
    distributor = distributor_membership()
    (booklet,) = stock_of(funder, {10: 1})
    allocate(funder, distributor, programme=booklet.programme, size=10, count=1)
    Cheque.objects.filter(booklet=booklet, position__in=[1, 2]).update(status=ChequeStatus.REDEEMED)
    client = client_for(funder)
    detail = reverse("vouchers:booklet_detail", args=[booklet.number])
    assert "Émettre un chéquier de remplacement" not in client.get(detail).content.decode()
    client.post(reverse("vouchers:booklet_block", args=[booklet.number]), {"reason": "Perte"})
    assert "Émettre un chéquier de remplacement" in client.get(detail).content.decode()

    answer = client.post(reverse("vouchers:booklet_replace", args=[booklet.number]), follow=True)
    replacement = Booklet.objects.get(replaces=booklet)
    assert answer.redirect_chain[-1][0] == reverse(
        "vouchers:booklet_detail", args=[replacement.number]
    )
    assert replacement.size == 8
    assert sum(replacement.cheques.values_list("value_cents", flat=True)) == 8000
    assert replacement.holder == distributor.organisation
    booklet.refresh_from_db()
    assert booklet.replacement == replacement  # linked both ways
    assert booklet.number in answer.content.decode()  # « remplace le chéquier … »
    old_page = client.get(detail).content.decode()
    assert replacement.number in old_page
    assert "Émettre un chéquier de remplacement" not in old_page

    again = client.post(reverse("vouchers:booklet_replace", args=[booklet.number]), follow=True)
    assert "déjà été remplacé" in again.content.decode()
    assert Booklet.objects.filter(replaces=booklet).count() == 1


def test_a_distributor_cannot_issue_a_replacement(funder, distributor, client_for):
    (booklet,) = stock_of(funder, {5: 1})
    allocate(funder, distributor, programme=booklet.programme, size=5, count=1)
    client_for(distributor).post(
        reverse("vouchers:booklet_block", args=[booklet.number]), {"reason": "Perte"}
    )
    answer = client_for(distributor).post(
        reverse("vouchers:booklet_replace", args=[booklet.number])
    )
    assert answer.status_code == 403
    assert not Booklet.objects.filter(replaces=booklet).exists()


# --- Stock and expiry warning ----------------------------------------------------------------


def test_the_stock_page_counts_held_booklets_per_programme_and_value(
    funder, distributor, client_for
):
    booklets = stock_of(funder, {5: 2, 10: 4})
    programme = booklets[0].programme
    allocate(funder, distributor, programme=programme, size=10, count=3)
    allocate(funder, distributor, programme=programme, size=5, count=1)
    hand_out(distributor, Booklet.objects.get(number=booklets[2].number))

    page = client_for(distributor).get(reverse("vouchers:stock"))
    rows = {(r.size, r.booklet_value_cents): r for r in page.context["held"]}
    assert rows[(10, 10000)].allocated == 2
    assert rows[(10, 10000)].assigned == 1
    assert rows[(5, 5000)].allocated == 1
    funded = {
        r.size: r for r in client_for(funder).get(reverse("vouchers:stock")).context["funded"]
    }
    assert (funded[10].in_stock, funded[10].allocated, funded[10].assigned) == (1, 2, 1)
    assert (funded[5].in_stock, funded[5].allocated) == (1, 1)


def test_the_expiry_warning_shows_for_a_programme_ending_in_20_days_not_60(
    funder, distributor, client_for
):
    today = timezone.localdate()
    soon = stock_of(funder, {5: 4}, valid_until=today + timedelta(days=20), tolerance_days=0)
    later = stock_of(funder, {5: 2}, valid_until=today + timedelta(days=60), tolerance_days=0)
    allocate(funder, distributor, programme=soon[0].programme, size=5, count=3)
    allocate(funder, distributor, programme=later[0].programme, size=5, count=1)
    hand_out(distributor, Booklet.objects.get(number=soon[0].number))

    (warning,) = expiry_warnings(membership=funder)
    assert warning.programme == soon[0].programme
    assert (warning.days_left, warning.in_stock, warning.allocated) == (20, 1, 2)
    assert warning.ranges == [f"{soon[1].number} → {soon[3].number}"]
    (held,) = expiry_warnings(membership=distributor)
    assert (held.in_stock, held.allocated) == (0, 2)

    name = soon[0].programme.name
    for member in (funder, distributor):
        for url in (reverse("home"), reverse("vouchers:stock")):
            text = client_for(member).get(url).content.decode()
            assert f"« {name} » se termine dans 20 jours" in text, (member, url)
            assert later[0].programme.name + " » se termine" not in text
    assert expiry_warnings(membership=distributor_membership()) == []


def test_no_warning_once_every_booklet_is_handed_out(funder, distributor):
    today = timezone.localdate()
    (booklet,) = stock_of(funder, {5: 1}, valid_until=today + timedelta(days=5), tolerance_days=0)
    allocate(funder, distributor, programme=booklet.programme, size=5, count=1)
    hand_out(distributor, Booklet.objects.get(pk=booklet.pk))
    assert expiry_warnings(membership=funder) == []
    assert expiry_warnings(membership=distributor) == []


# --- Follow-up -------------------------------------------------------------------------------


def _distribution_scene(funder, booklet_count: int):
    """Two distributors (the first with two agents), hand-overs, redemptions and blockings."""
    first, second = distributor_membership(), distributor_membership()
    agents = [first, distributor_membership(MemberRole.AGENT, organisation=first.organisation)]
    tens = booklet_count * 2 // 3
    booklets = stock_of(funder, {10: tens, 5: booklet_count - tens})
    programme = booklets[0].programme
    allocate(funder, first, programme=programme, size=10, count=max(1, tens // 2))
    allocate(funder, second, programme=programme, size=5, count=max(1, (booklet_count - tens) // 2))
    held = list(Booklet.objects.filter(holder=first.organisation).order_by("number"))
    for index, booklet in enumerate(held[: len(held) * 2 // 3]):
        hand_out(agents[index % 2], booklet)
    handed = Booklet.objects.filter(status=BookletStatus.ASSIGNED).order_by("number")
    for booklet in handed[::2]:
        Cheque.objects.filter(booklet=booklet, position=1).update(status=ChequeStatus.REDEEMED)
    for booklet in [*handed[1:2], *Booklet.objects.filter(holder=second.organisation)[:1]]:
        Booklet.objects.filter(pk=booklet.pk).update(status=BookletStatus.BLOCKED)
    return programme, first, second, agents


def _expected(booklets, key) -> dict:
    """Counts computed one booklet at a time, straight from the tables."""
    found: dict = defaultdict(Counter)
    for booklet in booklets:
        counts = found[key(booklet)]
        counts[booklet.status] += 1
        if booklet.status == BookletStatus.ASSIGNED and booklet.cheques.filter(
            status=ChequeStatus.REDEEMED
        ):
            counts["started"] += 1
    return {
        k: (
            c[BookletStatus.IN_STOCK],
            c[BookletStatus.ALLOCATED],
            c[BookletStatus.ASSIGNED],
            c["started"],
            c[BookletStatus.BLOCKED],
        )
        for k, c in found.items()
    }


def _figures(rows) -> dict:
    return {r.key: (r.in_stock, r.allocated, r.handed_out, r.started, r.blocked) for r in rows}


def test_follow_up_figures_equal_counts_taken_from_the_tables(funder, client_for):
    _programme, first, _second, agents = _distribution_scene(funder, 24)
    rows = client_for(funder).get(reverse("vouchers:follow_up")).context["by_distributor"]
    expected = _expected(Booklet.objects.filter(funder=funder.organisation), lambda b: b.holder_id)
    assert _figures(rows) == expected
    assert sum(f[2] for f in expected.values()) > 0 and sum(f[3] for f in expected.values()) > 0
    assert rows[0].key is None and rows[0].label == "Stock du commanditaire"

    by_agent = client_for(first).get(reverse("vouchers:follow_up")).context["by_agent"]
    expected = _expected(
        Booklet.objects.filter(holder=first.organisation), lambda b: b.assigned_by_id
    )
    assert _figures(by_agent) == expected
    assert {r.key for r in by_agent} == {None, agents[0].user_id, agents[1].user_id}
    assert client_for(first).get(reverse("vouchers:follow_up")).context["by_distributor"] is None


def test_follow_up_counts_hand_overs_within_the_period(funder, distributor):
    booklets = stock_of(funder, {5: 3})
    programme = booklets[0].programme
    allocate(funder, distributor, programme=programme, size=5, count=3)
    for booklet in booklets:
        hand_out(distributor, Booklet.objects.get(pk=booklet.pk))
    today = timezone.localdate()
    for booklet, days_ago in zip(booklets, (40, 10, 0), strict=True):
        Booklet.objects.filter(pk=booklet.pk).update(
            assigned_at=timezone.now() - timedelta(days=days_ago)
        )
    (row,) = [
        r
        for r in follow_up_by_distributor(
            membership=funder, since=today - timedelta(days=15), until=today - timedelta(days=1)
        )
        if r.key
    ]
    assert row.handed_out == 1
    (row,) = follow_up_by_agent(membership=distributor, programme=programme, since=today)
    assert row.handed_out == 1


# Session, user and membership, the programme filter, one aggregate per table.
FOLLOW_UP_QUERIES = 7


@pytest.mark.parametrize("booklet_count", [10, 200])
def test_the_follow_up_page_costs_the_same_queries_whatever_the_number_of_booklets(
    booklet_count, client_for, django_assert_max_num_queries
):
    funder = funder_membership(is_distributor=True)  # both tables on one page
    _distribution_scene(funder, booklet_count)
    allocate(funder, funder, programme=Booklet.objects.first().programme, count=1, size=10)
    client = client_for(funder)
    with django_assert_max_num_queries(FOLLOW_UP_QUERIES):
        page = client.get(reverse("vouchers:follow_up"))
    assert len(page.context["by_distributor"]) == 4  # stock, two distributors, itself


def test_the_follow_up_query_count_does_not_grow(client_for):
    """The same page, measured exactly, on a small and on a large scene."""
    measured = []
    for booklet_count in (10, 200):
        funder = funder_membership()
        _distribution_scene(funder, booklet_count)
        client = client_for(funder)
        client.get(reverse("vouchers:follow_up"))  # warm caches (sessions, content types)
        with CaptureQueriesContext(connection) as queries:
            client.get(reverse("vouchers:follow_up"))
        measured.append(len(queries))
    assert measured[0] == measured[1], measured


def test_the_csv_export_streams_the_same_rows(funder, client_for):
    _distribution_scene(funder, 12)
    client = client_for(funder)
    page = client.get(reverse("vouchers:follow_up"))
    answer = client.get(reverse("vouchers:follow_up_csv"), {"vue": "structures"})
    assert answer.status_code == 200
    assert answer.streaming
    assert answer["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in answer["Content-Disposition"]
    body = b"".join(answer.streaming_content)
    assert body.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert lines[0] == [
        "Structure relais",
        "En stock",
        "Confiés, pas encore remis",
        "Remis",
        "Entamés",
        "Bloqués",
    ]
    assert lines[1:] == [
        [
            r.label,
            str(r.in_stock),
            str(r.allocated),
            str(r.handed_out),
            str(r.started),
            str(r.blocked),
        ]
        for r in page.context["by_distributor"]
    ]


def test_follow_up_filters_by_programme(funder, client_for):
    _distribution_scene(funder, 6)
    other = stock_of(funder, {5: 2})
    page = client_for(funder).get(
        reverse("vouchers:follow_up"), {"programme": other[0].programme_id}
    )
    (row,) = page.context["by_distributor"]
    assert (row.key, row.in_stock) == (None, 2)
    bad = client_for(funder).get(
        reverse("vouchers:follow_up"), {"du": "2026-05-02", "au": "2026-05-01"}
    )
    assert bad.status_code == 200
    assert bad.context["form"].errors["au"]


def test_pages_answer_for_each_role(funder, distributor, operator_admin, client_for):
    stock_of(funder, {5: 1})
    for member in (funder, distributor, operator_admin):
        client = client_for(member)
        for name in ("booklet_list", "movement_list", "follow_up", "stock"):
            assert client.get(reverse(f"vouchers:{name}")).status_code == 200, (member, name)
    provider = MembershipFactory(
        organisation=OrganisationFactory(is_funder=False, is_provider=True)
    )
    assert client_for(provider).get(reverse("vouchers:booklet_list")).status_code == 403
    for member in (funder, distributor):
        assert client_for(member).get(reverse("vouchers:booklet_return")).status_code == 200
    assert client_for(operator_admin).get(reverse("vouchers:booklet_return")).status_code == 403
