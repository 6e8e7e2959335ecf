"""Distribution: funders allocate booklets to distributors, who hand them to beneficiaries."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from aptic.errors import Conflict, NotFound, ValidationFailed
from orgs.audit import Actor, audit_record
from orgs.models import Organisation
from orgs.notifications import email_on_commit
from orgs.permissions import membership_has_permission, require
from orgs.selectors import organisation_admin_emails
from orgs.validators import clean_postcode

from ..dedup import dedup_key
from ..models import (
    AgeBracket,
    Beneficiary,
    BeneficiaryLimitLock,
    Booklet,
    BookletMovement,
    BookletStatus,
    Cheque,
    ChequeStatus,
    CreditNote,
    Gender,
    MovementKind,
    Order,
    Programme,
    Situation,
    ValidityKind,
)


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate_day in range(day.day, 0, -1):  # 31 January + 1 month → 28/29 February
        try:
            return date(year, month, candidate_day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _record_movement(
    *, actor: Actor, kind: str, source: Organisation, target: Organisation, booklets: list[Booklet]
) -> BookletMovement:
    numbers = sorted(b.number for b in booklets)
    movement = BookletMovement.objects.create(
        kind=kind,
        from_organisation=source,
        to_organisation=target,
        booklet_count=len(booklets),
        value_cents=sum(b.size * b.programme.cheque_value_cents for b in booklets),
        first_number=numbers[0],
        last_number=numbers[-1],
        actor=actor.user,
    )
    movement.booklets.set(booklets)
    return movement


@transaction.atomic
def booklets_allocate(
    *,
    actor: Actor,
    distributor: Organisation,
    programme: Programme | None = None,
    size: int | None = None,
    count: int | None = None,
    first_number: str = "",
    last_number: str = "",
) -> BookletMovement:
    """Give in-stock booklets to a distributor: the next ``count`` ones, or a number range.

    The booklets are locked in number order and moved by compare-and-set, so two allocations at
    once never hand the same booklet twice; all or nothing.
    """
    require(actor.membership, "booklets:allocate")
    funder = actor.organisation
    if not distributor.is_distributor:
        raise ValidationFailed(
            _("Cette organisation n'est pas une structure relais."),
            field="distributor",
            code="not_a_distributor",
        )
    candidates = Booklet.objects.filter(
        funder=funder, status=BookletStatus.IN_STOCK, holder__isnull=True
    ).order_by("number")
    if programme is not None:
        candidates = candidates.filter(programme=programme)
    if size:
        candidates = candidates.filter(size=size)
    if first_number or last_number:
        first_number, last_number = first_number.strip().upper(), last_number.strip().upper()
        if not first_number or not last_number or first_number > last_number:
            raise ValidationFailed(
                _("Indiquez un premier et un dernier numéro, dans l'ordre."),
                field="first_number",
                code="invalid_range",
            )
        in_range = Booklet.objects.filter(
            funder=funder, number__gte=first_number, number__lte=last_number
        )
        if programme is not None:
            in_range = in_range.filter(programme=programme)
        unavailable = in_range.exclude(pk__in=candidates.values("pk")).count()
        if unavailable:
            raise Conflict(
                _("%(n)s chéquier(s) de cette plage ne sont pas en stock.") % {"n": unavailable},
                code="not_in_stock",
            )
        candidates = candidates.filter(number__gte=first_number, number__lte=last_number)
        wanted = None
    else:
        if not count or count < 1:
            raise ValidationFailed(
                _("Indiquez un nombre de chéquiers supérieur à zéro."),
                field="count",
                code="invalid_count",
            )
        wanted = count
    ids = list(
        candidates.values_list("pk", flat=True)[:wanted]
        if wanted
        else candidates.values_list("pk", flat=True)
    )
    if not ids or (wanted and len(ids) < wanted):
        raise Conflict(
            _("Stock insuffisant : %(available)s chéquier(s) disponible(s).")
            % {"available": len(ids)},
            code="insufficient_stock",
        )
    locked = list(
        Booklet.objects.select_for_update()
        .filter(pk__in=ids)
        .order_by("pk")
        .select_related("programme")
    )
    now = timezone.now()
    moved = Booklet.objects.filter(
        pk__in=ids, status=BookletStatus.IN_STOCK, holder__isnull=True
    ).update(status=BookletStatus.ALLOCATED, holder=distributor, allocated_at=now)
    if moved != len(ids):  # another allocation took some of them first
        raise Conflict(
            _("Ces chéquiers viennent d'être attribués par ailleurs : réessayez."),
            code="concurrent_allocation",
        )
    movement = _record_movement(
        actor=actor,
        kind=MovementKind.ALLOCATION,
        source=funder,
        target=distributor,
        booklets=locked,
    )
    audit_record(
        actor=actor,
        action="vouchers.booklets.allocated",
        target=movement,
        data={
            "to": distributor.pk,
            "count": len(ids),
            "first": movement.first_number,
            "last": movement.last_number,
        },
    )
    emails = organisation_admin_emails(organisation=distributor)
    if emails:
        email_on_commit(
            to=emails,
            template="booklets_allocated",
            organisation=distributor,
            context={"movement": movement, "funder": funder.name, "distributor": distributor.name},
        )
    return movement


@transaction.atomic
def booklets_return(*, actor: Actor, numbers: list[str]) -> BookletMovement:
    """Bring allocated (not handed-out) booklets back to the funder's stock.

    Either side may do it: the funder recalls them, or the holding distributor gives them back.
    """
    organisation = actor.organisation
    numbers = sorted({n.strip().upper() for n in numbers if n.strip()})
    if not numbers:
        raise ValidationFailed(_("Indiquez au moins un numéro."), field="numbers", code="required")
    booklets = list(
        Booklet.objects.select_for_update(of=("self",))
        .filter(number__in=numbers)
        .filter(Q(funder=organisation) | Q(holder=organisation))
        .select_related("programme", "holder", "funder")
        .order_by("pk")
    )
    if len(booklets) != len(numbers):
        raise NotFound(_("Chéquier introuvable."), code="booklet_not_found")
    if any(b.status != BookletStatus.ALLOCATED for b in booklets):
        raise Conflict(
            _("Seuls des chéquiers confiés et pas encore remis peuvent revenir en stock."),
            code="not_returnable",
        )
    holders = {b.holder_id for b in booklets}
    funders = {b.funder_id for b in booklets}
    if len(holders) != 1 or len(funders) != 1:
        raise ValidationFailed(
            _("Retournez les chéquiers d'une seule structure relais à la fois."),
            field="numbers",
            code="mixed_holders",
        )
    if organisation.pk in funders:
        require(actor.membership, "booklets:allocate")
    else:
        require(actor.membership, "booklets:assign")
    source, funder = booklets[0].holder, booklets[0].funder
    moved = Booklet.objects.filter(
        pk__in=[b.pk for b in booklets], status=BookletStatus.ALLOCATED
    ).update(status=BookletStatus.IN_STOCK, holder=None, allocated_at=None)
    assert moved == len(booklets)
    movement = _record_movement(
        actor=actor, kind=MovementKind.RETURN, source=source, target=funder, booklets=booklets
    )
    audit_record(
        actor=actor,
        action="vouchers.booklets.returned",
        target=movement,
        organisation=funder,
        data={"from": source.pk, "count": len(booklets), "numbers": numbers},
    )
    return movement


@dataclass(frozen=True)
class Person:
    """What identifies a person for the per-programme limit. Never stored, never logged."""

    last_name: str
    first_name: str
    birth_date: date

    def __repr__(self) -> str:  # keep names out of tracebacks and logs
        return "Person(<redacted>)"


def _clean_profile(age_bracket: str, postcode: str, gender: str, situation: str) -> dict:
    if age_bracket not in AgeBracket.values:
        raise ValidationFailed(
            _("Choisissez une tranche d'âge."), field="age_bracket", code="required"
        )
    if gender and gender not in Gender.values:
        raise ValidationFailed(_("Genre inconnu."), field="gender", code="invalid_choice")
    if situation and situation not in Situation.values:
        raise ValidationFailed(_("Situation inconnue."), field="situation", code="invalid_choice")
    return {
        "age_bracket": age_bracket,
        "postcode": clean_postcode(postcode),
        "gender": gender or "",
        "situation": situation or "",
    }


def _clean_person(person: Person) -> Person:
    today = timezone.localdate()
    for field, value in (("last_name", person.last_name), ("first_name", person.first_name)):
        if not (value or "").strip():
            raise ValidationFailed(
                _(
                    "Le nom et le prénom servent à vérifier la limite par "
                    "personne ; ils ne sont pas enregistrés."
                ),
                field=field,
                code="required",
            )
    if not isinstance(person.birth_date, date) or not (
        date(1900, 1, 1) <= person.birth_date <= today - timedelta(days=365 * 15)
    ):
        raise ValidationFailed(
            _("Date de naissance invalide."), field="birth_date", code="invalid_birth_date"
        )
    return person


@transaction.atomic
def booklet_assign(
    *,
    actor: Actor,
    booklet: Booklet,
    person: Person,
    age_bracket: str,
    postcode: str,
    gender: str = "",
    situation: str = "",
    override_reason: str = "",
) -> Beneficiary:
    """Hand a booklet the actor's organisation holds to a person, within the programme limit.

    The limit (booklets per person per period) holds across all distributors: the person's
    pseudonymous key is locked for the programme while it is checked, so two counters serving
    the same person at once cannot both pass. An admin may override with a written reason.
    """
    require(actor.membership, "booklets:assign")
    profile = _clean_profile(age_bracket, postcode, gender, situation)
    person = _clean_person(person)
    # Lock order: the booklet, then the person for the programme; the same everywhere.
    booklet = (
        Booklet.objects.select_for_update()
        .select_related("programme")
        .filter(pk=booklet.pk)
        .first()
    )
    if booklet is None or booklet.holder_id != actor.organisation.pk:
        raise NotFound(_("Chéquier introuvable."), code="booklet_not_found")
    if booklet.status != BookletStatus.ALLOCATED:
        raise Conflict(
            _("Ce chéquier ne peut pas être remis : il est « %(status)s ».")
            % {"status": booklet.get_status_display()},
            code="booklet_not_assignable",
        )
    programme = booklet.programme
    if programme.last_valid_day and programme.last_valid_day < timezone.localdate():
        raise Conflict(
            _("Ce chéquier a expiré le %(date)s : il ne peut plus être remis.")
            % {"date": programme.last_valid_day.strftime("%d/%m/%Y")},
            code="booklet_expired",
        )
    key = dedup_key(
        last_name=person.last_name, first_name=person.first_name, birth_date=person.birth_date
    )
    BeneficiaryLimitLock.objects.get_or_create(programme=programme, dedup_key=key)
    BeneficiaryLimitLock.objects.select_for_update().get(programme=programme, dedup_key=key)
    now = timezone.now()
    since = now - timedelta(days=programme.limit_period_days)
    already = Booklet.objects.filter(
        programme=programme,
        beneficiary__dedup_key=key,
        assigned_at__gte=since,
        replaces__isnull=True,  # a replacement is the same hand-over, not a new one
    ).count()
    override_reason = (override_reason or "").strip()
    if already >= programme.max_booklets_per_beneficiary:
        if not override_reason:
            raise Conflict(
                _(
                    "Cette personne a déjà reçu %(n)s chéquier(s) de ce programme sur la période "
                    "(limite : %(max)s)."
                )
                % {"n": already, "max": programme.max_booklets_per_beneficiary},
                code="beneficiary_limit_reached",
            )
        if not membership_has_permission(actor.membership, "booklets:override_limit"):
            raise Conflict(
                _("Seul un administrateur de votre structure peut dépasser la limite."),
                code="override_not_allowed",
            )
    beneficiary = Beneficiary.objects.create(
        reference="B-" + secrets.token_hex(5).upper(),
        distributor=actor.organisation,
        dedup_key=key,
        **profile,
    )
    assigned = Booklet.objects.filter(pk=booklet.pk, status=BookletStatus.ALLOCATED).update(
        status=BookletStatus.ASSIGNED,
        beneficiary=beneficiary,
        assigned_at=now,
        assigned_by=actor.user,
    )
    assert assigned == 1  # the row is locked above
    if programme.validity_kind == ValidityKind.MONTHS_FROM_HANDOVER:
        expires_on = _add_months(timezone.localdate(), programme.validity_months)
        Cheque.objects.filter(booklet=booklet).update(expires_on=expires_on)
    booklet.refresh_from_db()
    audit_record(
        actor=actor,
        action="vouchers.booklet.assigned",
        target=booklet,
        data={
            "beneficiary": beneficiary.reference,
            "age_bracket": profile["age_bracket"],
            "postcode": profile["postcode"],
        },
    )
    if already >= programme.max_booklets_per_beneficiary:
        audit_record(
            actor=actor,
            action="vouchers.booklet.limit_overridden",
            target=booklet,
            data={
                "reason": override_reason,
                "previous_booklets": already,
                "limit": programme.max_booklets_per_beneficiary,
            },
        )
    return beneficiary


def _may_block(actor: Actor, booklet: Booklet) -> None:
    require(actor.membership, "booklets:block")
    organisation = actor.organisation
    if booklet.funder_id != organisation.pk and booklet.holder_id != organisation.pk:
        raise NotFound(_("Chéquier introuvable."), code="booklet_not_found")


@transaction.atomic
def booklet_block(*, actor: Actor, booklet: Booklet, reason: str) -> int:
    """Block a lost or stolen booklet: its unspent cheques are refused from now on.

    Returns the number of cheques blocked (those still active).
    """
    _may_block(actor, booklet)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(
            _("Indiquez le motif (perte, vol…)."), field="reason", code="required"
        )
    now = timezone.now()
    before = Booklet.objects.select_for_update().get(pk=booklet.pk).status
    if before == BookletStatus.BLOCKED:
        raise Conflict(_("Ce chéquier est déjà bloqué."), code="already_blocked")
    Booklet.objects.filter(pk=booklet.pk, status=before).update(
        status=BookletStatus.BLOCKED, blocked_at=now, blocked_reason=reason[:200]
    )
    blocked = Cheque.objects.filter(booklet=booklet, status=ChequeStatus.ACTIVE).update(
        status=ChequeStatus.BLOCKED, blocked_at=now, blocked_reason=reason[:200]
    )
    booklet.refresh_from_db()
    audit_record(
        actor=actor,
        action="vouchers.booklet.blocked",
        target=booklet,
        organisation=actor.organisation,
        data={
            "before": {"status": before},
            "after": {"status": "blocked"},
            "reason": reason,
            "cheques_blocked": blocked,
        },
    )
    return blocked


@transaction.atomic
def cheques_block(*, actor: Actor, cheques: list[Cheque], reason: str) -> int:
    """Block single cheques (e.g. one torn out and lost); the booklet stays usable."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(
            _("Indiquez le motif (perte, vol…)."), field="reason", code="required"
        )
    if not cheques:
        raise ValidationFailed(
            _("Choisissez au moins un chèque."), field="cheques", code="required"
        )
    booklets = {c.booklet_id: c.booklet for c in cheques}
    for booklet in booklets.values():
        _may_block(actor, booklet)
    ids = sorted(c.pk for c in cheques)
    blocked = Cheque.objects.filter(pk__in=ids, status=ChequeStatus.ACTIVE).update(
        status=ChequeStatus.BLOCKED, blocked_at=timezone.now(), blocked_reason=reason[:200]
    )
    if blocked != len(ids):
        raise Conflict(
            _("Seuls des chèques encore valides peuvent être bloqués."), code="cheque_not_active"
        )
    for booklet in booklets.values():
        audit_record(
            actor=actor,
            action="vouchers.cheques.blocked",
            target=booklet,
            data={
                "positions": sorted(c.position for c in cheques if c.booklet_id == booklet.pk),
                "reason": reason,
            },
        )
    return blocked


@transaction.atomic
def booklet_replace(*, actor: Actor, booklet: Booklet) -> Booklet:
    """Issue a replacement for a blocked booklet, worth its cheques that were still unspent.

    Once per blocked booklet (a one-to-one link). The replacement goes to the same holder and,
    if the blocked one was handed out, to the same beneficiary.
    """
    require(actor.membership, "booklets:replace")
    booklet = (
        Booklet.objects.select_for_update().select_related("programme", "order").get(pk=booklet.pk)
    )
    if booklet.funder_id != actor.organisation.pk:
        raise NotFound(_("Chéquier introuvable."), code="booklet_not_found")
    if booklet.status != BookletStatus.BLOCKED:
        raise Conflict(_("Bloquez d'abord le chéquier."), code="booklet_not_blocked")
    if CreditNote.objects.filter(programme_id=booklet.programme_id).exists():
        raise Conflict(
            _("Le programme est clos : sa valeur non utilisée a été remboursée."),
            code="programme_closed",
        )
    if Booklet.objects.filter(replaces=booklet).exists():
        raise Conflict(_("Ce chéquier a déjà été remplacé."), code="already_replaced")
    unspent = list(
        Cheque.objects.filter(booklet=booklet, status=ChequeStatus.BLOCKED).order_by("position")
    )
    if not unspent:
        raise Conflict(_("Aucun chèque non utilisé à remplacer."), code="nothing_to_replace")
    from .. import codes
    from ..counters import booklet_number, counter_take

    year = timezone.localdate().year
    # Lock the order: two replacements at once must not take the same print position.
    list(Order.objects.select_for_update().filter(pk=booklet.order_id).values_list("pk"))
    last_position = (
        Booklet.objects.filter(order=booklet.order)
        .order_by("-print_position")
        .values_list("print_position", flat=True)
        .first()
    )
    status = (
        BookletStatus.ASSIGNED
        if booklet.beneficiary_id
        else (BookletStatus.ALLOCATED if booklet.holder_id else BookletStatus.IN_STOCK)
    )
    replacement = Booklet.objects.create(
        number=booklet_number(year, counter_take(name="booklet", year=year)),
        order=booklet.order,
        programme=booklet.programme,
        funder=booklet.funder,
        holder=booklet.holder,
        size=len(unspent),
        status=status,
        print_position=last_position + 1,
        allocated_at=booklet.allocated_at,
        beneficiary=booklet.beneficiary,
        assigned_at=booklet.assigned_at,
        assigned_by=booklet.assigned_by,
        replaces=booklet,
    )
    Cheque.objects.bulk_create(
        Cheque(
            booklet=replacement,
            position=index,
            code=code,
            value_cents=old.value_cents,
            expires_on=old.expires_on,
        )
        for index, (old, code) in enumerate(
            zip(unspent, codes.new_codes(len(unspent)), strict=True), start=1
        )
    )
    Cheque.objects.filter(pk__in=[c.pk for c in unspent]).update(status=ChequeStatus.VOIDED)
    audit_record(
        actor=actor,
        action="vouchers.booklet.replaced",
        target=replacement,
        data={
            "replaces": booklet.number,
            "cheques": len(unspent),
            "value_cents": sum(c.value_cents for c in unspent),
        },
    )
    return replacement


@transaction.atomic
def cheques_expire(*, today: date | None = None) -> int:
    """Mark active cheques past their validity as expired: one bulk UPDATE, idempotent."""
    today = today or timezone.localdate()
    expired = Cheque.objects.filter(status=ChequeStatus.ACTIVE, expires_on__lt=today).update(
        status=ChequeStatus.EXPIRED
    )
    if expired:
        audit_record(
            actor=Actor.system(),
            action="vouchers.cheques.expired",
            data={"count": expired, "before": today},
        )
    return expired
