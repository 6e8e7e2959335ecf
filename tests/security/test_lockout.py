"""Log-in throttling: five wrong passwords for one address from one IP lock that pair out."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core import mail
from django.db.models import F
from django.test import Client

from orgs.models import AuditEvent, MemberRole
from orgs.services import user_set_password
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # tests.factories.UserFactory


def _sign_in(client: Client, email: str, password: str, ip: str = "203.0.113.7"):
    return client.post("/connexion/", {"username": email, "password": password}, REMOTE_ADDR=ip)


def _lock_out(client: Client, email: str, ip: str = "203.0.113.7") -> list[int]:
    return [_sign_in(client, email, "pas le bon", ip).status_code for _ in range(5)]


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_five_wrong_passwords_then_even_the_right_one_is_refused_with_a_clear_message(
    funder_admin,
):
    client = Client()
    email = funder_admin.user.email

    statuses = _lock_out(client, email)
    response = _sign_in(client, email, PASSWORD)

    # Four ordinary refusals, then the fifth failure locks the pair out.
    assert statuses == [200, 200, 200, 200, 429]
    html = unescape(response.content.decode())
    assert response.status_code == 429
    assert not _signed_in(client)
    assert "Trop de tentatives de connexion échouées" in html
    assert "pendant 15 minutes" in html
    # The form is shown again, with the address kept, so the person knows which account it is.
    assert f'value="{email}"' in html


def test_before_the_limit_a_wrong_password_says_so_and_the_right_one_still_works(
    funder_admin,
):
    client = Client()
    email = funder_admin.user.email
    for _ in range(4):
        response = _sign_in(client, email, "pas le bon")
        assert "Adresse e-mail ou mot de passe incorrect" in unescape(response.content.decode())

    response = _sign_in(client, email, PASSWORD)

    assert response.status_code == 302
    assert _signed_in(client)


def test_the_lock_lifts_after_the_cool_off(funder_admin):
    client = Client()
    email = funder_admin.user.email
    _lock_out(client, email)
    assert _sign_in(client, email, PASSWORD).status_code == 429

    # Move the recorded failures back past the cool-off, as if the time had passed.
    AccessAttempt.objects.update(
        attempt_time=F("attempt_time") - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    response = _sign_in(client, email, PASSWORD)

    assert response.status_code == 302
    assert _signed_in(client)


def test_the_lock_holds_the_address_and_ip_pair_only(funder_admin, provider_admin):
    _lock_out(Client(), funder_admin.user.email, ip="203.0.113.7")

    # The same person from another IP, and another person from the same IP, still sign in.
    other_ip = Client()
    assert (
        _sign_in(other_ip, funder_admin.user.email, PASSWORD, ip="198.51.100.2").status_code == 302
    )
    other_person = Client()
    assert _sign_in(other_person, provider_admin.user.email, PASSWORD).status_code == 302


def test_a_locked_out_person_can_still_reset_the_password_which_lifts_the_lock(funder_admin):
    client = Client()
    user = funder_admin.user
    _lock_out(client, user.email)

    reset = client.post("/mot-de-passe/oubli/", {"email": user.email}, REMOTE_ADDR="203.0.113.7")
    assert reset.status_code == 302
    assert len(mail.outbox) == 1
    user_set_password(user=user, password="un tout nouveau mot de passe", reason="reset")

    response = _sign_in(client, user.email, "un tout nouveau mot de passe")
    assert response.status_code == 302
    assert _signed_in(client)


def test_api_tokens_keep_working_while_the_password_sign_in_is_locked(funder_admin, api_for):
    api = api_for(funder_admin)
    _lock_out(Client(), funder_admin.user.email, ip="127.0.0.1")

    response = api.get("/api/v1/me/", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200


def test_operators_see_lockouts_in_the_admin_and_lift_them(admin_client, funder_admin):
    _lock_out(Client(), funder_admin.user.email)
    attempt = AccessAttempt.objects.get(username=funder_admin.user.email)

    listing = admin_client.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert funder_admin.user.email in listing.content.decode()
    deleted = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302

    assert _sign_in(Client(), funder_admin.user.email, PASSWORD).status_code == 302


# --- Operators see and lift lock-outs -----------------------------------------------------------


def tenancy_lockout_kwargs(owner) -> dict:
    """For the tenancy walk: a lock-out of the owner's address."""
    _lock_out(Client(), owner.user.email)
    return {"pk": AccessAttempt.objects.get(username=owner.user.email).pk}


def test_an_operator_sees_who_is_locked_out_and_lifts_it(client_for, operator_admin, funder_admin):
    _lock_out(Client(), funder_admin.user.email)
    attempt = AccessAttempt.objects.get(username=funder_admin.user.email)
    operator = client_for(operator_admin)

    page = unescape(operator.get("/connexions-bloquees/").content.decode())
    assert funder_admin.user.email in page
    assert "203.0.113.7" in page
    assert "bloqué jusqu'à" in page

    lifted = operator.post(f"/connexions-bloquees/{attempt.pk}/lever/")

    assert lifted.status_code == 302
    assert not AccessAttempt.objects.exists()
    event = AuditEvent.objects.get(action="security.login_lockout.lifted")
    assert event.actor == operator_admin.user
    assert event.data["username"] == funder_admin.user.email
    assert _sign_in(Client(), funder_admin.user.email, PASSWORD).status_code == 302
    # Lifting it again: it is gone.
    assert operator.post(f"/connexions-bloquees/{attempt.pk}/lever/").status_code == 404


def test_only_operator_admins_lift_lock_outs(client_for, operator_admin, funder_admin):
    _lock_out(Client(), funder_admin.user.email)
    attempt = AccessAttempt.objects.get()
    operator_agent = MembershipFactory(
        organisation=operator_admin.organisation, role=MemberRole.AGENT
    )

    for membership in (funder_admin, operator_agent):
        client = client_for(membership)
        assert client.get("/connexions-bloquees/").status_code == 403
        assert client.post(f"/connexions-bloquees/{attempt.pk}/lever/").status_code == 403

    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()


# --- The IP the lock-out counts against --------------------------------------------------------


def test_a_forged_x_forwarded_for_does_not_escape_the_lock_out(funder_admin):
    # Without a trusted proxy (the default) the header is the client's own writing: ignored.
    client = Client()
    email = funder_admin.user.email

    statuses = [
        client.post(
            "/connexion/",
            {"username": email, "password": "pas le bon"},
            REMOTE_ADDR="203.0.113.7",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        ).status_code
        for n in range(6)
    ]
    right = client.post(
        "/connexion/",
        {"username": email, "password": PASSWORD},
        REMOTE_ADDR="203.0.113.7",
        HTTP_X_FORWARDED_FOR="10.0.0.99",
    )

    assert statuses == [200, 200, 200, 200, 429, 429]
    assert right.status_code == 429
    assert not _signed_in(client)
    attempt = AccessAttempt.objects.get(username=email)
    assert attempt.ip_address == "203.0.113.7"


def test_behind_one_trusted_proxy_the_hop_it_appended_is_the_client(funder_admin, settings):
    settings.TRUSTED_PROXIES = 1
    client = Client()
    email = funder_admin.user.email

    # The client forges the left part; the proxy appends the address it saw.
    statuses = [
        client.post(
            "/connexion/",
            {"username": email, "password": "pas le bon"},
            REMOTE_ADDR="172.18.0.1",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 198.51.100.23",
        ).status_code
        for n in range(5)
    ]

    assert statuses == [200, 200, 200, 200, 429]
    assert AccessAttempt.objects.get(username=email).ip_address == "198.51.100.23"
    # Another client behind the same proxy is not locked out.
    other = client.post(
        "/connexion/",
        {"username": email, "password": PASSWORD},
        REMOTE_ADDR="172.18.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.24",
    )
    assert other.status_code == 302
