"""« Messages envoyés »: an admin sends an invitation, then reads what Aptic e-mailed."""

from __future__ import annotations

import pytest
from django.core import mail

from orgs.models import MemberRole
from tests.factories import MembershipFactory, OrganisationFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips the tests and says what is missing
    expect = None

PASSWORD = "correct horse battery"  # tests.factories.UserFactory's


def test_an_admin_invites_someone_then_reads_the_message_in_the_log(live_server, page):
    admin = MembershipFactory(
        organisation=OrganisationFactory(name="CCAS de Bordeaux", is_distributor=True),
        role=MemberRole.ADMIN,
    )
    page.goto(f"{live_server.url}/connexion/")
    page.get_by_label("Adresse e-mail").fill(admin.user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()

    page.goto(f"{live_server.url}/membres/inviter/")
    page.get_by_label("Adresse e-mail").fill("lea.nouvelle@example.org")
    page.get_by_role("button", name="Envoyer l'invitation").click()
    expect(page.get_by_text("lea.nouvelle@example.org").first).to_be_visible()
    (sent,) = mail.outbox

    page.get_by_role("link", name="Messages envoyés").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Messages envoyés à CCAS de Bordeaux")
    row = page.get_by_role("row").filter(has_text="lea.nouvelle@example.org")
    expect(row).to_contain_text("Invitation")
    expect(row).to_contain_text("Envoyé")
    row.get_by_role("link", name=sent.subject).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(sent.subject)
    body = page.locator(".notification-body")
    expect(body).to_contain_text("Bonjour,")
    expect(body).to_contain_text("[lien personnel masqué]")
    expect(body).not_to_contain_text("/invitation/")
