"""Browser sign-in helpers shared by the browser tests: the second step for operators."""

from __future__ import annotations

from django_otp.plugins.otp_totp.models import TOTPDevice

from orgs.models import User
from security.selectors import user_has_two_factor, user_requires_two_factor
from tests.security.helpers import confirmed_totp_device, totp_code


def second_factor_ready(email: str) -> TOTPDevice | None:
    """The authenticator the person will be asked a code from (given to operators who have none),
    or None when their sign-in has no second step."""
    user = User.objects.filter(email=email).first()
    if user is None:
        return None
    if not (user_requires_two_factor(user=user) or user_has_two_factor(user=user)):
        return None
    return confirmed_totp_device(user)


def enter_second_factor(page, device: TOTPDevice) -> None:
    """Type the authenticator's current code on the second sign-in step, as a person would."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1)).to_have_text("Vérification en deux étapes")
    page.get_by_label("Code de vérification").fill(totp_code(device))
    page.get_by_role("button", name="Vérifier").click()


PASSWORD = "correct horse battery"  # tests.factories.UserFactory's


def sign_in(page, base_url: str, email: str) -> None:
    """Sign in through the form (and the second step when the person has one), then check it."""
    from playwright.sync_api import expect

    device = second_factor_ready(email)
    page.goto(f"{base_url}/connexion/")
    page.get_by_label("Adresse e-mail").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    if device is not None:
        enter_second_factor(page, device)
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()


def page_errors(page) -> list[str]:
    """JavaScript errors of the page, collected as they come: there must be none."""
    found: list[str] = []
    page.on("pageerror", lambda exc: found.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            found.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    return found
