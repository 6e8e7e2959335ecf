"""Generated data for the dashboards' tests, made through the real services where they exist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.utils import timezone

from orgs.models import Membership, ServiceCategory
from redemption.models import Reason, Redemption, ScanAttempt
from redemption.services.redeem import cheques_redeem
from tests.factories import MembershipFactory, ServiceCategoryFactory
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import actor_for
from vouchers.models import Beneficiary, Booklet, Cheque, ChequeStatus, Programme

SITUATIONS = ["rsa", "job_seeker", "", "senior"]
AGES = ["16-25", "26-44", "60-74", "75+"]


@dataclass
class Funded:
    """A funder that distributes its booklets, a provider that redeemed some of its cheques."""

    funder: Membership
    programme: Programme
    provider: Membership
    services: list[ServiceCategory]
    redeemed: int


def month_start(months_ago: int) -> datetime:
    """Noon on the 10th of the month ``months_ago`` before this one, Paris time."""
    today = timezone.localdate().replace(day=10)
    year, month = divmod(today.year * 12 + today.month - 1 - months_ago, 12)
    return datetime.combine(
        today.replace(year=year, month=month + 1), time(12), tzinfo=timezone.get_current_timezone()
    )


def funded_world(*, booklets: int = 4, redeem_per_booklet: int = 3, offset: int = 0) -> Funded:
    """Booklets of 5 handed out over the last months, redeemed in part for two services.

    Hand-outs and redemptions are spread over the ``booklets`` months before this one (dates
    moved after the services ran), beneficiaries get varied age brackets and situations, the
    last booklet's unredeemed cheques expire, and the provider's scans are refused twice.
    """
    world = handed_out_cheques(booklets=booklets, size=5, people_offset=offset)
    extra = ServiceCategoryFactory()
    world.programme.categories.add(extra)
    services = [world.service, extra]
    provider, site = accredited_provider_member(services=services)
    funder = MembershipFactory(organisation=world.programme.funder)
    redeemed = 0
    for index, booklet in enumerate(world.booklets):
        when = month_start(index + 1)
        Booklet.objects.filter(pk=booklet.pk).update(assigned_at=when)
        booklet.refresh_from_db()
        Beneficiary.objects.filter(pk=booklet.beneficiary_id).update(
            situation=SITUATIONS[index % len(SITUATIONS)], age_bracket=AGES[index % len(AGES)]
        )
        codes = list(
            Cheque.objects.filter(booklet=booklet)
            .order_by("position")
            .values_list("code", flat=True)
        )
        for n, code in enumerate(codes[:redeem_per_booklet]):
            redemption = cheques_redeem(
                actor=actor_for(provider), codes=[code], service=services[n % 2], site=site
            )
            Redemption.objects.filter(pk=redemption.pk).update(created_at=when + timedelta(days=1))
            redeemed += 1
    last = world.booklets[-1]
    Cheque.objects.filter(booklet=last, status=ChequeStatus.ACTIVE).update(
        status=ChequeStatus.EXPIRED, expires_on=month_start(1).date()
    )
    for reason in (Reason.UNKNOWN_CHEQUE, Reason.EXPIRED):
        ScanAttempt.objects.create(
            organisation=provider.organisation, user=provider.user, code="X", reason=reason
        )
    return Funded(
        funder=funder,
        programme=world.programme,
        provider=provider,
        services=services,
        redeemed=redeemed,
    )
