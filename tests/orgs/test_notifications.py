"""E-mails: one layout for all, in the recipient's language, and the « Messages envoyés » log.

Every path that sends an e-mail writes one log row per recipient in the same transaction, and
sends on commit: a rolled-back change leaves neither a row nor a message.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

from orgs.models import AuditEvent, MemberRole, Notification, NotificationStatus
from orgs.notifications import EMAIL_KINDS, email_on_commit
from orgs.services import invitation_create
from orgs.tasks import send_email
from redemption.models import Payout, Redemption
from redemption.services.redeem import cheques_redeem
from redemption.services.statements import payout_statement_render
from tests.factories import MembershipFactory, OrganisationFactory
from tests.redemption.helpers import accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import (
    actor_for,
    approved_order,
    funder_membership,
    operator_membership,
)

pytestmark = pytest.mark.django_db

EMAILS = Path(settings.BASE_DIR) / "templates" / "emails"
REPO = Path(settings.BASE_DIR)


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _english(membership):
    membership.user.language = "en"
    membership.user.save(update_fields=["language"])
    return membership


def _html(message) -> str:
    (html, mimetype), *_ = message.alternatives
    assert mimetype == "text/html"
    return html


def tenancy_notification_kwargs(owner) -> dict:
    """For tests/test_tenancy.py: an e-mail logged for the owner's organisation."""
    with transaction.atomic():
        (notification,) = email_on_commit(
            to=[owner.user.email],
            template="invitation",
            organisation=owner.organisation,
            context={
                "organisation": owner.organisation.name,
                "role": "Agent",
                "inviter": "Aptic",
                "url": "https://aptic.example/invitation/x/",
                "expires_at": None,
            },
            secrets=("url",),
        )
    return {"pk": notification.pk}


# --- One layout -----------------------------------------------------------------------------


def test_every_email_extends_the_common_layout_and_is_listed():
    bodies = {
        path.name.removesuffix(".txt")
        for path in EMAILS.glob("*.txt")
        if not path.name.endswith(".subject.txt") and path.name != "base.txt"
    }
    assert bodies == set(EMAIL_KINDS)
    for name in bodies:
        text = (EMAILS / f"{name}.txt").read_text()
        assert text.startswith('{% extends "emails/base.txt" %}'), name
        assert "Bonjour" not in text and "L'équipe Aptic" not in text, name
        assert (EMAILS / f"{name}.subject.txt").exists(), name


def test_no_code_sends_mail_around_the_log():
    senders = re.compile(r"\b(send_mail|send_mass_mail|EmailMessage|EmailMultiAlternatives)\b")
    offenders = [
        str(path.relative_to(REPO))
        for app in ("aptic", "orgs", "vouchers", "redemption")
        for path in (REPO / app).rglob("*.py")
        if senders.search(path.read_text())
        and path.relative_to(REPO).as_posix() not in {"orgs/tasks.py", "orgs/forms.py"}
    ]
    assert offenders == []


# --- Paths that send, in French and in English ----------------------------------------------


def test_an_invitation_is_logged_for_the_organisation_with_its_link_masked(on_commit):
    admin = funder_membership()
    with on_commit():
        invitation_create(
            actor=actor_for(admin), email="nouvelle@example.org", role=MemberRole.AGENT
        )

    (message,) = mail.outbox
    assert message.to == ["nouvelle@example.org"]
    assert message.subject.startswith("Invitation à rejoindre")
    assert message.body.startswith("Bonjour,")
    assert "L'équipe Aptic" in message.body and settings.SITE_URL in message.body
    link = re.search(r"https?://\S+/invitation/\S+", message.body).group(0)
    assert link in _html(message) and "<p>Bonjour,</p>" in _html(message)

    (logged,) = Notification.objects.all()
    assert logged.organisation == admin.organisation
    assert logged.recipient == "nouvelle@example.org"
    assert logged.template == "invitation" and logged.subject == message.subject
    assert logged.status == NotificationStatus.SENT and logged.sent_at is not None
    assert link not in logged.body  # the personal link stays out of the log
    assert "[lien personnel masqué]" in logged.body


def test_an_order_step_goes_to_each_admin_in_their_own_language(on_commit):
    funder = funder_membership()
    english = _english(MembershipFactory(organisation=funder.organisation, role=MemberRole.ADMIN))
    with on_commit():
        order = approved_order(lines={5: 1}, funder=funder)

    submitted = {m.to[0]: m for m in mail.outbox if order.reference in m.subject}
    french = submitted[funder.user.email]
    assert french.subject.startswith(f"Commande {order.reference}")
    assert french.body.startswith("Bonjour,") and "L'équipe Aptic" in french.body
    in_english = submitted[english.user.email]
    assert in_english.subject.startswith(f"Order {order.reference}")
    assert in_english.body.startswith("Hello,") and "The Aptic team" in in_english.body

    rows = Notification.objects.filter(organisation=funder.organisation)
    assert {"order_submitted", "order_approved"} <= set(rows.values_list("template", flat=True))
    assert rows.count() == len(mail.outbox)
    for template in ("order_submitted", "order_approved"):  # one message per admin
        assert rows.filter(template=template).count() == 2
    assert set(rows.filter(recipient=english.user.email).values_list("language", flat=True)) == {
        "en"
    }


def test_booklets_allocated_are_logged_for_the_distributor(on_commit):
    from tests.vouchers.test_stock import allocate, distributor_membership, stock_of

    funder = funder_membership()
    stock_of(funder, {5: 2})
    distributor = _english(distributor_membership())
    with on_commit():
        allocate(funder, distributor, count=2, size=5)

    (message,) = [m for m in mail.outbox if m.to == [distributor.user.email]]
    assert "is entrusting you with 2 APTIC booklets" in message.subject
    assert message.body.startswith("Hello,")
    (logged,) = Notification.objects.filter(template="booklets_allocated")
    assert logged.organisation == distributor.organisation and logged.language == "en"


def test_an_accreditation_decision_reaches_the_provider_and_is_in_its_log(on_commit):
    from tests.orgs.test_accreditation import (
        _tenancy_storage,
        approved_application,
        operator_member,
    )

    _tenancy_storage()
    provider = MembershipFactory(
        organisation=OrganisationFactory(is_funder=False, is_provider=True),
        role=MemberRole.ADMIN,
    )
    with on_commit():
        approved_application(provider, operator_member())

    approved = Notification.objects.get(
        template="accreditation_approved", recipient=provider.user.email
    )
    assert approved.organisation == provider.organisation
    message = next(m for m in mail.outbox if m.subject == approved.subject)
    assert message.body == approved.body  # nothing secret: the log shows what was sent
    # The operator's own notices are not shown to the provider.
    to_review = Notification.objects.filter(template="accreditation_submitted")
    assert to_review.exists() and not to_review.filter(organisation=provider.organisation).exists()


def test_a_payout_statement_is_announced_to_the_providers_admins(on_commit):
    from tests.redemption.test_settlement import _batch

    world = handed_out_cheques()
    member, site = accredited_provider_member(services=[world.service], role=MemberRole.ADMIN)
    _english(member)
    cheques_redeem(actor=actor_for(member), codes=world.codes[:2], service=world.service, site=site)
    Redemption.objects.update(created_at=timezone.now() - timedelta(days=1))
    _batch(operator_membership())
    payout = Payout.objects.get(provider=member.organisation)

    with on_commit():
        payout_statement_render(payout_id=payout.pk)

    (logged,) = Notification.objects.filter(template="statement_ready")
    assert logged.organisation == member.organisation and logged.language == "en"
    (message,) = [m for m in mail.outbox if m.to == [member.user.email]]
    assert message.subject == logged.subject and message.body.startswith("Hello,")


def test_a_password_reset_is_logged_for_operators_only_without_its_link(client):
    member = _english(funder_membership())

    client.post(reverse("password_reset"), {"email": member.user.email})

    (message,) = mail.outbox
    assert message.body.startswith("Hello,")
    assert "/mot-de-passe/nouveau/" in message.body
    (logged,) = Notification.objects.all()
    assert logged.organisation is None and logged.template == "password_reset"
    assert "/mot-de-passe/nouveau/" not in logged.body


def test_a_rolled_back_change_logs_nothing_and_sends_nothing(on_commit):
    admin = funder_membership()
    with on_commit(), pytest.raises(RuntimeError), transaction.atomic():
        invitation_create(actor=actor_for(admin), email="x@example.org", role=MemberRole.AGENT)
        raise RuntimeError("the change fails after the e-mail was queued")

    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_choosing_english_in_the_footer_sets_the_language_of_later_emails(client_for, on_commit):
    admin = funder_membership()
    client_for(admin).post(reverse("set_language"), {"language": "en", "next": "/"})
    admin.user.refresh_from_db()
    assert admin.user.language == "en"
    assert AuditEvent.objects.filter(action="orgs.user.language_set").count() == 1

    client_for(admin).post(reverse("set_language"), {"language": "xx", "next": "/"})
    admin.user.refresh_from_db()
    assert admin.user.language == "en"  # an unknown language changes nothing

    with on_commit():  # another organisation invites this person
        invitation_create(
            actor=actor_for(funder_membership()), email=admin.user.email, role="agent"
        )
    assert mail.outbox[0].subject.startswith("Invitation to join")


# --- Delivery status ------------------------------------------------------------------------


def test_a_message_that_cannot_be_sent_is_marked_failed_with_an_audit_event():
    admin = funder_membership()
    (logged,) = email_on_commit(
        to=["a@example.org"],
        template="invitation",
        organisation=admin.organisation,
        context={"organisation": "X", "role": "Agent", "inviter": "Y", "url": "u"},
    )
    kwargs = {"notification_id": logged.pk, "to": ["a@example.org"], "subject": "S", "body": "B"}
    with (
        mock.patch.object(send_email, "max_retries", 0),
        mock.patch(
            "django.core.mail.EmailMultiAlternatives.send",
            side_effect=ConnectionRefusedError("smtp down"),
        ),
        pytest.raises(ConnectionRefusedError),
    ):
        send_email.apply(kwargs=kwargs, throw=True)

    logged.refresh_from_db()
    assert logged.status == NotificationStatus.FAILED and "smtp down" in logged.error
    event = AuditEvent.objects.get(action="orgs.notification.failed")
    assert event.organisation == admin.organisation
    # A late retry that succeeds does not rewrite the outcome.
    send_email.apply(kwargs=kwargs, throw=True)
    logged.refresh_from_db()
    assert logged.status == NotificationStatus.FAILED


@pytest.mark.postgres
def test_the_log_cannot_be_rewritten_or_deleted_in_the_database():
    admin = funder_membership()
    (logged,) = email_on_commit(
        to=["a@example.org"],
        template="invitation",
        organisation=admin.organisation,
        context={"organisation": "X", "role": "Agent", "inviter": "Y", "url": "u"},
    )
    for statement in (
        "UPDATE orgs_notification SET body = 'rewritten' WHERE id = %s",
        "DELETE FROM orgs_notification WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(statement, [logged.pk])
    logged.refresh_from_db()
    assert logged.body != "rewritten"


def test_the_admin_shows_the_log_but_cannot_change_or_delete_it(admin_client):
    admin = funder_membership()
    (logged,) = email_on_commit(
        to=["a@example.org"],
        template="invitation",
        organisation=admin.organisation,
        context={"organisation": "X", "role": "Agent", "inviter": "Y", "url": "u"},
    )
    assert admin_client.get("/admin/orgs/notification/").status_code == 200
    delete = admin_client.post(f"/admin/orgs/notification/{logged.pk}/delete/", {"post": "yes"})
    change = admin_client.post(f"/admin/orgs/notification/{logged.pk}/change/", {"body": "x"})
    assert delete.status_code == 403 and change.status_code in (302, 403)
    assert Notification.objects.get(pk=logged.pk).body == logged.body


# --- « Messages envoyés » -------------------------------------------------------------------


def test_members_see_their_organisations_messages_and_operators_see_all(
    client_for, operator_admin, on_commit
):
    admin = funder_membership(name="Département de la Gironde")
    agent = MembershipFactory(organisation=admin.organisation, role=MemberRole.AGENT)
    other = funder_membership(name="Ville de Bordeaux")
    with on_commit():
        invitation_create(actor=actor_for(admin), email="gironde@example.org", role="agent")
        invitation_create(actor=actor_for(other), email="bordeaux@example.org", role="agent")
    mine = Notification.objects.get(recipient="gironde@example.org")
    theirs = Notification.objects.get(recipient="bordeaux@example.org")

    page = client_for(agent).get(reverse("notification_list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "gironde@example.org" in html and "bordeaux@example.org" not in html
    detail = client_for(agent).get(reverse("notification_detail", args=[mine.pk]))
    assert detail.status_code == 200 and "[lien personnel masqué]" in detail.content.decode()
    assert (
        client_for(agent).get(reverse("notification_detail", args=[theirs.pk])).status_code == 404
    )

    everything = client_for(operator_admin).get(reverse("notification_list")).content.decode()
    assert "gironde@example.org" in everything and "bordeaux@example.org" in everything
    filtered = client_for(operator_admin).get(
        reverse("notification_list"), {"organisation": other.organisation.pk}
    )
    assert "gironde@example.org" not in filtered.content.decode()


def test_the_list_filters_by_kind_and_status_and_ignores_bad_filters(client_for, on_commit):
    admin = funder_membership()
    with on_commit():
        invitation_create(actor=actor_for(admin), email="one@example.org", role="agent")
        order = approved_order(lines={5: 1}, funder=admin)
    client = client_for(admin)

    everything = client.get(reverse("notification_list")).content.decode()
    assert order.reference in everything
    invitations = client.get(reverse("notification_list"), {"template": "invitation"})
    assert "one@example.org" in invitations.content.decode()
    assert order.reference not in invitations.content.decode()
    failed = client.get(reverse("notification_list"), {"status": "failed"}).content.decode()
    assert "one@example.org" not in failed and "Aucun message ne correspond." in failed
    bad = client.get(
        reverse("notification_list"), {"template": "nope", "date_from": "31/02/2026", "page": "x"}
    )
    assert bad.status_code == 200
    assert "Sélectionnez un choix valide" in bad.content.decode()


def test_signed_out_visitors_are_sent_to_the_login_page(client):
    response = client.get(reverse("notification_list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_agent_of_another_role_reaches_the_page_from_the_navigation(client_for):
    agent = MembershipFactory(
        organisation=OrganisationFactory(is_funder=False, is_provider=True), role=MemberRole.AGENT
    )
    home = client_for(agent).get("/").content.decode()
    assert reverse("notification_list") in home
