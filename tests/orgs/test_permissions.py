"""Who may do what: the permission table, the page guards, and the organisation's last admin."""

from __future__ import annotations

from html import unescape

import pytest
from django.core import mail
from django.utils import timezone

from orgs.audit import Actor
from orgs.models import ApiToken, Invitation, MemberRole, Membership, Organisation
from orgs.permissions import PERMISSIONS, membership_has_permission, permissions_of
from orgs.services import api_token_create, invitation_create
from tests.factories import MembershipFactory, UserFactory, valid_siret

pytestmark = pytest.mark.django_db

ADMIN_KEYS = {"members:view", "members:manage", "tokens:manage", "audit:view"}
PROVIDER_KEYS = {
    "accreditation:apply",
    "cheques:check",
    "cheques:redeem",
    "redemptions:view",
    "redemptions:cancel",
    "payouts:view",
}
OPERATOR_PAGES = ["/organisations/", "/organisations/nouvelle/"]
ADMIN_PAGES = ["/membres/", "/membres/inviter/", "/jetons/", "/journal/"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _text(response) -> str:
    return unescape(response.content.decode())


def _agent_of(admin):
    return MembershipFactory(organisation=admin.organisation, role=MemberRole.AGENT)


def _as_actor(membership) -> Actor:
    return Actor(user=membership.user, membership=membership)


# --- The permission table -----------------------------------------------------------------


def test_an_agent_lacks_every_admin_key_its_admin_holds(funder_admin):
    agent = _agent_of(funder_admin)

    assert permissions_of(funder_admin) >= ADMIN_KEYS
    assert permissions_of(agent).isdisjoint(ADMIN_KEYS)
    for key, rule in PERMISSIONS.items():
        if rule.admin_only:
            assert not membership_has_permission(agent, key), key
    # An agent still does the daily work of the organisation's role.
    assert {"orders:view", "orders:create", "booklets:allocate"} <= permissions_of(agent)


def test_a_funder_holds_no_provider_key(funder_admin, provider_admin):
    assert permissions_of(provider_admin) >= PROVIDER_KEYS
    assert permissions_of(funder_admin).isdisjoint(PROVIDER_KEYS)


def test_an_operator_admin_may_create_organisations_but_an_operator_agent_may_not(
    operator_admin, funder_admin
):
    operator_agent = _agent_of(operator_admin)

    assert membership_has_permission(operator_admin, "organisations:create")
    assert not membership_has_permission(operator_agent, "organisations:create")
    assert membership_has_permission(operator_agent, "organisations:view_all")
    assert not membership_has_permission(funder_admin, "organisations:create")
    assert not membership_has_permission(funder_admin, "organisations:view_all")


def test_a_removed_membership_holds_nothing(operator_admin):
    assert permissions_of(operator_admin)
    Membership.objects.filter(pk=operator_admin.pk).update(removed_at=timezone.now())
    operator_admin.refresh_from_db()

    assert permissions_of(operator_admin) == set()
    assert not membership_has_permission(operator_admin, "organisations:create")
    assert not membership_has_permission(None, "organisations:create")


def test_an_unknown_permission_key_is_a_programming_error(funder_admin):
    with pytest.raises(KeyError, match="Unknown permission key"):
        membership_has_permission(funder_admin, "orders:teleport")


# --- Pages and posts an agent cannot reach ------------------------------------------------


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_an_agent_cannot_open_the_admin_pages(funder_admin, client_for, url):
    agent = _agent_of(funder_admin)

    response = client_for(agent).get(url)

    assert response.status_code == 403
    assert "Accès refusé" in _text(response)


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_an_admin_opens_the_admin_pages(funder_admin, client_for, url):
    assert client_for(funder_admin).get(url).status_code == 200


def test_an_agent_cannot_invite_members(
    funder_admin, client_for, django_capture_on_commit_callbacks
):
    agent = _agent_of(funder_admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(agent).post(
            "/membres/inviter/", {"email": "new@example.org", "role": "admin"}
        )

    assert response.status_code == 403
    assert not Invitation.objects.exists()
    assert mail.outbox == []


def test_an_agent_cannot_remove_a_member(funder_admin, client_for):
    agent = _agent_of(funder_admin)

    response = client_for(agent).post(f"/membres/{funder_admin.pk}/retirer/")

    assert response.status_code == 403
    funder_admin.refresh_from_db()
    assert funder_admin.is_active


def test_an_agent_cannot_change_a_role(funder_admin, client_for):
    agent = _agent_of(funder_admin)

    response = client_for(agent).post(f"/membres/{agent.pk}/", {"role": "admin"})

    assert response.status_code == 403
    agent.refresh_from_db()
    assert agent.role == MemberRole.AGENT


def test_an_agent_cannot_revoke_an_invitation(funder_admin, client_for):
    agent = _agent_of(funder_admin)
    invitation = invitation_create(
        actor=_as_actor(funder_admin), email="new@example.org", role="agent"
    )

    response = client_for(agent).post(f"/membres/invitations/{invitation.pk}/annuler/")

    assert response.status_code == 403
    invitation.refresh_from_db()
    assert invitation.is_pending


def test_an_agent_cannot_create_or_revoke_api_tokens(funder_admin, client_for):
    agent = _agent_of(funder_admin)
    token, _key = api_token_create(
        actor=_as_actor(funder_admin), membership=funder_admin, name="douchette"
    )
    client = client_for(agent)

    create = client.post("/jetons/", {"name": "mine", "membership": agent.pk})
    revoke = client.post(f"/jetons/{token.pk}/revoquer/")

    assert (create.status_code, revoke.status_code) == (403, 403)
    assert list(ApiToken.objects.values_list("name", "revoked_at")) == [("douchette", None)]


# --- Operator pages -----------------------------------------------------------------------


@pytest.mark.parametrize("url", OPERATOR_PAGES)
def test_a_funder_cannot_open_the_operator_pages(funder_admin, client_for, url):
    response = client_for(funder_admin).get(url)

    assert response.status_code == 403
    assert "Accès refusé" in _text(response)


def test_a_funder_cannot_create_an_organisation_by_posting(funder_admin, client_for):
    before = Organisation.objects.count()

    response = client_for(funder_admin).post(
        "/organisations/nouvelle/",
        {
            "name": "Intrus",
            "roles": ["provider"],
            "siret": valid_siret(4242),
            "address": "1 rue",
            "postcode": "33000",
            "city": "Bordeaux",
            "departement": "33",
            "admin_email": "intrus@example.org",
        },
    )

    assert response.status_code == 403
    assert Organisation.objects.count() == before
    assert not Invitation.objects.exists()


def test_an_operator_agent_lists_organisations_but_cannot_create_one(
    operator_admin, funder_admin, client_for
):
    client = client_for(_agent_of(operator_admin))

    listing = client.get("/organisations/")
    creating = client.get("/organisations/nouvelle/")

    assert listing.status_code == 200
    assert funder_admin.organisation.name in _text(listing)
    assert creating.status_code == 403


def test_an_operator_admin_opens_the_organisation_form(operator_admin, client_for):
    assert client_for(operator_admin).get("/organisations/nouvelle/").status_code == 200


@pytest.mark.parametrize(
    "url",
    ["/", "/membres/", "/jetons/", "/journal/", "/organisations/", "/organisations/nouvelle/"],
)
def test_a_signed_out_visitor_is_sent_to_the_login_page(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/connexion/?next=")


def test_a_signed_out_visitor_cannot_post_to_the_admin_pages(funder_admin, client):
    response = client.post(f"/membres/{funder_admin.pk}/retirer/")

    assert response.status_code == 302
    assert response["Location"].startswith("/connexion/")
    funder_admin.refresh_from_db()
    assert funder_admin.is_active


def test_a_person_without_organisation_is_told_so(client):
    client.force_login(UserFactory())

    response = client.get("/membres/")

    assert response.status_code == 403
    assert "Vous n'êtes rattaché à aucune organisation" in _text(response)


# --- The organisation always keeps one admin ----------------------------------------------

LAST_ADMIN = "L'organisation doit garder au moins un administrateur."


def test_the_last_admin_cannot_be_demoted(funder_admin, client_for):
    _agent_of(funder_admin)

    response = client_for(funder_admin).post(f"/membres/{funder_admin.pk}/", {"role": "agent"})

    assert response.status_code == 200
    assert LAST_ADMIN in _text(response)
    funder_admin.refresh_from_db()
    assert funder_admin.role == MemberRole.ADMIN


def test_an_admin_cannot_remove_themselves(funder_admin, client_for):
    response = client_for(funder_admin).post(f"/membres/{funder_admin.pk}/retirer/", follow=True)

    assert response.status_code == 200
    assert "Vous ne pouvez pas vous retirer vous-même" in _text(response)
    funder_admin.refresh_from_db()
    assert funder_admin.is_active


def test_an_admin_can_be_demoted_or_removed_while_another_admin_remains(funder_admin, client_for):
    second = MembershipFactory(organisation=funder_admin.organisation, role=MemberRole.ADMIN)
    third = MembershipFactory(organisation=funder_admin.organisation, role=MemberRole.ADMIN)
    client = client_for(funder_admin)

    demoted = client.post(f"/membres/{second.pk}/", {"role": "agent"})
    removed = client.post(f"/membres/{third.pk}/retirer/")

    assert (demoted.status_code, removed.status_code) == (302, 302)
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.role == MemberRole.AGENT
    assert not third.is_active
    # Now funder_admin is the last admin again.
    refused = client.post(f"/membres/{funder_admin.pk}/", {"role": "agent"})
    assert LAST_ADMIN in _text(refused)


def test_inviting_an_address_already_invited_is_refused(funder_admin, client_for):
    client = client_for(funder_admin)
    client.post("/membres/inviter/", {"email": "nina@example.org", "role": "agent"})
    again = client.post("/membres/inviter/", {"email": "Nina@Example.org", "role": "admin"})
    assert again.status_code == 200
    assert "Une invitation est déjà en attente" in _text(again)
    from orgs.models import Invitation

    assert Invitation.objects.filter(email="nina@example.org").count() == 1
