"""Two-factor authentication: required for operators, available to everyone, a second step
after the password for whoever has an authenticator."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from orgs.models import AuditEvent, MemberRole
from tests.factories import MembershipFactory, OrganisationFactory
from tests.redemption.test_settlement_views import _exported_payout_of
from tests.security.helpers import confirmed_totp_device, totp_code
from tests.test_tenancy import OPERATOR_ONLY, OWNED_OBJECTS

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # tests.factories.UserFactory
SETUP = "/mon-compte/double-authentification/"
VERIFY = "/connexion/verification/"
# Operator pages without parameters (those with parameters come from the tenancy walk).
OPERATOR_PAGES = [
    "home",
    "organisation_list",
    "organisation_create",
    "accreditation_queue",
    "audit_list",
    "login_lockouts",
    "token_list",
    "vouchers:programme_list",
    "vouchers:programme_create",
    "vouchers:service_list",
    "vouchers:order_queue",
    "vouchers:balances",
    "redemption:fraud_alerts",
    "settlement:batch_list",
]


def _password_only_client(membership) -> Client:
    """Signed in with the password, acting for the membership, second step not done."""
    client = Client()
    client.force_login(membership.user)
    session = client.session
    session["membership_id"] = membership.pk
    session.save()
    return client


def _text(response) -> str:
    return unescape(response.content.decode())


def _operator():
    return MembershipFactory(
        organisation=OrganisationFactory(is_operator=True), role=MemberRole.ADMIN
    )


def _page_urls() -> list[str]:
    """The operator pages, and every OPERATOR_ONLY route of the tenancy walk with its object."""
    urls = [reverse(name) for name in OPERATOR_PAGES]
    # Routes that share a builder in the tenancy walk share its object (one application per
    # organisation, one settlement batch per period).
    owner = MembershipFactory(
        organisation=OrganisationFactory(is_funder=True, is_distributor=True, is_provider=True)
    )
    payout = _exported_payout_of(owner)  # the walk's batch and payout routes share one period
    built: dict[int, dict] = {
        id(OWNED_OBJECTS["settlement:payout_reject"]): {"pk": payout.pk},
        id(OWNED_OBJECTS["settlement:batch_detail"]): {"pk": payout.batch_id},
    }
    for name in sorted(OPERATOR_ONLY):
        build = OWNED_OBJECTS[name]
        if id(build) not in built:
            built[id(build)] = build(
                MembershipFactory(
                    organisation=OrganisationFactory(
                        is_funder=True, is_distributor=True, is_provider=True
                    )
                )
            )
        urls.append(reverse(name, kwargs=built[id(build)]))
    return urls


# --- Operators must enrol ---------------------------------------------------------------------


def test_an_operator_without_an_authenticator_reaches_no_operator_page_until_enrolled():
    operator = _operator()
    client = _password_only_client(operator)
    urls = _page_urls()
    assert len(urls) == len(OPERATOR_PAGES) + len(OPERATOR_ONLY)

    for url in urls:
        for response in (client.get(url), client.post(url, {})):
            assert response.status_code == 302, (url, response.status_code)
            assert response["Location"].startswith(f"{SETUP}?next="), url

    # The control: the same client, once verified, reaches the operator home.
    from tests.security.helpers import verify_second_factor

    verify_second_factor(client, operator.user)
    assert client.get("/").status_code == 200


def test_an_operator_session_without_a_second_factor_gets_no_api_answer():
    operator = _operator()
    client = _password_only_client(operator)

    response = client.get("/api/v1/me/")

    assert response.status_code == 403
    assert response.json()["code"] == "two_factor_required"


def test_an_operator_api_token_works_without_a_code(api_for):
    # Tokens are long random secrets made from a verified session: scripts cannot type codes.
    response = api_for(_operator()).get("/api/v1/me/")

    assert response.status_code == 200


def test_the_operator_is_sent_to_enrolment_right_after_the_password():
    operator = _operator()
    client = Client()

    response = client.post(
        "/connexion/", {"username": operator.user.email, "password": PASSWORD}, follow=True
    )

    assert response.redirect_chain[-1][0].startswith(SETUP)
    html = _text(response)
    assert "Activer la double authentification" in html
    assert "Les comptes de l'opérateur doivent utiliser la double authentification" in html
    assert "<svg" in html  # the QR code, drawn inline


def test_enrolment_with_a_wrong_code_fails_with_a_french_error_and_changes_nothing():
    operator = _operator()
    client = _password_only_client(operator)
    client.get(SETUP)

    response = client.post(SETUP, {"token": "000000"})
    empty = client.post(SETUP, {"token": ""})

    assert response.status_code == 400
    assert "Code incorrect ou expiré" in _text(response)
    assert "Saisissez le code." in _text(empty)
    assert not TOTPDevice.objects.filter(user=operator.user, confirmed=True).exists()
    assert client.get("/").status_code == 302


def test_enrolment_with_the_right_code_unlocks_the_operator_pages_and_shows_backup_codes():
    operator = _operator()
    client = _password_only_client(operator)
    page = _text(client.get(SETUP))
    device = TOTPDevice.objects.get(user=operator.user, confirmed=False)
    # The key is shown as text too, for apps that cannot scan: base32 in groups of four.
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    import base64

    assert base64.b32decode(secret + "=" * (-len(secret) % 8)).hex() == device.key

    response = client.post(SETUP, {"token": totp_code(device), "next": "/organisations/"})

    assert response.status_code == 200
    html = _text(response)
    assert "La double authentification est activée." in html
    codes = StaticToken.objects.filter(device__user=operator.user).values_list("token", flat=True)
    assert len(codes) == 10
    assert all(code in html for code in codes)
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/organisations/").status_code == 200
    assert AuditEvent.objects.filter(
        action="security.two_factor.enabled", target_id=str(operator.user.pk)
    ).exists()


def test_an_operator_cannot_turn_two_factor_off(client_for):
    operator = _operator()
    client = client_for(operator)
    device = confirmed_totp_device(operator.user)

    response = client.post(
        "/mon-compte/double-authentification/desactiver/", {"token": totp_code(device)}
    )

    assert response.status_code == 400
    assert "obligatoire pour les comptes de l'opérateur" in _text(response)
    assert TOTPDevice.objects.filter(user=operator.user, confirmed=True).exists()


# --- The second step after the password -------------------------------------------------------


def _sign_in(client: Client, email: str):
    return client.post("/connexion/", {"username": email, "password": PASSWORD})


def test_a_person_with_an_authenticator_gives_a_code_before_anything_else(funder_admin, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # retry at once after the wrong code
    device = confirmed_totp_device(funder_admin.user)
    client = Client()

    signed = _sign_in(client, funder_admin.user.email)
    home = client.get("/")
    api = client.get("/api/v1/me/")

    assert signed.status_code == 302
    assert home.status_code == 302
    assert home["Location"] == f"{VERIFY}?next=%2F"
    assert api.status_code == 403

    wrong = client.post(VERIFY, {"token": "123456", "next": "/"})
    assert wrong.status_code == 400
    assert "Code incorrect ou expiré" in _text(wrong)
    assert client.get("/").status_code == 302

    right = client.post(VERIFY, {"token": totp_code(device), "next": "/commandes/"})
    assert right.status_code == 302
    assert right["Location"] == "/commandes/"
    assert client.get("/").status_code == 200


def test_a_code_works_once(funder_admin):
    device = confirmed_totp_device(funder_admin.user)
    first, second = Client(), Client()
    _sign_in(first, funder_admin.user.email)
    _sign_in(second, funder_admin.user.email)
    code = totp_code(device)

    assert first.post(VERIFY, {"token": code}).status_code == 302
    replay = second.post(VERIFY, {"token": code})

    assert replay.status_code == 400
    assert second.get("/").status_code == 302


def test_a_backup_code_signs_in_once(funder_admin, client_for):
    user = funder_admin.user
    client = client_for(funder_admin)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    client.post(SETUP, {"token": totp_code(device)})
    backup = StaticToken.objects.filter(device__user=user).first().token

    first = Client()
    _sign_in(first, user.email)
    assert first.post(VERIFY, {"token": backup.upper()}).status_code == 302
    again = Client()
    _sign_in(again, user.email)
    assert again.post(VERIFY, {"token": backup}).status_code == 400


def test_repeated_wrong_codes_slow_the_next_attempts_down(funder_admin, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    device = confirmed_totp_device(funder_admin.user)
    client = Client()
    _sign_in(client, funder_admin.user.email)
    client.post(VERIFY, {"token": "000000"})

    # Even the right code waits for the back-off after a wrong one.
    response = client.post(VERIFY, {"token": totp_code(device)})

    assert response.status_code == 400
    assert "Trop de codes erronés" in _text(response)


def test_the_second_step_never_sends_the_person_to_another_site(funder_admin):
    device = confirmed_totp_device(funder_admin.user)
    client = Client()
    _sign_in(client, funder_admin.user.email)

    response = client.post(VERIFY, {"token": totp_code(device), "next": "https://evil.example/"})

    assert response["Location"] == "/"


def test_without_an_authenticator_a_funder_has_no_second_step(funder_admin):
    client = Client()
    _sign_in(client, funder_admin.user.email)

    assert client.get("/").status_code == 200
    assert client.get(VERIFY).status_code == 302


# --- Available to everyone from the account page ----------------------------------------------


def test_a_funder_turns_two_factor_on_and_off_from_the_account_page(
    funder_admin, client_for, settings
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # retry at once after the wrong code
    client = client_for(funder_admin)
    account = _text(client.get("/mon-compte/"))
    assert "Double authentification" in account
    assert "désactivée" in account

    client.get(SETUP)
    device = TOTPDevice.objects.get(user=funder_admin.user, confirmed=False)
    client.post(SETUP, {"token": totp_code(device)})
    assert "activée" in _text(client.get("/mon-compte/"))

    wrong = client.post("/mon-compte/double-authentification/desactiver/", {"token": "999999"})
    assert wrong.status_code == 400
    assert "Code incorrect ou expiré" in _text(wrong)
    assert TOTPDevice.objects.filter(user=funder_admin.user, confirmed=True).exists()

    off = client.post(
        "/mon-compte/double-authentification/desactiver/", {"token": totp_code(device)}
    )
    assert off.status_code == 302
    assert not TOTPDevice.objects.filter(user=funder_admin.user).exists()
    assert not StaticToken.objects.filter(device__user=funder_admin.user).exists()
    assert AuditEvent.objects.filter(action="security.two_factor.disabled").count() == 1


def test_new_backup_codes_replace_the_old_ones(funder_admin, client_for):
    client = client_for(funder_admin)
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=funder_admin.user, confirmed=False)
    client.post(SETUP, {"token": totp_code(device)})
    old = set(StaticToken.objects.values_list("token", flat=True))

    response = client.post(
        "/mon-compte/double-authentification/codes-de-secours/", {"token": totp_code(device)}
    )

    new = set(StaticToken.objects.values_list("token", flat=True))
    assert response.status_code == 200
    assert len(new) == 10
    assert not old & new
    assert all(code in _text(response) for code in new)


def test_the_setup_page_is_refused_once_two_factor_is_on(funder_admin, client_for):
    client = client_for(funder_admin)
    confirmed_totp_device(funder_admin.user)
    from tests.security.helpers import verify_second_factor

    verify_second_factor(client, funder_admin.user)

    response = client.get(SETUP)

    assert response.status_code == 302
    assert response["Location"] == "/mon-compte/"
    assert TOTPDevice.objects.filter(user=funder_admin.user).count() == 1


def test_an_htmx_request_without_the_second_factor_sends_the_whole_page_to_the_set_up():
    client = _password_only_client(_operator())

    response = client.post("/commandes/apercu/", {}, headers={"HX-Request": "true"})

    assert response["HX-Redirect"].startswith(f"{SETUP}?next=")


def test_a_session_opened_before_the_check_existed_is_checked_too():
    operator = _operator()
    client = _password_only_client(operator)
    session = client.session
    del session["second_factor_state"]  # what the sign-in records
    session.save()

    response = client.get("/organisations/")

    assert response.status_code == 302
    assert response["Location"].startswith(SETUP)


# --- "Required" follows the session, not only the sign-in ------------------------------------


def test_joining_the_operator_while_signed_in_sends_the_person_to_enrolment(
    operator_admin, funder_admin, client_for, django_capture_on_commit_callbacks
):
    from tests.orgs.test_accounts import _invite

    client = client_for(funder_admin)  # a funder: signed in with the password only
    assert client.get("/").status_code == 200
    token = _invite(
        operator_admin,
        lambda: django_capture_on_commit_callbacks(execute=True),
        email=funder_admin.user.email,
        role="admin",
    )

    joined = client.post(f"/invitation/{token}/")

    assert joined.status_code == 302
    for name in ("vouchers:order_queue", "token_list", "home"):
        response = client.get(reverse(name))
        assert response.status_code == 302, name
        assert response["Location"].startswith(f"{SETUP}?next="), name
    api = client.get("/api/v1/me/")
    assert api.status_code == 403
    assert api.json()["code"] == "two_factor_required"


def test_a_person_made_staff_during_the_session_must_enrol(funder_admin, client_for):
    client = client_for(funder_admin)
    assert client.get("/").status_code == 200
    funder_admin.user.is_staff = True
    funder_admin.user.save(update_fields=["is_staff"])

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"].startswith(f"{SETUP}?next=")


def test_an_operator_whose_authenticator_was_removed_meanwhile_lands_on_the_set_up_page():
    operator = _operator()
    confirmed_totp_device(operator.user)
    client = Client()
    _sign_in(client, operator.user.email)  # the session notes "has an authenticator"
    TOTPDevice.objects.filter(user=operator.user).delete()  # support removed a lost phone

    response = client.get("/organisations/", follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0].startswith(f"{SETUP}?next=")
    assert "Activer la double authentification" in _text(response)


def test_a_funder_who_turned_two_factor_off_elsewhere_is_not_sent_round_in_circles(funder_admin):
    confirmed_totp_device(funder_admin.user)
    client = Client()
    _sign_in(client, funder_admin.user.email)
    TOTPDevice.objects.filter(user=funder_admin.user).delete()  # turned off in another browser

    response = client.get("/", follow=True)

    assert response.status_code == 200
    assert response.redirect_chain == [(f"{VERIFY}?next=%2F", 302), ("/", 302)]
    assert client.get("/").status_code == 200  # the session now knows


def test_a_person_who_set_up_an_authenticator_elsewhere_is_asked_for_a_code_not_sent_round(
    operator_admin, funder_admin, client_for, django_capture_on_commit_callbacks
):
    from tests.orgs.test_accounts import _invite

    client = client_for(funder_admin)
    confirmed_totp_device(funder_admin.user)  # set up in another browser
    token = _invite(
        operator_admin,
        lambda: django_capture_on_commit_callbacks(execute=True),
        email=funder_admin.user.email,
    )
    client.post(f"/invitation/{token}/")

    response = client.get("/organisations/", follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0].startswith(f"{VERIFY}?next=")


def test_an_api_token_works_beside_a_session_still_waiting_for_its_code(client_for):
    from orgs.audit import Actor
    from orgs.services import api_token_create

    operator = _operator()
    client = _password_only_client(operator)
    _token, key = api_token_create(actor=Actor.system(), membership=operator, name="scanner")

    with_token = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {key}")
    with_a_wrong_token = client.get("/api/v1/me/", HTTP_AUTHORIZATION="Token pas-un-jeton")
    session_only = client.get("/api/v1/me/")

    assert with_token.status_code == 200
    # A wrong token is refused: it never falls back to the unverified session.
    assert with_a_wrong_token.status_code == 401
    assert session_only.status_code == 403
    assert session_only.json()["code"] == "two_factor_required"
    # Outside the API the header opens nothing.
    page = client.get("/organisations/", HTTP_AUTHORIZATION=f"Token {key}")
    assert page.status_code == 302


@pytest.mark.parametrize("space", ["\xa0", "\x85", "\x1c"])
def test_a_token_header_the_api_does_not_read_as_a_token_opens_no_session(client_for, space):
    """Python's str.split() breaks on these spaces, the token authentication (bytes) does not:
    the middleware must not step aside for a header the API then ignores."""
    client = _password_only_client(_operator())

    answer = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token{space}x")

    assert answer.status_code == 403
    assert answer.json()["code"] == "two_factor_required"


def test_the_apis_session_authentication_itself_refuses_a_session_owing_its_code(
    client_for, settings
):
    """Even past the middleware, the API does not take a session still waiting for its code."""
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "security.middleware.TwoFactorMiddleware"
    ]
    client = _password_only_client(_operator())

    answer = client.get("/api/v1/me/")

    assert answer.status_code == 403
    assert answer.json()["code"] == "two_factor_required"
