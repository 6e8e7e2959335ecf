"""Demo settlement for `manage.py seed_demo` (idempotent): redemptions over the last two months,
a batch for the month before last paid today and one awaiting approval for last month.

Expects the demo organisations, the vouchers demo (handed-out booklets of the Gironde programme)
and the accreditations (Cap Numérique and La Cabane du Web approved, bank details verified).
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta

from django.db.models import Sum
from django.utils import timezone

from orgs.audit import Actor
from orgs.models import Accreditation, AccreditationSite, BankStatus, Membership
from vouchers.demo import demo_at, demo_backdate_hand_out
from vouchers.models import Booklet, BookletStatus, Cheque, ChequeStatus
from vouchers.services.distribution import Person, booklet_assign

from .models import (
    BatchStatus,
    Payout,
    Redemption,
    RedemptionStatus,
    SettlementBatch,
)
from .services.redeem import cheques_redeem
from .services.settlement import (
    batch_approve,
    batch_compute,
    batch_create,
    batch_export,
    batch_mark_paid,
    previous_month_end,
)
from .services.statements import payout_statement_render

# Who redeems at each demo provider's counter.
PROVIDER_AGENTS = {
    "cap-numerique": "lea.fontaine@cap-numerique.demo",
    "cabane-du-web": "omar.diallo@cabane-du-web.demo",
}
# (provider, months before the current one, day, hour, cheques): the month before last is
# paid (Cap 60 €, Cabane 40 €), last month awaits approval (Cap 30 €, Cabane 40 €).
PLAN = [
    ("cap-numerique", 2, 4, 10, 2),
    ("cap-numerique", 2, 11, 14, 1),
    ("cabane-du-web", 2, 12, 10, 2),
    ("cap-numerique", 2, 19, 16, 3),
    ("cabane-du-web", 2, 25, 11, 2),
    ("cap-numerique", 1, 3, 9, 1),
    ("cabane-du-web", 1, 6, 15, 1),
    ("cap-numerique", 1, 14, 10, 2),
    ("cabane-du-web", 1, 17, 17, 2),
    ("cabane-du-web", 1, 24, 10, 1),
]
KEY = "demo-settlement-{index}"


def _actor(email: str, slug: str) -> Actor:
    membership = (
        Membership.objects.active()
        .select_related("organisation", "user")
        .get(user__email=email, organisation__slug=slug)
    )
    return Actor(user=membership.user, membership=membership)


def _month_start(months_back: int) -> date:
    first = timezone.localdate().replace(day=1)
    for _ in range(months_back):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.get_current_timezone())


def _payable(slug: str) -> bool:
    return (
        Accreditation.objects.valid_on(timezone.localdate())
        .filter(organisation__slug=slug, bank_status=BankStatus.VERIFIED)
        .exists()
    )


def _available_cheques():
    return Cheque.objects.filter(
        status=ChequeStatus.ACTIVE,
        expires_on__gte=timezone.localdate(),
        booklet__status=BookletStatus.ASSIGNED,
    ).order_by("booklet_id", "position")


def _hand_out_more(needed: int) -> int:
    """Hand out CCAS booklets to made-up people until ``needed`` more cheques are active."""
    ccas = _actor("julien.petit@ccas-bordeaux.demo", "ccas-bordeaux")
    booklets = Booklet.objects.filter(
        holder=ccas.organisation, status=BookletStatus.ALLOCATED
    ).order_by("number")
    handed = 0
    for index, booklet in enumerate(booklets[: math.ceil(needed / 5)]):
        booklet_assign(
            actor=ccas,
            booklet=booklet,
            person=Person("Remboursement", f"Démo {index + 1}", date(1958, 4, 1 + index)),
            age_bracket="60-74",
            postcode="33000",
        )
        # Before the demo redemptions (which start two months back), like vouchers.demo's.
        demo_backdate_hand_out(booklet.pk, demo_at(3, 28, 11, index))
        handed += 1
        if _available_cheques().count() >= needed:
            break
    return handed


def _seed_redemptions() -> list[str]:
    todo = [
        (index, row)
        for index, row in enumerate(PLAN)
        if not Redemption.objects.filter(idempotency_key=KEY.format(index=index)).exists()
    ]
    if not todo:
        return []
    needed = sum(row[4] for _index, row in todo)
    lines = []
    if _available_cheques().count() < needed:
        lines.append(f"{_hand_out_more(needed)} more demo booklet(s) handed out for redemptions")
    pool = list(_available_cheques().values_list("code", flat=True)[:needed])
    if len(pool) < needed:
        return [*lines, "Redemptions skipped: not enough handed-out demo cheques."]
    actors = {slug: _actor(email, slug) for slug, email in PROVIDER_AGENTS.items()}
    for index, (slug, months_back, day, hour, count) in todo:
        actor = actors[slug]
        site = (
            AccreditationSite.objects.filter(
                accreditation__organisation=actor.organisation, is_approved=True, is_active=True
            )
            .prefetch_related("services")
            .order_by("pk")
            .first()
        )
        services = sorted(site.services.all(), key=lambda s: s.name) if site else []
        if not services:
            return [*lines, f"Redemptions skipped: {actor.organisation.name} has no open site."]
        codes, pool = pool[:count], pool[count:]
        redemption = cheques_redeem(
            actor=actor,
            codes=codes,
            service=services[index % len(services)],
            site=site,
            idempotency_key=KEY.format(index=index),
        )
        # Demo only: services always stamp "now"; moving the redemption into a past month
        # gives the batches below closed periods to cover.
        Redemption.objects.filter(pk=redemption.pk).update(
            created_at=_at(_month_start(months_back).replace(day=day), hour, 15)
        )
    lines.append(
        f"{len(todo)} redemptions at Cap Numérique and La Cabane du Web over the last two months"
    )
    return lines


def _has_unsettled(period_end: date) -> bool:
    cutoff = _at(period_end + timedelta(days=1), 0)
    return Redemption.objects.filter(
        status=RedemptionStatus.ACTIVE, payout__isnull=True, created_at__lt=cutoff
    ).exists()


def _euros(cents: int) -> str:
    return f"{cents / 100:.2f} €".replace(".", ",")


def _paid_batch(claire: Actor, karim: Actor) -> SettlementBatch | None:
    """The month before last: created by Claire, approved and paid (today) by Karim."""
    period_end = _month_start(1) - timedelta(days=1)
    batch = SettlementBatch.objects.filter(period_end=period_end).first()
    if batch is not None:
        return batch_compute(batch_id=batch.pk)  # finishes an interrupted run, else no-op
    if not _has_unsettled(period_end):
        return None
    batch = batch_create(actor=claire, period_end=period_end)
    batch = batch_compute(batch_id=batch.pk)
    batch = batch_approve(actor=karim, batch=batch)
    batch = batch_export(actor=karim, batch=batch, execution_date=timezone.localdate())
    # Not backdated, unlike the redemptions: marking paid writes the funders' ledger rows, which
    # are append-only (a PostgreSQL trigger refuses UPDATE) and so keep today's date; the
    # batch's own steps and payment date stay today too, so that they match those rows.
    return batch_mark_paid(actor=karim, batch=batch, paid_on=timezone.localdate())


def _pending_batch(claire: Actor) -> SettlementBatch | None:
    """Last month: computed, awaiting approval by an operator other than Claire."""
    period_end = previous_month_end()
    batch = SettlementBatch.objects.filter(period_end=period_end).first()
    if batch is not None:
        return batch_compute(batch_id=batch.pk)
    if not _has_unsettled(period_end):
        return None
    batch = batch_create(actor=claire, period_end=period_end)
    return batch_compute(batch_id=batch.pk)


def seed_settlement() -> list[str]:
    """Redemptions, a paid batch and a batch awaiting approval, statements rendered."""
    missing = [slug for slug in PROVIDER_AGENTS if not _payable(slug)]
    if missing:
        return [f"Settlement skipped: not accredited with verified bank details: {missing}"]
    lines = _seed_redemptions()
    claire = _actor("claire.martin@medias-cite.demo", "medias-cite")
    karim = _actor("karim.benali@medias-cite.demo", "medias-cite")
    batches = [b for b in (_paid_batch(claire, karim), _pending_batch(claire)) if b is not None]
    for payout_id in Payout.objects.filter(
        batch__in=batches, statement_ready_at__isnull=True
    ).values_list("pk", flat=True):
        payout_statement_render(payout_id=payout_id)  # the task may have done it already
    for batch in batches:
        held = batch.held.aggregate(total=Sum("amount_cents"))["total"]
        state = {
            BatchStatus.PAID: "paid",
            BatchStatus.PENDING_APPROVAL: "awaiting approval (created by Claire; Karim approves)",
        }.get(batch.status, batch.get_status_display())
        lines.append(
            f"{batch.reference}: {state}, {batch.payout_count} payout(s), "
            f"{_euros(batch.total_cents)}" + (f", {_euros(held)} held" if held else "")
        )
    return lines
