"""Settings: production hardening, the secret key guard, French by default, and error pages."""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
from django.conf import settings

import aptic.settings
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# pytest-env sets these so the suite runs over plain HTTP (and lets the browser tests drive the
# ORM from Playwright's event loop); production leaves them to the defaults.
TEST_ONLY_OVERRIDES = (
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
    "STATIC_MANIFEST",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def _production_env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    for name in TEST_ONLY_OVERRIDES:
        env.pop(name, None)
    alphabet = string.ascii_letters + string.digits + "-_!@#%^&*"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "aptic.settings",
            "DEBUG": "0",
            "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(60)),
            "ALLOWED_HOSTS": "aptic.example.fr",
        }
    )
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _django_setup(env: dict[str, str]) -> subprocess.CompletedProcess:
    return _run(["-c", "import django; django.setup()"], env)


# --- Production hardening -----------------------------------------------------------------


def test_the_deploy_check_reports_no_issue_in_the_production_shape():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr


def test_the_deploy_check_would_notice_a_missing_hardening():
    # The check above is meaningful: turning one protection off makes it fail.
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        _production_env(SESSION_COOKIE_SECURE="0"),
    )

    assert result.returncode != 0
    assert "security.W012" in result.stdout + result.stderr


@pytest.mark.parametrize("secret_key", [None, "", aptic.settings.DEVELOPMENT_SECRET_KEY])
def test_settings_refuse_to_load_without_a_private_secret_key_when_debug_is_off(secret_key):
    result = _django_setup(_production_env(SECRET_KEY=secret_key))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set" in result.stderr


def test_development_runs_with_the_public_key_only_when_debug_is_on():
    result = _django_setup(_production_env(DEBUG="1", SECRET_KEY=None))

    assert result.returncode == 0, result.stderr


def test_the_production_shape_loads_with_a_private_key():
    result = _django_setup(_production_env())

    assert result.returncode == 0, result.stderr


# --- Language and time --------------------------------------------------------------------


def test_the_platform_speaks_french_in_paris_time_with_english_available():
    assert settings.LANGUAGE_CODE == "fr"
    assert settings.TIME_ZONE == "Europe/Paris"
    assert settings.USE_TZ is True
    assert [code for code, _name in settings.LANGUAGES] == ["fr", "en"]


def _english_catalogue() -> bool:
    return (PROJECT_ROOT / "locale" / "en" / "LC_MESSAGES" / "django.mo").exists()


def test_the_login_page_is_french_by_default(client):
    response = client.get("/connexion/")

    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert response["Content-Language"] == "fr"
    assert '<html lang="fr">' in html
    assert "Connexion" in html
    # Django's own label for the password field, translated by Django.
    assert "Mot de passe" in html
    assert ">Password<" not in html


@pytest.mark.parametrize(
    "ask", [{"cookies": {"django_language": "en"}}, {"headers": {"Accept-Language": "en"}}]
)
def test_the_login_page_is_english_when_asked(client, ask):
    for name, value in ask.get("cookies", {}).items():
        client.cookies[name] = value

    response = client.get("/connexion/", headers=ask.get("headers"))

    html = unescape(response.content.decode())
    assert response["Content-Language"] == "en"
    assert '<html lang="en">' in html
    # Only Django's own strings are translated until the project ships locale/en.
    assert "Password" in html
    assert "Mot de passe</label>" not in html
    if _english_catalogue():
        assert "Se connecter" not in html


def test_the_language_chosen_in_the_footer_sticks(client):
    response = client.post("/langue/", {"language": "en", "next": "/connexion/"})

    assert response.status_code == 302
    assert response["Location"] == "/connexion/"
    assert client.cookies["django_language"].value == "en"
    assert '<html lang="en">' in client.get("/connexion/").content.decode()


# --- Error pages --------------------------------------------------------------------------


def test_an_unknown_web_page_is_the_french_404_page(client):
    assert settings.DEBUG is False

    response = client.get("/cette-page-n-existe-pas/")

    html = unescape(response.content.decode())
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "<title>Page introuvable · Aptic</title>" in html
    assert "Cette page n'existe pas ou vous n'y avez pas accès." in html


def test_a_forbidden_web_page_is_the_french_403_page(funder_admin, client_for):
    agent = MembershipFactory(organisation=funder_admin.organisation, role="agent")

    response = client_for(agent).get("/journal/")

    html = unescape(response.content.decode())
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert "<title>Accès refusé · Aptic</title>" in html
    assert "Votre rôle ne permet pas d'ouvrir cette page." in html
