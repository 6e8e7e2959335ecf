"""Demo catalogue, programmes and orders for `manage.py seed_demo` (idempotent)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone

from orgs.audit import Actor
from orgs.models import Membership

from .models import (
    Beneficiary,
    Booklet,
    BookletMovement,
    BookletStatus,
    Order,
    OrderStatus,
    PrintRun,
    Programme,
    ServiceCategory,
)
from .services.distribution import Person, booklet_assign, booklets_allocate
from .services.issuance import order_issue
from .services.orders import order_approve, order_create, order_submit
from .services.programmes import programme_create, service_category_save

CATALOGUE = [
    (
        "Prendre en main un smartphone ou une tablette",
        "Allumer, naviguer, installer une application, régler l'appareil.",
    ),
    (
        "Démarches administratives en ligne",
        "Créer ses comptes (ameli, CAF, impots.gouv, France Travail), déposer un dossier.",
    ),
    (
        "Utiliser la messagerie électronique",
        "Créer une adresse, écrire, répondre, joindre un document.",
    ),
    ("Rechercher un emploi en ligne", "CV, candidatures, entretiens en visio."),
    ("Sécurité et vie privée en ligne", "Mots de passe, arnaques, données personnelles."),
    ("Parentalité numérique", "Accompagner ses enfants, contrôle parental, ENT de l'école."),
]


def demo_month_start(months_back: int) -> date:
    """The first day of the month ``months_back`` months before the current one."""
    first = timezone.localdate().replace(day=1)
    for _ in range(months_back):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def demo_at(months_back: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A local time on ``day`` of the month ``months_back`` months before the current one."""
    return datetime.combine(
        demo_month_start(months_back).replace(day=day),
        time(hour, minute),
        tzinfo=timezone.get_current_timezone(),
    )


def demo_backdate_hand_out(booklet_id: int, at: datetime) -> None:
    """Demo only: the hand-out service stamps "now"; move a demo hand-out (the booklet's
    ``assigned_at`` and its beneficiary's record) to ``at``, before the demo redemptions."""
    Booklet.objects.filter(pk=booklet_id).update(assigned_at=at)
    Beneficiary.objects.filter(booklets__pk=booklet_id).update(created_at=at)


def _backdate_order(order: Order) -> None:
    """Demo only: the services stamp "now"; the printed Gironde order is moved about four
    months back (submitted, paid, approved and issued then) so that the cheques exist before
    the demo allocations, hand-outs and redemptions. The cheques' expiry is the programme's end
    date, so they stay valid. The ledger and the audit log are append-only (a PostgreSQL
    trigger refuses UPDATE): their rows keep the day the demo was loaded."""
    issued = demo_at(4, 7, 11)
    Order.objects.filter(pk=order.pk).update(
        created_at=demo_at(4, 2, 9, 30),
        submitted_at=demo_at(4, 2, 9, 45),
        payment_received_on=demo_month_start(4).replace(day=4),
        approved_at=issued,
        issued_at=issued + timedelta(minutes=1),
    )
    Order.objects.filter(pk=order.pk, printed_at__isnull=False).update(printed_at=demo_at(4, 9, 15))
    Booklet.objects.filter(order=order).update(created_at=issued + timedelta(minutes=1))
    PrintRun.objects.filter(order=order).update(started_at=issued + timedelta(minutes=1))
    PrintRun.objects.filter(order=order, finished_at__isnull=False).update(
        finished_at=demo_at(4, 9, 15)
    )


def _actor(email: str, slug: str) -> Actor:
    membership = (
        Membership.objects.active()
        .select_related("organisation", "user")
        .get(user__email=email, organisation__slug=slug)
    )
    return Actor(user=membership.user, membership=membership)


# Pseudonymous demo people: the names only feed the dedup key and are not stored.
DEMO_PEOPLE = [
    ("Martin", "Josiane", date(1948, 3, 12), "75+", "33000", "female", "senior"),
    ("Nguyen", "Thierry", date(1969, 11, 2), "45-59", "33000", "male", "job_seeker"),
    ("Benali", "Samira", date(1985, 6, 21), "26-44", "33130", "female", "rsa"),
    ("Lopez", "Michel", date(1957, 1, 30), "60-74", "33800", "male", "senior"),
    ("Diallo", "Aminata", date(1999, 9, 9), "16-25", "33130", "female", "student"),
    ("Moreau", "Gérard", date(1951, 5, 5), "60-74", "33400", "male", "disability"),
]


def _seed_distribution(funder: Actor, programme: Programme) -> list[str]:
    """Booklets allocated to the demo distributors, some already handed out."""
    if BookletMovement.objects.exists():
        return []
    ccas = _actor("julien.petit@ccas-bordeaux.demo", "ccas-bordeaux")
    begles = _actor("ines.moreau@fs-begles.demo", "france-services-begles")
    to_ccas = booklets_allocate(
        actor=funder, distributor=ccas.organisation, programme=programme, size=10, count=10
    )
    to_begles = booklets_allocate(
        actor=funder, distributor=begles.organisation, programme=programme, size=5, count=5
    )
    booklets_allocate(
        actor=funder, distributor=funder.organisation, programme=programme, size=10, count=3
    )
    # Demo only: the services stamp "now"; the allocations are moved to early in the month
    # after the order's issuance (three months back), before the hand-outs below.
    movements = BookletMovement.objects.filter(to_organisation__isnull=False).order_by("pk")
    for index, movement in enumerate(movements):
        at = demo_at(3, 4 + index, 10)
        BookletMovement.objects.filter(pk=movement.pk).update(created_at=at)
        movement.booklets.update(allocated_at=at)
    handed = 0
    for index, ((agent, movement), person) in enumerate(
        zip([(ccas, to_ccas)] * 4 + [(begles, to_begles)] * 2, DEMO_PEOPLE, strict=True)
    ):
        booklet = movement.booklets.filter(status=BookletStatus.ALLOCATED).order_by("number")[0]
        last, first, born, age, postcode, gender, situation = person
        booklet_assign(
            actor=agent,
            booklet=booklet,
            person=Person(last, first, born),
            age_bracket=age,
            postcode=postcode,
            gender=gender,
            situation=situation,
        )
        # Before the first demo redemption (early two months back): see redemption.demo.
        demo_backdate_hand_out(booklet.pk, demo_at(3, 12 + 3 * index, 14))
        handed += 1
    return [f"18 booklets allocated to 3 distributors, {handed} handed out"]


def seed_vouchers() -> list[str]:
    """Catalogue, a programme per demo funder, a printed order and one awaiting approval."""
    operator = _actor("claire.martin@medias-cite.demo", "medias-cite")
    gironde = _actor("helene.dupuy@gironde.demo", "gironde")
    bordeaux = _actor("marc.roux@bordeaux.demo", "ville-bordeaux")
    for name, description in CATALOGUE:
        if not ServiceCategory.objects.filter(name=name).exists():
            service_category_save(actor=operator, name=name, description=description)
    categories = list(ServiceCategory.objects.filter(is_active=True))
    year = timezone.localdate().year + 1

    def programme(actor_funder: Actor, name: str, **fields) -> Programme:
        existing = Programme.objects.filter(name=name).first()
        if existing:
            return existing
        return programme_create(
            actor=operator,
            funder=actor_funder.organisation,
            categories=categories,
            name=name,
            **fields,
        )

    gironde_programme = programme(
        gironde,
        f"Chèque APTIC Gironde {year}",
        cheque_value_cents=1000,
        offers_booklet_of_5=True,
        offers_booklet_of_10=True,
        validity_kind="fixed_date",
        valid_until=date(year, 12, 31),
        tolerance_days=30,
        departements=["33"],
        fee_rate_bp=400,
        unused_value_policy="credit_note",
        max_booklets_per_beneficiary=1,
        limit_period_days=365,
        max_booklets_per_order=10000,
        is_active=True,
    )
    bordeaux_programme = programme(
        bordeaux,
        f"Pass numérique Bordeaux {year}",
        cheque_value_cents=1000,
        offers_booklet_of_5=True,
        offers_booklet_of_10=False,
        validity_kind="months",
        validity_months=12,
        tolerance_days=0,
        departements=["33"],
        fee_rate_bp=400,
        unused_value_policy="refund",
        max_booklets_per_beneficiary=2,
        limit_period_days=365,
        max_booklets_per_order=2000,
        is_active=True,
    )
    summary = []
    if not Order.objects.filter(programme=gironde_programme).exists():
        order = order_create(
            actor=gironde,
            programme=gironde_programme,
            lines={10: 20, 5: 10},
            purchase_order_number="BC-2026-0457",
            print_text="Offert par le Département de la Gironde",
        )
        order_submit(actor=gironde, order=order)
        order_approve(
            actor=operator,
            order=order,
            payment_reference="VIR-GIRONDE-2026-11",
            payment_received_on=timezone.localdate(),  # moved back by _backdate_order
        )
        order_issue(order_id=order.pk)  # the task does it too; this call is then a no-op
        _backdate_order(order)
        summary.append(f"{order.reference}: 30 booklets, approved and issued (printing queued)")
    if not Order.objects.filter(programme=bordeaux_programme).exists():
        order = order_create(
            actor=bordeaux,
            programme=bordeaux_programme,
            lines={5: 40},
            purchase_order_number="VDB-BC-8812",
        )
        order_submit(actor=bordeaux, order=order)
        summary.append(f"{order.reference}: 40 booklets of 5, waiting for the operator's approval")
    summary.extend(_seed_distribution(gironde, gironde_programme))
    pending = Order.objects.filter(status=OrderStatus.SUBMITTED).count()
    summary.append(f"{pending} order(s) waiting for approval")
    return summary
