"""SQL written once (aptic.rows) stores and reads exactly what the ORM would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from aptic import rows
from orgs.audit import Actor, audit_record
from orgs.models import AuditEvent
from redemption.models import Redemption, RedemptionLine
from tests.postgres import another_connection
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from vouchers.models import Cheque

pytestmark = pytest.mark.django_db


def test_an_audit_event_inserted_reads_back_field_for_field(provider_admin):
    when = timezone.now() - timedelta(days=2)
    event = audit_record(
        actor=Actor(user=provider_admin.user, membership=provider_admin, ip="2001:db8::1"),
        action="test.recorded",
        target=provider_admin.organisation,
        data={"amount_cents": 1200, "when": when, "codes": ["A1", "B2"]},
    )
    assert event.pk is not None and not event._state.adding
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor == provider_admin.user
    assert stored.organisation == provider_admin.organisation
    assert stored.target_id == str(provider_admin.organisation.pk)
    assert stored.data == {
        "amount_cents": 1200,
        "when": DjangoJSONEncoder().default(when),
        "codes": ["A1", "B2"],
    }
    assert stored.ip == "2001:db8::1"
    assert stored.created_at == event.created_at


def test_several_rows_get_their_own_keys_in_order_and_constraints_still_hold():
    world = handed_out_cheques(booklets=1, size=5)
    member, _site = accredited_provider_member(services=[world.service])
    [redemption] = rows.insert(
        [
            Redemption(
                provider=member.organisation,
                agent=member.user,
                service=world.service,
                amount_cents=2000,
                cheque_count=2,
            )
        ]
    )
    cheques = list(Cheque.objects.filter(code__in=world.codes[:2]).order_by("-pk"))
    lines = rows.insert(
        [
            RedemptionLine(redemption=redemption, cheque=c, value_cents=c.value_cents)
            for c in cheques
        ]
    )
    assert [RedemptionLine.objects.get(pk=line.pk).cheque_id for line in lines] == [
        c.pk for c in cheques
    ]
    assert Redemption.objects.get(pk=redemption.pk).status == "active"
    # The partial unique index: a cheque has one live line, whoever writes it.
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert([RedemptionLine(redemption=redemption, cheque=cheques[0], value_cents=1000)])


@pytest.mark.postgres
def test_the_reads_of_every_api_request_are_prepared_once_per_connection(api_for, provider_admin):
    from django.db import connection

    api = api_for(provider_admin)
    for _ in range(3):
        assert api.get("/api/v1/redemptions/").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert len([s for s in prepared if '"key_hash" = $1' in s]) == 1  # the token read
    # Django's own queries bind on the client and are never prepared.
    assert all("$1" in s for s in prepared)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_prepared_cursor_reconnects_after_a_restart_when_health_checks_are_on(monkeypatch):
    from django.db import close_old_connections, connection

    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()
    with rows.prepared_cursor("default") as cursor:
        cursor.execute("SELECT 1")
    close_old_connections()  # the end of a request: the next one checks the connection first
    with another_connection() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    with rows.prepared_cursor("default") as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
