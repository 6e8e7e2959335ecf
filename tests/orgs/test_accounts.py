"""People's accounts: signing in and out, password reset, the organisation switcher,
invitations, organisations created by the operator, and members changed or removed."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth import SESSION_KEY as AUTH_SESSION_KEY
from django.core import mail
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from orgs.audit import Actor
from orgs.models import (
    ApiToken,
    AuditEvent,
    Invitation,
    MemberRole,
    Membership,
    Organisation,
    User,
)
from orgs.services import api_token_create, invitation_create
from tests.factories import MembershipFactory, OrganisationFactory, valid_siret

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # tests.factories.UserFactory's password
NEW_PASSWORD = "un-nouveau-mot-de-passe-42"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the e-mails) of what happens inside the block."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _text(response) -> str:
    return unescape(response.content.decode())


def _signed_in_user_id(client: Client):
    return client.session.get(AUTH_SESSION_KEY)


def _link_path(body: str, marker: str) -> str:
    """The path of the first link in an e-mail body that contains ``marker``."""
    match = re.search(r"https?://[^/\s]+(\S*" + re.escape(marker) + r"\S*)", body)
    assert match, body
    return match.group(1)


def _invitation_token(message) -> str:
    return _link_path(message.body, "/invitation/").split("/invitation/")[1].strip("/")


def _invite(admin, on_commit, email="nouvelle@example.org", role="agent") -> str:
    """Invite ``email`` into the admin's organisation; returns the token from the e-mail."""
    with on_commit():
        invitation_create(actor=Actor(user=admin.user, membership=admin), email=email, role=role)
    return _invitation_token(mail.outbox[-1])


ACCEPT = {"full_name": "Nina Nouvelle", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}


# --- Signing in and out -------------------------------------------------------------------


def test_a_person_signs_in_with_their_email_and_password(funder_admin, client):
    response = client.post(
        "/connexion/", {"username": funder_admin.user.email, "password": PASSWORD}
    )

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert _signed_in_user_id(client) == str(funder_admin.user.pk)
    assert funder_admin.organisation.name in _text(client.get("/"))


def test_the_email_is_not_case_sensitive_at_sign_in(funder_admin, client):
    # Addresses are stored in lower case; people type them as they like.
    response = client.post(
        "/connexion/", {"username": f"  {funder_admin.user.email.upper()} ", "password": PASSWORD}
    )

    assert response.status_code == 302
    assert _signed_in_user_id(client) == str(funder_admin.user.pk)


def test_a_wrong_password_shows_a_french_error_and_stays_signed_out(funder_admin, client):
    response = client.post(
        "/connexion/", {"username": funder_admin.user.email, "password": "pas le bon"}
    )

    assert response.status_code == 200
    assert "Adresse e-mail ou mot de passe incorrect" in _text(response)
    assert _signed_in_user_id(client) is None
    assert client.get("/").status_code == 302


def test_signing_out_needs_a_post(funder_admin, client_for):
    client = client_for(funder_admin)

    refused = client.get("/deconnexion/")

    assert refused.status_code == 405
    assert _signed_in_user_id(client) == str(funder_admin.user.pk)

    response = client.post("/deconnexion/")

    assert response.status_code == 302
    assert response["Location"] == "/connexion/"
    assert _signed_in_user_id(client) is None
    assert client.get("/").status_code == 302


# --- Password reset -----------------------------------------------------------------------


def test_a_password_reset_by_email_sets_a_new_password(funder_admin, client):
    user = funder_admin.user

    asked = client.post("/mot-de-passe/oubli/", {"email": user.email}, follow=True)

    assert "Vérifiez votre messagerie" in _text(asked)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]
    assert "nouveau mot de passe" in message.subject

    opened = client.get(_link_path(message.body, "/mot-de-passe/nouveau/"), follow=True)
    assert "Choisissez un nouveau mot de passe" in _text(opened)
    form_url = opened.redirect_chain[-1][0]
    done = client.post(
        form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )

    assert "Mot de passe enregistré" in _text(done)
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert not user.check_password(PASSWORD)
    old = Client().post("/connexion/", {"username": user.email, "password": PASSWORD})
    assert "Adresse e-mail ou mot de passe incorrect" in _text(old)
    new = Client().post("/connexion/", {"username": user.email, "password": NEW_PASSWORD})
    assert new.status_code == 302
    event = AuditEvent.objects.get(action="orgs.user.password_reset")
    assert event.actor == user
    assert event.target_id == str(user.pk)


def test_a_reset_link_works_only_once(funder_admin, client):
    client.post("/mot-de-passe/oubli/", {"email": funder_admin.user.email})
    link = _link_path(mail.outbox[0].body, "/mot-de-passe/nouveau/")
    opened = client.get(link, follow=True)
    client.post(
        opened.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    again = Client().get(link, follow=True)

    assert "Ce lien n'est plus valable" in _text(again)


def test_an_unknown_email_gets_the_same_page_and_no_mail(funder_admin, client):
    known = client.post("/mot-de-passe/oubli/", {"email": funder_admin.user.email})
    unknown = client.post("/mot-de-passe/oubli/", {"email": "personne@example.org"})

    assert unknown.status_code == known.status_code == 302
    assert unknown["Location"] == known["Location"]
    page = client.get(unknown["Location"])
    assert "Vérifiez votre messagerie" in _text(page)
    assert [m.to for m in mail.outbox] == [[funder_admin.user.email]]


# --- The organisation switcher ------------------------------------------------------------


@pytest.fixture
def person_in_two_organisations(funder_admin):
    other = OrganisationFactory(name="Zèbre Solidaire", is_funder=False, is_provider=True)
    second = MembershipFactory(user=funder_admin.user, organisation=other, role="agent")
    return funder_admin, second


def test_a_person_in_two_organisations_switches_between_them(
    person_in_two_organisations, client_for
):
    first, second = person_in_two_organisations
    client = client_for(first)
    home = client.get("/")
    assert home.wsgi_request.membership == first
    assert f"Vous agissez pour {first.organisation.name}" in re.sub(r"<[^>]+>", "", _text(home))

    response = client.post("/organisation/changer/", {"membership": second.pk}, follow=True)

    assert response.wsgi_request.membership == second
    text = re.sub(r"<[^>]+>", "", _text(response))
    assert "Vous agissez maintenant pour Zèbre Solidaire" in text
    assert "Vous agissez pour Zèbre Solidaire en tant qu'agent" in text
    # The choice sticks for the next pages.
    assert client.get("/membres/").status_code == 403


def test_posting_another_persons_membership_is_ignored(person_in_two_organisations, client_for):
    first, _second = person_in_two_organisations
    stranger = MembershipFactory(organisation=OrganisationFactory(name="Ailleurs"))
    client = client_for(first)

    response = client.post("/organisation/changer/", {"membership": stranger.pk}, follow=True)

    assert response.wsgi_request.membership == first
    assert "Vous agissez pour Ailleurs" not in re.sub(r"<[^>]+>", "", _text(response))
    assert client.session["membership_id"] == first.pk
    assert client.post("/organisation/changer/", {"membership": "abc"}).status_code == 302


# --- Invitations --------------------------------------------------------------------------


def test_an_admin_invites_someone_who_creates_an_account_and_is_signed_in(
    funder_admin, client_for, on_commit
):
    with on_commit():
        response = client_for(funder_admin).post(
            "/membres/inviter/", {"email": "Nina@Example.org", "role": "agent"}, follow=True
        )

    assert "invitation envoyée à nina@example.org" in _text(response).lower()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["nina@example.org"]
    assert funder_admin.organisation.name in message.subject
    token = _invitation_token(message)

    visitor = Client()
    page = visitor.get(f"/invitation/{token}/")
    assert f"Rejoindre {funder_admin.organisation.name}" in _text(page)
    accepted = visitor.post(f"/invitation/{token}/", ACCEPT)

    assert accepted.status_code == 302
    user = User.objects.get(email="nina@example.org")
    assert user.full_name == "Nina Nouvelle"
    assert user.check_password(NEW_PASSWORD)
    membership = Membership.objects.get(user=user)
    assert (membership.organisation, membership.role) == (funder_admin.organisation, "agent")
    assert _signed_in_user_id(visitor) == str(user.pk)
    home = visitor.get("/")
    assert home.wsgi_request.membership == membership
    assert f"Bienvenue dans {funder_admin.organisation.name}" in _text(home)


def test_an_invitation_link_works_once(funder_admin, on_commit):
    token = _invite(funder_admin, on_commit)
    assert Client().post(f"/invitation/{token}/", ACCEPT).status_code == 302

    again = Client().post(f"/invitation/{token}/", {**ACCEPT, "full_name": "Quelqu'un d'autre"})

    assert again.status_code == 404
    assert "Ce lien d'invitation n'est pas valide ou a déjà été utilisé." in _text(again)
    assert Membership.objects.filter(user__email="nouvelle@example.org").count() == 1
    assert User.objects.get(email="nouvelle@example.org").full_name == "Nina Nouvelle"


def test_an_expired_invitation_shows_a_clear_message_and_creates_nothing(funder_admin, on_commit):
    token = _invite(funder_admin, on_commit)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    visitor = Client()

    page = visitor.get(f"/invitation/{token}/")
    posted = visitor.post(f"/invitation/{token}/", ACCEPT)

    for response in (page, posted):
        assert response.status_code == 409
        assert "Ce lien d'invitation a expiré. Demandez une nouvelle invitation." in _text(response)
    assert not User.objects.filter(email="nouvelle@example.org").exists()
    assert Invitation.objects.get().accepted_at is None
    assert _signed_in_user_id(visitor) is None


def test_a_revoked_invitation_creates_nothing(funder_admin, client_for, on_commit):
    token = _invite(funder_admin, on_commit)
    invitation = Invitation.objects.get()
    revoked = client_for(funder_admin).post(
        f"/membres/invitations/{invitation.pk}/annuler/", follow=True
    )
    assert "Invitation annulée." in _text(revoked)

    response = Client().post(f"/invitation/{token}/", ACCEPT)

    assert response.status_code == 404
    assert "Ce lien d'invitation n'est pas valide ou a déjà été utilisé." in _text(response)
    assert not User.objects.filter(email="nouvelle@example.org").exists()


def test_an_unknown_invitation_link_shows_the_same_message(client):
    response = client.get("/invitation/not-a-real-token/")

    assert response.status_code == 404
    assert "Ce lien d'invitation n'est pas valide" in _text(response)


def test_a_signed_in_person_with_another_email_cannot_accept(
    funder_admin, provider_admin, client_for, on_commit
):
    token = _invite(funder_admin, on_commit)

    response = client_for(provider_admin).post(f"/invitation/{token}/", follow=True)

    assert "Cette invitation a été envoyée à une autre adresse e-mail." in _text(response)
    assert not Membership.objects.filter(
        user=provider_admin.user, organisation=funder_admin.organisation
    ).exists()
    # Refused, so still usable by the right person.
    assert Invitation.objects.get().is_pending
    assert Client().post(f"/invitation/{token}/", ACCEPT).status_code == 302


def test_a_signed_in_person_with_the_invited_email_joins_with_their_account(
    funder_admin, provider_admin, client_for, on_commit
):
    token = _invite(funder_admin, on_commit, email=provider_admin.user.email)
    client = client_for(provider_admin)

    response = client.post(f"/invitation/{token}/")

    assert response.status_code == 302
    joined = Membership.objects.active().get(
        user=provider_admin.user, organisation=funder_admin.organisation
    )
    assert client.get("/").wsgi_request.membership == joined


def test_inviting_an_existing_member_is_refused_on_the_email_field(
    funder_admin, client_for, on_commit
):
    colleague = MembershipFactory(organisation=funder_admin.organisation, role="agent")

    with on_commit():
        response = client_for(funder_admin).post(
            "/membres/inviter/", {"email": colleague.user.email, "role": "admin"}
        )

    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [
        "Cette personne est déjà membre de l'organisation."
    ]
    assert not Invitation.objects.exists()
    assert mail.outbox == []


# --- Organisations created by the operator ------------------------------------------------


def _organisation_data(**overrides):
    return {
        "name": "CCAS de Talence",
        "roles": ["distributor"],
        "siret": valid_siret(9876),
        "address": "1 place Alfred Danglade",
        "postcode": "33400",
        "city": "Talence",
        "departement": "33",
        "admin_email": "admin@talence.example.org",
        **overrides,
    }


def _post_organisation(client, on_commit, **overrides):
    with on_commit():
        return client.post("/organisations/nouvelle/", _organisation_data(**overrides))


def _nothing_created(before: int) -> bool:
    return (
        Organisation.objects.count() == before
        and not Invitation.objects.exists()
        and mail.outbox == []
    )


def test_an_invalid_siret_is_refused_on_its_field(operator_admin, client_for, on_commit):
    before = Organisation.objects.count()

    response = _post_organisation(client_for(operator_admin), on_commit, siret="12345678901234")

    assert response.status_code == 200
    assert response.context["form"].errors["siret"] == [
        "Ce numéro SIRET n'est pas valide (14 chiffres, clé de contrôle)."
    ]
    assert "Ce numéro SIRET n'est pas valide" in _text(response)
    assert _nothing_created(before)


def test_a_duplicate_siret_is_refused_on_its_field(
    operator_admin, funder_admin, client_for, on_commit
):
    before = Organisation.objects.count()

    response = _post_organisation(
        client_for(operator_admin), on_commit, siret=funder_admin.organisation.siret
    )

    assert response.status_code == 200
    assert response.context["form"].errors["siret"] == [
        "Une organisation avec ce SIRET existe déjà."
    ]
    assert _nothing_created(before)


def test_an_organisation_needs_at_least_one_role(operator_admin, client_for, on_commit):
    before = Organisation.objects.count()

    response = _post_organisation(client_for(operator_admin), on_commit, roles=[])

    assert response.status_code == 200
    assert response.context["form"].errors["roles"] == ["Ce champ est obligatoire."]
    assert _nothing_created(before)


def test_an_operator_creates_an_organisation_and_its_first_admin_is_invited(
    operator_admin, client_for, on_commit
):
    siret = valid_siret(9876)
    client = client_for(operator_admin)

    response = _post_organisation(
        client, on_commit, siret=f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"
    )

    organisation = Organisation.objects.get(siret=siret)
    assert response.status_code == 302
    assert response["Location"] == f"/organisations/{organisation.pk}/"
    assert organisation.roles == ["distributor"]
    assert organisation.name == "CCAS de Talence"
    shown = client.get(response["Location"])
    assert (
        "CCAS de Talence est créée ; une invitation a été envoyée à admin@talence.example.org."
        in _text(shown)
    )
    invitation = Invitation.objects.get(organisation=organisation)
    assert (invitation.email, invitation.role) == ("admin@talence.example.org", "admin")
    assert [m.to for m in mail.outbox] == [["admin@talence.example.org"]]

    token = _invitation_token(mail.outbox[0])
    assert Client().post(f"/invitation/{token}/", ACCEPT).status_code == 302
    first_admin = Membership.objects.get(organisation=organisation)
    assert first_admin.role == MemberRole.ADMIN
    assert first_admin.user.email == "admin@talence.example.org"


# --- Members changed and removed ----------------------------------------------------------


def test_an_admin_changes_a_members_role(funder_admin, client_for):
    colleague = MembershipFactory(organisation=funder_admin.organisation, role="agent")

    response = client_for(funder_admin).post(
        f"/membres/{colleague.pk}/", {"role": "admin"}, follow=True
    )

    assert "Rôle mis à jour." in _text(response)
    colleague.refresh_from_db()
    assert colleague.role == MemberRole.ADMIN
    assert AuditEvent.objects.filter(
        action="orgs.membership.role_changed", target_id=str(colleague.pk)
    ).exists()


def test_removing_a_member_ends_their_access_and_revokes_their_api_tokens(funder_admin, client_for):
    colleague = MembershipFactory(organisation=funder_admin.organisation, role="agent")
    _token, key = api_token_create(actor=Actor.system(), membership=colleague, name="douchette")
    kept, _kept_key = api_token_create(actor=Actor.system(), membership=funder_admin, name="caisse")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/me/").status_code == 200
    colleague_client = client_for(colleague)

    response = client_for(funder_admin).post(f"/membres/{colleague.pk}/retirer/", follow=True)

    assert f"{colleague.user} a été retiré de l'organisation." in _text(response)
    colleague.refresh_from_db()
    assert not colleague.is_active
    assert ApiToken.objects.get(membership=colleague).revoked_at is not None
    assert ApiToken.objects.get(pk=kept.pk).revoked_at is None
    assert api.get("/api/v1/me/").status_code == 401
    # The person may still sign in, but acts for no organisation any more.
    assert colleague_client.get("/").status_code == 403
    assert colleague.user.email not in _text(client_for(funder_admin).get("/membres/"))
