"""The audit log is append-only and every orgs service writes its event."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction

from orgs.audit import Actor, audit_record
from orgs.models import AppendOnlyError, AuditEvent, Invitation
from orgs.services import (
    api_token_create,
    api_token_revoke,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_change_role,
    membership_remove,
    organisation_create,
    user_set_password,
)
from tests.factories import MembershipFactory, valid_siret

pytestmark = pytest.mark.django_db


def _event():
    return audit_record(actor=Actor.system(), action="tests.something", data={"n": 1})


def test_the_orm_has_no_path_to_change_or_delete_an_event():
    event = _event()
    event.action = "tests.forged"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="tests.forged")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "tests.something"


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE orgs_auditevent SET action = 'tests.forged' WHERE id = %s",
        "DELETE FROM orgs_auditevent WHERE id = %s",
    ],
)
def test_postgresql_refuses_update_and_delete_on_the_audit_log(sql):
    event = _event()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "tests.something"


def test_the_admin_cannot_change_or_delete_events(admin_client):
    event = _event()
    change = admin_client.post(f"/admin/orgs/auditevent/{event.pk}/change/", {"action": "x"})
    delete = admin_client.post(f"/admin/orgs/auditevent/{event.pk}/delete/", {"post": "yes"})
    assert change.status_code in (302, 403)
    assert delete.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "tests.something"


def _actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_every_orgs_service_writes_its_event(
    operator_admin, funder_admin, django_capture_on_commit_callbacks
):
    operator = Actor(user=operator_admin.user, membership=operator_admin, ip="203.0.113.7")
    funder = Actor(user=funder_admin.user, membership=funder_admin)

    with django_capture_on_commit_callbacks(execute=True):
        organisation, invitation = organisation_create(
            actor=operator,
            name="CCAS de Talence",
            roles=["distributor"],
            siret=valid_siret(777),
            address="1 rue",
            postcode="33400",
            city="Talence",
            departement="33",
            admin_email="admin@talence.example.org",
        )
    # The raw token only travels by e-mail: take it from the outbox.
    token = mail.outbox[-1].body.split("/invitation/")[1].split("/")[0]
    invitation_accept(token=token, full_name="Admin Talence", password="a-long-passphrase-42")

    other = invitation_create(actor=funder, email="agent@example.org", role="agent")
    invitation_revoke(actor=funder, invitation=other)
    colleague = MembershipFactory(organisation=funder_admin.organisation, role="agent")
    membership_change_role(actor=funder, membership=colleague, role="admin")
    api_token, _key = api_token_create(actor=funder, membership=colleague, name="douchette")
    api_token_revoke(actor=funder, token=api_token)
    membership_remove(actor=funder, membership=colleague)
    user_set_password(user=funder_admin.user, password="another-passphrase-9", reason="reset")

    assert _actions() == [
        "orgs.organisation.created",
        "orgs.invitation.created",
        "orgs.invitation.accepted",
        "orgs.invitation.created",
        "orgs.invitation.revoked",
        "orgs.membership.role_changed",
        "orgs.api_token.created",
        "orgs.api_token.revoked",
        "orgs.membership.removed",
        "orgs.user.password_reset",
    ]
    created = AuditEvent.objects.get(action="orgs.organisation.created")
    assert created.actor == operator_admin.user
    assert created.organisation == operator_admin.organisation
    assert created.ip == "203.0.113.7"
    assert created.data["after"]["siret"] == organisation.siret
    role_changed = AuditEvent.objects.get(action="orgs.membership.role_changed")
    assert role_changed.data == {"before": {"role": "agent"}, "after": {"role": "admin"}}
    assert Invitation.objects.get(pk=invitation.pk).accepted_at is not None


def test_a_refused_operation_writes_no_event(funder_admin):
    funder = Actor(user=funder_admin.user, membership=funder_admin)
    before = AuditEvent.objects.count()
    with pytest.raises(Exception, match="au moins un administrateur"):
        membership_change_role(actor=funder, membership=funder_admin, role="agent")
    assert AuditEvent.objects.count() == before


# --- The client IP ------------------------------------------------------------------------------


def _request(remote_addr="203.0.113.7", forwarded=None):
    from django.test import RequestFactory

    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote_addr, **extra)


def test_without_a_trusted_proxy_the_client_ip_is_the_connections_address():
    from orgs.audit import client_ip

    assert client_ip(_request(forwarded="10.9.8.7")) == "203.0.113.7"
    assert client_ip(_request()) == "203.0.113.7"


@pytest.mark.parametrize(
    ("trusted", "forwarded", "expected"),
    [
        (1, "198.51.100.5", "198.51.100.5"),
        (1, "10.9.8.7, 198.51.100.5", "198.51.100.5"),  # the left part is the client's writing
        (1, " 10.9.8.7 ,198.51.100.5 ", "198.51.100.5"),
        (2, "10.9.8.7, 198.51.100.5, 192.0.2.1", "198.51.100.5"),
        (2, "198.51.100.5", "203.0.113.7"),  # fewer hops than proxies: the connection's address
        (1, "", "203.0.113.7"),
        (1, "pas une adresse", "203.0.113.7"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_behind_trusted_proxies_the_client_is_the_hop_the_outermost_proxy_appended(
    settings, trusted, forwarded, expected
):
    from orgs.audit import client_ip

    settings.TRUSTED_PROXIES = trusted

    assert client_ip(_request(forwarded=forwarded)) == expected
