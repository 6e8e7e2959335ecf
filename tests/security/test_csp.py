"""Content Security Policy: every HTML page carries it, and no template needs inline script.

The policy allows scripts and styles from this origin only (no 'unsafe-inline', no eval), so an
injected ``<script>`` or ``onclick=`` does not run. The template scan keeps it that way.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import get_resolver, reverse

from tests.factories import MembershipFactory, OrganisationFactory
from tests.test_tenancy import _walk

pytestmark = pytest.mark.django_db

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATE_DIRS = [PROJECT_ROOT / "templates"]
# Rendered into PDF by WeasyPrint or sent as e-mail, never served as a web page: they may carry
# their own styles (a PDF has no stylesheet to link to, e-mail clients drop linked CSS).
NOT_WEB_PAGES = {
    "vouchers/credit_note.html",
    "vouchers/counter/receipt_pdf.html",
    "vouchers/print/booklet.html",
    "vouchers/print/_cover.html",
    "vouchers/print/_cheque.html",
    "vouchers/print/proforma.html",
    "redemption/statements/statement.html",
}
NOT_WEB_FOLDERS = ("emails/",)

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
HTMX_ON = re.compile(r"\b(?:data-)?hx-on", re.IGNORECASE)
JS_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)
HTMX_EVAL = re.compile(r"""hx-(?:vals|vars)\s*=\s*['"]\s*(?:js|javascript):""", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.IGNORECASE)


def _templates() -> list[tuple[str, str]]:
    found = []
    for folder in TEMPLATE_DIRS:
        for path in sorted(folder.rglob("*.html")):
            found.append((path.relative_to(folder).as_posix(), path.read_text(encoding="utf-8")))
    return found


def _web_page(name: str) -> bool:
    return name not in NOT_WEB_PAGES and not name.startswith(NOT_WEB_FOLDERS)


def test_the_scan_reads_the_templates_and_knows_every_exempt_one():
    names = {name for name, _text in _templates()}
    assert len(names) > 50
    assert names >= NOT_WEB_PAGES


@pytest.mark.parametrize(
    "pattern, what",
    [
        (INLINE_SCRIPT, "an inline <script> (move it to static/js/)"),
        (EVENT_HANDLER, "an on*= event handler attribute (use addEventListener in static/js/)"),
        (HTMX_ON, "an hx-on attribute (htmx evaluates it as script)"),
        (JS_URL, "a javascript: URL"),
        (HTMX_EVAL, "an hx-vals/hx-vars evaluated as script"),
    ],
)
def test_no_template_needs_inline_script(pattern, what):
    offenders = [name for name, text in _templates() if pattern.search(text)]

    assert not offenders, f"{what} in: {offenders}"


@pytest.mark.parametrize(
    "pattern, what",
    [(STYLE_ELEMENT, "a <style> element"), (STYLE_ATTRIBUTE, "a style= attribute")],
)
def test_no_web_page_template_needs_inline_style(pattern, what):
    offenders = [name for name, text in _templates() if _web_page(name) and pattern.search(text)]

    assert not offenders, f"{what} (use static/css/app.css) in: {offenders}"


def test_the_scan_would_catch_each_kind_of_inline_script():
    assert INLINE_SCRIPT.search("<script>alert(1)</script>")
    assert INLINE_SCRIPT.search('<script type="module">x()</script>')
    assert not INLINE_SCRIPT.search('<script src="/static/js/a.js" defer></script>')
    assert EVENT_HANDLER.search('<button type="button" onclick="go()">')
    assert EVENT_HANDLER.search('<form\n  onsubmit="return check()">')
    assert not EVENT_HANDLER.search('<p data-summary-one="1 chèque">')
    assert HTMX_ON.search('<div hx-on:click="x()">')
    assert HTMX_ON.search('<div hx-on::after-request="x()">')
    assert JS_URL.search('<a href="javascript:void(0)">')


# --- The header on every page ------------------------------------------------------------------


def _html_routes() -> list[str]:
    """Every page route without parameters (the API answers JSON, the admin has its own walk)."""
    urls = []
    for namespace, name, route, converters in _walk(get_resolver()):
        if converters or namespace == "admin" or route.startswith("api/") or not name:
            continue
        urls.append(reverse(f"{namespace}:{name}" if namespace else name))
    return sorted(set(urls))


def _assert_strict_policy(response, url: str) -> None:
    policy = response.get("Content-Security-Policy")
    assert policy, (url, response.status_code, "no Content-Security-Policy")
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert directives["default-src"] == ["'self'"], url
    assert directives["script-src"] == ["'self'"], url
    assert directives["style-src"] == ["'self'"], url
    assert directives["frame-ancestors"] == ["'none'"], url
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, url


def _client(role: str, client_for) -> Client:
    if role == "anonymous":
        return Client()
    flags = {
        "operator": {"is_operator": True},
        "funder_distributor": {"is_funder": True, "is_distributor": True},
        "provider": {"is_provider": True},
    }[role]
    organisation = OrganisationFactory(
        **{"is_funder": False, "is_distributor": False, "is_provider": False, **flags}
    )
    return client_for(MembershipFactory(organisation=organisation, role="admin"))


@pytest.mark.parametrize("role", ["anonymous", "operator", "funder_distributor", "provider"])
def test_every_html_page_carries_the_policy(role, client_for):
    client = _client(role, client_for)
    checked = 0

    for url in _html_routes():
        response = client.get(url)
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        _assert_strict_policy(response, url)
        checked += 1

    assert checked > 10


def test_error_pages_admin_and_api_docs_carry_the_policy(admin_client):
    anonymous = Client()
    for response, url in [
        (anonymous.get("/cette-page-n-existe-pas/"), "404"),
        (anonymous.get("/connexion/"), "login"),
        (admin_client.get("/admin/"), "admin"),
        (admin_client.get("/api/v1/docs/"), "api docs"),
    ]:
        assert response["Content-Type"].startswith("text/html"), url
        _assert_strict_policy(response, url)


def test_the_api_docs_start_from_a_script_file_not_an_inline_script(admin_client):
    html = admin_client.get("/api/v1/docs/").content.decode()

    assert not INLINE_SCRIPT.search(html)
    assert not STYLE_ELEMENT.search(html)
    script = admin_client.get("/api/v1/docs/?script=")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.content.decode()


def test_htmx_runs_without_eval_and_without_injected_styles(client_for, funder_admin):
    html = client_for(funder_admin).get("/").content.decode()

    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", html)
    assert config, "htmx must be configured for the CSP"
    assert '"allowEval": false' in config.group(1)
    assert '"includeIndicatorStyles": false' in config.group(1)


# --- Uploads are never served directly ----------------------------------------------------------


def test_uploaded_and_generated_files_are_not_served_under_media(client_for, operator_admin):
    media = Path(settings.MEDIA_ROOT)
    private = Path(settings.PRIVATE_MEDIA_ROOT)
    for folder in (media, private):
        (folder / "probe").mkdir(parents=True, exist_ok=True)
        (folder / "probe" / "document.pdf").write_bytes(b"%PDF-1.4 secret")
    operator = client_for(operator_admin)

    for client in (Client(), operator):
        for url in ("/media/probe/document.pdf", "/private-media/probe/document.pdf"):
            response = client.get(url)
            assert response.status_code == 404, url
            assert b"secret" not in response.content
