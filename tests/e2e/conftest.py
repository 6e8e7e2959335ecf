"""Browser tests: Debian's Chromium, driven by Playwright, against pytest-django's live server.

One browser per session (starting Chromium is the slow part); one fresh context per test, so
cookies and sessions never leak from one test to the next.
"""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
# Playwright waits this long (ms) for an element or a navigation before failing the test.
TIMEOUT_MS = 10_000


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not os.path.exists(CHROMIUM):
        return f"needs Debian's chromium ({CHROMIUM}): run make test as root to install it"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"needs the playwright Python package ({exc}): run make venv"
    return None


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Seeding the demo hashes a dozen passwords; the default hasher would take seconds per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def browser():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="fr-FR")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()
