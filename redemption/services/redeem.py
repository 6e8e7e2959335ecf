"""Redeeming cheques at a provider's counter: all or nothing, exactly once, replay-safe."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, router, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from aptic import rows
from aptic.errors import Conflict, DomainError, NotFound, ValidationFailed
from orgs.audit import Actor, audit_record
from orgs.models import AccreditationSite, ServiceCategory
from orgs.permissions import require
from vouchers.models import Cheque, ChequeStatus

from ..models import Redemption, RedemptionKeyLock, RedemptionLine, RedemptionStatus
from .abuse import lockout_check, scan_attempts_record
from .checks import Verdict, cheque_verdicts

MAX_CODES = 50


class NotRedeemable(DomainError):
    """At least one cheque of the basket cannot be redeemed; nothing was redeemed."""

    code = "not_redeemable"
    status_code = 409

    def __init__(self, verdicts: list[Verdict]) -> None:
        self.verdicts = verdicts
        errors = [v.as_error() for v in verdicts if not v.ok]
        super().__init__(
            _("Aucun chèque n'a été encaissé : %(n)s chèque(s) refusé(s).") % {"n": len(errors)},
            errors=errors,
        )


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status_code = 422
    default_message = _("Cette clé d'idempotence a déjà servi pour une autre demande.")


def _fingerprint(codes: list[str], service: ServiceCategory, site: AccreditationSite | None) -> str:
    payload = json.dumps([sorted(codes), service.pk, site.pk if site else None])
    return hashlib.sha256(payload.encode()).hexdigest()


def _replay(redemption: Redemption, fingerprint: str) -> Redemption:
    if redemption.request_fingerprint and redemption.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return redemption


def _clean_inputs(actor: Actor, codes: list[str], service, site) -> None:
    if not codes:
        raise ValidationFailed(_("Scannez au moins un chèque."), field="codes", code="empty_basket")
    if len(codes) > MAX_CODES:
        raise ValidationFailed(
            _("Un encaissement prend au plus %(n)s chèques.") % {"n": MAX_CODES},
            field="codes",
            code="too_many_codes",
        )
    if service is None or not service.is_active:
        raise ValidationFailed(
            _("Choisissez le service rendu."), field="service", code="unknown_service"
        )
    if site is not None and (
        site.accreditation.organisation_id != actor.organisation.pk
        or not site.is_approved
        or not site.is_active
    ):
        raise NotFound(_("Lieu inconnu."), code="unknown_site")
    if site is not None and not site.services.filter(pk=service.pk).exists():
        raise ValidationFailed(
            _("Ce lieu n'est pas qualifié pour ce service."),
            field="service",
            code="service_not_offered",
        )


def cheques_redeem(
    *,
    actor: Actor,
    codes: list[str],
    service: ServiceCategory,
    site: AccreditationSite | None = None,
    idempotency_key: str | None = None,
) -> Redemption:
    """Redeem every cheque of the basket for one service, or none.

    Guarantees: the cheques are locked in id order, checked, then switched ``active → redeemed``
    by compare-and-set; a partial unique index keeps one live redemption per cheque. With an
    ``Idempotency-Key`` a replay returns the first redemption and redeems nothing more; a
    concurrent replay waits for the first to finish. Refused cheques are kept as scan attempts.
    """
    require(actor.membership, "cheques:redeem")
    provider = actor.organisation
    lockout_check(organisation=provider)
    _clean_inputs(actor, codes, service, site)
    fingerprint = _fingerprint(codes, service, site)
    try:
        return _redeem(actor, codes, service, site, idempotency_key, fingerprint)
    except NotRedeemable as refused:
        scan_attempts_record(actor=actor, verdicts=refused.verdicts, kind="redeem")
        raise


def _switch_to_redeemed(ids: list[int], today, *, guard: bool) -> int:
    """``active → redeemed`` by compare-and-set; the number of cheques switched.

    The ORM's ``filter(...).update(...)`` as one literal statement: the hot path of every
    redemption, spared the query compiler.
    """
    table, marks = Cheque._meta.db_table, ", ".join(["%s"] * len(ids))
    sql = f"UPDATE {table} SET status = %s WHERE id IN ({marks})"  # noqa: S608 - no user text
    params = [ChequeStatus.REDEEMED.value, *ids]
    if guard:
        sql += " AND status = %s AND expires_on >= %s"
        params += [ChequeStatus.ACTIVE.value, connection.ops.adapt_datefield_value(today)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@transaction.atomic
def _redeem(actor, codes, service, site, idempotency_key, fingerprint) -> Redemption:
    provider = actor.organisation
    if idempotency_key:
        # The key's row is locked first: a concurrent replay waits here, then finds the answer.
        try:
            with transaction.atomic():
                RedemptionKeyLock.objects.get_or_create(provider=provider, key=idempotency_key)
        except IntegrityError:
            pass
        RedemptionKeyLock.objects.select_for_update().get(provider=provider, key=idempotency_key)
        earlier = Redemption.objects.filter(provider=provider, idempotency_key=idempotency_key)
        if earlier.exists():
            return _replay(earlier.get(), fingerprint)

    unsafe = settings.REDEEM_UNSAFE_WITHOUT_GUARD
    verdicts = cheque_verdicts(
        codes, provider=provider, service=service, site=site, lock=not unsafe
    )
    if not all(v.ok for v in verdicts):
        raise NotRedeemable(verdicts)
    if unsafe:  # the control test widens the check-then-act window the guard closes
        time.sleep(0.02)
    cheques = [v.cheque for v in verdicts]
    ids = sorted(c.pk for c in cheques)
    today = timezone.localdate()
    if _switch_to_redeemed(ids, today, guard=not unsafe) != len(ids):
        # Only reachable if a row changed under us: report it as the counter would.
        raise Conflict(
            _("Un chèque vient d'être encaissé ailleurs : rescannez le panier."),
            code="concurrent_redemption",
        )
    # Written by SQL made once (rows.insert, as bulk_create): these three INSERTs are most of
    # the work of every redemption after the checks.
    db = router.db_for_write(Redemption)
    [redemption] = rows.insert(
        [
            Redemption(
                provider=provider,
                site=site,
                agent=actor.user,
                service=service,
                amount_cents=sum(c.value_cents for c in cheques),
                cheque_count=len(cheques),
                idempotency_key=idempotency_key or None,
                request_fingerprint=fingerprint,
            )
        ],
        db,
    )
    lines = rows.insert(
        [
            RedemptionLine(redemption=redemption, cheque=cheque, value_cents=cheque.value_cents)
            for cheque in cheques
        ],
        db,
    )
    audit_record(
        actor=actor,
        action="redemption.redeemed",
        target=redemption,
        data={
            "cheques": [c.code[-5:] for c in cheques],
            "amount_cents": redemption.amount_cents,
            "service": service.slug,
            "site": site.pk if site else None,
        },
    )
    redemption.codes = [c.code for c in cheques]
    # Handed back with its lines (and their cheques) as a prefetch would give them, so the
    # caller can show it without reading back what this transaction just wrote.
    prefetched = redemption.lines.all()
    prefetched._result_cache, prefetched._prefetch_done = lines, True
    redemption._prefetched_objects_cache = {"lines": prefetched}
    return redemption


@transaction.atomic
def redemption_cancel(*, actor: Actor, redemption: Redemption) -> Redemption:
    """Cancel within 24 hours while in no settlement batch; the cheques become usable again."""
    require(actor.membership, "redemptions:cancel")
    redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
    if redemption.provider_id != actor.organisation.pk:
        raise NotFound(code="not_found")
    if redemption.status != RedemptionStatus.ACTIVE:
        raise Conflict(_("Cet encaissement est déjà annulé."), code="already_cancelled")
    limit = redemption.created_at + timedelta(hours=settings.REDEMPTION_CANCEL_HOURS)
    if timezone.now() > limit:
        raise Conflict(
            _("Un encaissement ne peut plus être annulé après 24 heures."), code="too_late"
        )
    if redemption.payout_id:
        raise Conflict(_("Cet encaissement est déjà dans un remboursement."), code="settled")
    now = timezone.now()
    cancelled = Redemption.objects.filter(
        pk=redemption.pk, status=RedemptionStatus.ACTIVE, payout__isnull=True
    ).update(status=RedemptionStatus.CANCELLED, cancelled_at=now, cancelled_by=actor.user)
    if cancelled != 1:
        raise Conflict(_("Cet encaissement est déjà dans un remboursement."), code="settled")
    cheque_ids = list(redemption.lines.values_list("cheque_id", flat=True))
    redemption.lines.update(live=False)
    restored = Cheque.objects.filter(pk__in=cheque_ids, status=ChequeStatus.REDEEMED).update(
        status=ChequeStatus.ACTIVE
    )
    redemption.refresh_from_db()
    audit_record(
        actor=actor,
        action="redemption.cancelled",
        target=redemption,
        data={"cheques": restored, "amount_cents": redemption.amount_cents},
    )
    return redemption
