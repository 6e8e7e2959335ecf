"""Failed scans as a fraud signal, and the lock-out that follows too many of them."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from aptic import rows
from aptic.errors import DomainError
from orgs.audit import Actor, audit_record
from orgs.models import Organisation

from ..models import Lockout, ScanAttempt
from .checks import Verdict


class LockedOut(DomainError):
    code = "locked_out"
    status_code = 429


@functools.cache
def _lockout_until_sql(db: str) -> str:
    qn = connections[db].ops.quote_name
    until = qn(Lockout._meta.get_field("until").column)
    return (
        f"SELECT max({until}) FROM {qn(Lockout._meta.db_table)}"  # noqa: S608 - names from _meta
        f" WHERE {qn(Lockout._meta.get_field('organisation').column)} = %s AND {until} > %s"
    )


def lockout_until(*, organisation: Organisation) -> datetime | None:
    """When the organisation's active lock-out ends (the latest), or None.

    What ``Lockout.objects.active().filter(organisation=...)`` finds, from SQL written once: it is
    read before every redemption, and compiling the query cost more than running it.
    """
    db = router.db_for_read(Lockout)
    connection = connections[db]
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with rows.prepared_cursor(db) as cursor:
        cursor.execute(_lockout_until_sql(db), [organisation.pk, now])
        [until] = cursor.fetchone()
    if until is None:
        return None
    col = Lockout._meta.get_field("until").get_col(Lockout._meta.db_table)
    for converter in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
        until = converter(until, col, connection)
    return until


def lockout_check(*, organisation: Organisation) -> None:
    """Raise :class:`LockedOut` while the organisation is barred from redeeming."""
    until = lockout_until(organisation=organisation)
    if until is not None:
        minutes = max(1, int((until - timezone.now()).total_seconds() // 60) + 1)
        raise LockedOut(
            _(
                "Trop de chèques refusés : l'encaissement est suspendu pour votre structure "
                "pendant encore %(n)s minute(s). Médias-Cité a été alerté."
            )
            % {"n": minutes},
            retry_after=minutes * 60,
        )


@transaction.atomic
def scan_attempts_record(
    *, actor: Actor, verdicts: list[Verdict], kind: str, organisation: Organisation | None = None
) -> None:
    """Keep every failed verdict; lock the organisation out past the threshold.

    Runs in its own transaction, after the refused operation rolled back, so the signal stays.
    """
    failed = [v for v in verdicts if not v.ok]
    if not failed:
        return
    organisation = organisation or actor.organisation
    ScanAttempt.objects.bulk_create(
        ScanAttempt(
            organisation=organisation,
            user=actor.user,
            code=(v.code or v.scanned)[:40],
            reason=v.reason,
            kind=kind,
            ip=actor.ip,
        )
        for v in failed
    )
    if organisation is None:
        return
    since = timezone.now() - timedelta(minutes=settings.LOCKOUT_WINDOW_MINUTES)
    recent = ScanAttempt.objects.filter(organisation=organisation, created_at__gte=since).count()
    if recent < settings.LOCKOUT_FAILURES:
        return
    # One lock-out at a time per organisation: lock its row while checking.
    Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
    if Lockout.objects.active().filter(organisation=organisation).exists():
        return
    lockout = Lockout.objects.create(
        organisation=organisation,
        failures=recent,
        until=timezone.now() + timedelta(minutes=settings.LOCKOUT_MINUTES),
    )
    audit_record(
        actor=actor,
        action="redemption.lockout.started",
        target=lockout,
        organisation=organisation,
        data={"failures": recent, "until": lockout.until},
    )
