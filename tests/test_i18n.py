"""English interface: the project's catalogue (locale/en) is complete, compiled and used.

The UI is written in French (the msgids); ``locale/en/LC_MESSAGES/django.po`` holds the English.
When a test here fails because a string is missing or untranslated, run ``make messages``,
translate the new entries of the .po (no empty msgstr, no ``#, fuzzy``) and commit the .po
together with the compiled .mo.
"""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from html import unescape
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = PROJECT_ROOT / "locale" / "en" / "LC_MESSAGES"
PO_PATH = LOCALE_DIR / "django.po"
MO_PATH = LOCALE_DIR / "django.mo"
HOW_TO_FIX = (
    "run `make messages`, translate every new or fuzzy entry of locale/en/LC_MESSAGES/django.po "
    "(then drop its `#, fuzzy` flag), and commit the .po with the recompiled .mo"
)


# --- A small .po reader (no polib) ----------------------------------------------------------


@dataclass
class Entry:
    line: int
    flags: set[str] = field(default_factory=set)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def msgid(self) -> str:
        return self.fields["msgid"]

    @property
    def plural(self) -> str | None:
        return self.fields.get("msgid_plural")

    @property
    def context(self) -> str | None:
        return self.fields.get("msgctxt")

    @property
    def translations(self) -> list[str]:
        if self.plural is None:
            return [self.fields.get("msgstr", "")]
        return [value for name, value in sorted(self.fields.items()) if name.startswith("msgstr[")]

    @property
    def key(self) -> tuple[str | None, str, str | None]:
        return (self.context, self.msgid, self.plural)


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr\[\d+\]|msgstr)\s+(".*")$')


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text.strip()[1:-1])


def parse_po(path: Path) -> list[Entry]:
    """The active entries of a .po file, header first (obsolete ``#~`` entries are skipped)."""
    entries: list[Entry] = []
    current: Entry | None = None
    last: str | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            current, last = None, None
            continue
        if line.startswith("#~"):
            continue
        if current is None:
            current = Entry(line=number)
            entries.append(current)
        if line.startswith("#,"):
            current.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            current.fields[last] += _unquote(line)
        else:
            match = _KEYWORD.match(line)
            assert match, f"{path}:{number}: cannot read {raw!r}"
            last = match.group(1)
            current.fields[last] = _unquote(match.group(2))
    return [entry for entry in entries if "msgid" in entry.fields]


@cache
def catalogue() -> tuple[Entry, ...]:
    assert PO_PATH.exists(), f"{PO_PATH} is missing: {HOW_TO_FIX}"
    return tuple(parse_po(PO_PATH))


def messages() -> list[Entry]:
    return [entry for entry in catalogue() if entry.msgid]


def _where(entry: Entry) -> str:
    return f"{PO_PATH.relative_to(PROJECT_ROOT)}:{entry.line}: {entry.msgid!r}"


def _page_text(response) -> str:
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _french_sentences() -> list[str]:
    """Catalogue msgids long enough to be recognised in a page, whose English differs."""
    sentences = []
    for entry in messages():
        text = " ".join(entry.msgid.split())
        if entry.plural or len(text) < 12 or " " not in text or re.search(r"[%{<&]", text):
            continue
        if text in entry.translations[0]:
            continue
        sentences.append(text)
    return sentences


# --- The catalogue is complete and compiled -------------------------------------------------


def test_every_message_of_the_english_catalogue_is_translated():
    untranslated = [
        f"untranslated: {_where(e)}"
        for e in messages()
        if not all(t.strip() for t in e.translations)
    ]
    fuzzy = [f"fuzzy: {_where(e)}" for e in catalogue() if "fuzzy" in e.flags]
    problems = untranslated + fuzzy

    assert len(messages()) > 500
    assert not problems, (
        f"{len(untranslated)} untranslated and {len(fuzzy)} fuzzy message(s) — {HOW_TO_FIX}:\n"
        + "\n".join(problems[:30])
    )


def test_translations_keep_the_placeholders_of_their_msgid():
    placeholder = re.compile(r"%\([^)]+\)[sdif]|%[sdif%]|\{[a-z_0-9]*\}")
    wrong = []
    for entry in messages():
        for index, translation in enumerate(entry.translations):
            source = entry.plural if entry.plural and index else entry.msgid
            expected = set(placeholder.findall(source))
            found = set(placeholder.findall(translation))
            # A singular may say "1 cheque" where the French msgid says "%(n)s chèque".
            if entry.plural and index == 0:
                expected |= set(placeholder.findall(entry.plural))
                ok = found <= expected
            else:
                ok = found == expected
            if not ok:
                wrong.append(f"{_where(entry)} -> {translation!r}")

    assert not wrong, "Placeholders changed in translation:\n" + "\n".join(wrong)


def test_the_committed_mo_file_is_compiled_from_the_po_file():
    assert MO_PATH.exists(), f"{MO_PATH} is missing: {HOW_TO_FIX}"
    with MO_PATH.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog

    stale = []
    for entry in messages():
        msgid = f"{entry.context}\x04{entry.msgid}" if entry.context else entry.msgid
        if entry.plural is None:
            actual = [compiled.get(msgid)]
        else:
            actual = [compiled.get((msgid, n)) for n in range(len(entry.translations))]
        if actual != entry.translations:
            stale.append(_where(entry))

    assert not stale, (
        f"django.mo is out of date for {len(stale)} message(s) — {HOW_TO_FIX} "
        "(or `msgfmt -c -o locale/en/LC_MESSAGES/django.mo locale/en/LC_MESSAGES/django.po`):\n"
        + "\n".join(stale[:30])
    )


@pytest.mark.skipif(
    not (shutil.which("xgettext") and shutil.which("msgmerge")),
    reason="needs GNU gettext (xgettext, msgmerge) to extract the messages",
)
def test_the_catalogue_holds_every_message_of_the_sources(tmp_path):
    # makemessages on a copy of the sources, so the working tree is left untouched.
    skipped = {
        ".venv",
        ".git",
        "node_modules",
        "staticfiles",
        "media",
        "private-media",
        "bench",
        "tests",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
    }
    copy = tmp_path / "src"
    shutil.copytree(
        PROJECT_ROOT,
        copy,
        ignore=lambda directory, names: [
            name for name in names if name in skipped or name.endswith((".sqlite3", ".mo"))
        ],
    )
    env = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "aptic.settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "en", "--no-obsolete"],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    extracted = {entry.key for entry in parse_po(copy / PO_PATH.relative_to(PROJECT_ROOT))}
    known = {entry.key for entry in catalogue()}
    missing = sorted(repr(msgid) for _ctx, msgid, _plural in extracted - known)

    assert not missing, (
        f"{len(missing)} message(s) of the code and templates are not in the catalogue — "
        f"{HOW_TO_FIX}:\n" + "\n".join(missing[:30])
    )


# --- Pages in English -----------------------------------------------------------------------


@pytest.mark.parametrize("ask", ["cookie", "header"])
def test_the_login_page_is_in_english_when_asked(client, ask):
    headers = {}
    if ask == "cookie":
        client.cookies["django_language"] = "en"
    else:
        headers["Accept-Language"] = "en"

    response = client.get("/connexion/", headers=headers)

    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert response["Content-Language"] == "en"
    assert "<title>Sign in · Aptic</title>" in html
    assert "<h1>Sign in</h1>" in html
    assert ">E-mail address:</label>" in html
    assert ">Sign in</button>" in html
    assert ">Forgotten your password?</a>" in html
    for french in ("Connexion", "Se connecter", "Adresse e-mail", "Mot de passe", "Langue"):
        assert french not in html


def test_the_login_page_is_in_french_by_default(client):
    response = client.get("/connexion/")

    html = unescape(response.content.decode())
    assert response["Content-Language"] == "fr"
    assert "<title>Connexion · Aptic</title>" in html
    assert ">Adresse e-mail\N{NO-BREAK SPACE}:</label>" in html
    assert ">Se connecter</button>" in html
    assert "Sign in" not in html


def test_a_failed_sign_in_is_explained_in_english(client, funder_admin):
    client.cookies["django_language"] = "en"

    response = client.post(
        "/connexion/", {"username": funder_admin.user.email, "password": "not the password"}
    )

    text = _page_text(response)
    assert response.status_code == 200
    assert "Incorrect e-mail address or password." in text
    assert "incorrect. Vérifiez" not in text


def test_the_language_chosen_in_the_footer_translates_the_project_strings(client):
    client.post("/langue/", {"language": "en", "next": "/connexion/"})

    text = _page_text(client.get("/connexion/"))

    assert "Sign in" in text
    assert "Language" in text
    assert "Se connecter" not in text


@pytest.mark.parametrize(
    "role", ["funder_admin", "distributor_admin", "provider_admin", "operator_admin"]
)
def test_the_home_page_in_english_shows_no_french_from_the_catalogue(request, client_for, role):
    membership = request.getfixturevalue(role)
    client = client_for(membership)
    client.cookies["django_language"] = "en"

    response = client.get("/")

    text = _page_text(response)
    assert response.status_code == 200
    assert response["Content-Language"] == "en"
    for english in ("Home", "Sign out", "Members", "API tokens", "Audit log", "Manage members"):
        assert english in text
    assert "You are acting for" in text
    for french in ("Accueil", "Se déconnecter", "Jetons d'API", "Gérer les membres", "Bonjour"):
        assert french not in text
    still_french = [sentence for sentence in _french_sentences() if sentence in text]
    assert not still_french, f"French left on the English home page: {still_french}"


def test_the_home_page_in_french_stays_french(client_for, funder_admin):
    text = _page_text(client_for(funder_admin).get("/"))

    assert "Accueil" in text
    assert "Se déconnecter" in text
    assert "Commander des chéquiers" in text
    assert "Sign out" not in text


def test_the_404_page_is_in_english_when_asked(client):
    client.cookies["django_language"] = "en"

    response = client.get("/cette-page-n-existe-pas/")

    html = unescape(response.content.decode())
    assert response.status_code == 404
    assert "<title>Page not found · Aptic</title>" in html
    assert "This page does not exist or you do not have access to it." in html
