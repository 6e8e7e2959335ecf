"""Reads of the hand-outs list: each booklet handed to a beneficiary, as the caller may see it.

A hand-out is recorded on the booklet itself (``assigned_at``, ``assigned_by``, ``beneficiary``,
set once by ``booklet_assign``). A booklet blocked since keeps them, so it stays in the list; a
replacement copies them from the booklet it replaces and is the same hand-out, not a new one
(as for the beneficiary limit), so only the original booklet is a row.

Who sees what, failing closed: a funder sees the hand-outs of its own booklets, whoever made
them; a distributor those its own agents made; operators all; any other organisation none.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Q, QuerySet

from orgs.models import Membership, Organisation, User

from ..models import Booklet, Programme
from .stock import _period


def handouts_visible_to(membership: Membership) -> QuerySet[Booklet]:
    """Every hand-out the caller may see, unfiltered and unordered."""
    organisation = membership.organisation
    booklets = Booklet.objects.visible_to(membership).filter(
        assigned_at__isnull=False, replaces__isnull=True
    )
    if organisation.is_operator:
        return booklets
    reach = Q()
    if organisation.is_funder:
        reach |= Q(funder=organisation)
    if organisation.is_distributor:
        # The organisation the agent acted for at the counter, recorded on the beneficiary.
        reach |= Q(beneficiary__distributor=organisation)
    if not reach:
        return booklets.none()
    return booklets.filter(reach)


def handout_list(
    *,
    membership: Membership,
    programme: Programme | None = None,
    since: date | None = None,
    until: date | None = None,
    agent: User | None = None,
    distributor: Organisation | None = None,
) -> QuerySet[Booklet]:
    """Hand-outs the caller sees, filtered, newest first, with everything a row shows.

    One query for any number of rows (the page and the export read the same columns).
    """
    handouts = handouts_visible_to(membership).filter(_period(since, until))
    if programme is not None:
        handouts = handouts.filter(programme=programme)
    if agent is not None:
        handouts = handouts.filter(assigned_by=agent)
    if distributor is not None:
        handouts = handouts.filter(holder=distributor)
    return handouts.select_related(
        "programme", "holder", "assigned_by", "beneficiary", "replacement"
    ).order_by("-assigned_at", "-number")


def handout_filter_programmes(*, membership: Membership) -> QuerySet[Programme]:
    """Programmes of the hand-outs the caller sees (the programme filter)."""
    handouts = handouts_visible_to(membership)
    return Programme.objects.filter(pk__in=handouts.values("programme")).order_by("name")


def handout_filter_agents(*, membership: Membership) -> QuerySet[User]:
    """The caller's own agents who handed out booklets (a distributor's agent filter)."""
    handouts = handouts_visible_to(membership).filter(
        beneficiary__distributor=membership.organisation
    )
    return User.objects.filter(pk__in=handouts.values("assigned_by")).order_by("full_name", "email")


def handout_filter_distributors(*, membership: Membership) -> QuerySet[Organisation]:
    """Distributors whose hand-outs the caller sees (a funder's or operator's filter)."""
    handouts = handouts_visible_to(membership)
    return Organisation.objects.filter(pk__in=handouts.values("holder")).order_by("name")
