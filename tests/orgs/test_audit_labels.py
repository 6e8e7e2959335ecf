"""The journal names every action in words (the code stays beside it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orgs.audit import Actor, audit_record
from orgs.audit_labels import ACTION_LABELS, action_label

ROOT = Path(__file__).resolve().parents[2]
APPS = ["aptic", "orgs", "vouchers", "redemption", "security", "insight", "directory"]
LITERAL = re.compile(r'\baction="([a-z_]+\.[a-z_.]+)"|^ACTION = "([a-z_.]+)"', re.MULTILINE)
ACCREDITATION_STEP = re.compile(r'_audit\(\s*\w+,\s*"([a-z_]+)"')
ACCREDITATION_VARIABLE = re.compile(r'\baction = "([a-z_]+)"')


def _actions_written_by_the_code() -> set[str]:
    found: set[str] = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            found |= {a or b for a, b in LITERAL.findall(text)}
            if path.name == "services_accreditation.py":
                found |= {f"orgs.accreditation.{step}" for step in ACCREDITATION_STEP.findall(text)}
                found |= {
                    f"orgs.accreditation.{step}" for step in ACCREDITATION_VARIABLE.findall(text)
                }
    return found | {"orgs.user.password_reset"}  # written as f"orgs.user.password_{reason}"


def test_every_action_the_code_writes_has_a_label():
    written = _actions_written_by_the_code()
    assert len(written) > 60  # the scan finds them (a broken pattern would find none)
    assert sorted(written - set(ACTION_LABELS)) == []


def test_an_unknown_action_shows_its_code():
    assert action_label("vouchers.order.approved") == "Commande validée"
    assert action_label("something.new") == "something.new"


@pytest.mark.django_db
def test_the_journal_shows_the_label_and_the_code(client_for, operator_admin):
    audit_record(
        actor=Actor(user=operator_admin.user, membership=operator_admin),
        action="redemption.batch.approved",
    )
    text = client_for(operator_admin).get("/journal/").content.decode()
    assert "Lot de remboursement approuvé" in text
    assert "redemption.batch.approved" in text
