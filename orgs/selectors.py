"""Reads of the orgs app that depend on who asks. Each starts from ``visible_to``."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import TYPE_CHECKING

from django.shortcuts import get_object_or_404
from django.utils import timezone

from .models import ApiToken, AuditEvent, Invitation, Membership, Notification, Organisation

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from .models import User


def memberships_of_user(*, user: User) -> list[Membership]:
    return list(
        Membership.objects.active()
        .filter(user=user, organisation__isnull=False)
        .select_related("organisation")
        .order_by("organisation__name", "pk")
    )


def membership_current_for(*, user: User, membership_id: int | None) -> Membership | None:
    """The membership chosen in the session, else the first one (None when they have none)."""
    memberships = memberships_of_user(user=user)
    for candidate in memberships:
        if candidate.pk == membership_id:
            return candidate
    return memberships[0] if memberships else None


def organisation_list(*, membership: Membership) -> QuerySet[Organisation]:
    return Organisation.objects.visible_to(membership).order_by("name")


def organisation_get(*, membership: Membership, pk: int) -> Organisation:
    return get_object_or_404(Organisation.objects.visible_to(membership), pk=pk)


def member_list(*, membership: Membership) -> QuerySet[Membership]:
    return (
        Membership.objects.visible_to(membership)
        .active()
        .filter(organisation=membership.organisation)
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )


def member_get(*, membership: Membership, pk: int) -> Membership:
    """A live member of the caller's own organisation, else 404."""
    return get_object_or_404(
        Membership.objects.active()
        .filter(organisation=membership.organisation)
        .select_related("user", "organisation"),
        pk=pk,
    )


def invitation_list_pending(*, membership: Membership) -> QuerySet[Invitation]:
    return Invitation.objects.pending().filter(organisation=membership.organisation)


def invitation_get(*, membership: Membership, pk: int) -> Invitation:
    return get_object_or_404(Invitation.objects.filter(organisation=membership.organisation), pk=pk)


def api_token_list(*, membership: Membership) -> QuerySet[ApiToken]:
    return ApiToken.objects.visible_to(membership).select_related("membership__user")


def api_token_get(*, membership: Membership, pk: int) -> ApiToken:
    return get_object_or_404(ApiToken.objects.visible_to(membership), pk=pk)


def audit_event_list(
    *,
    membership: Membership,
    action: str = "",
    organisation_id: int | None = None,
    actor_email: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.visible_to(membership).select_related("actor", "organisation")
    if action:
        events = events.filter(action__startswith=action)
    if organisation_id:
        events = events.filter(organisation_id=organisation_id)
    if actor_email:
        events = events.filter(actor__email__icontains=actor_email)
    tz = timezone.get_current_timezone()
    if date_from:
        events = events.filter(created_at__gte=datetime.combine(date_from, time.min, tzinfo=tz))
    if date_to:
        events = events.filter(created_at__lte=datetime.combine(date_to, time.max, tzinfo=tz))
    return events.order_by("-created_at", "-id")


def notification_list(
    *,
    membership: Membership,
    template: str = "",
    recipient: str = "",
    status: str = "",
    organisation_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> QuerySet[Notification]:
    """E-mails sent for the member's organisation (operators: all), newest first."""
    found = Notification.objects.visible_to(membership).select_related("organisation")
    if template:
        found = found.filter(template=template)
    if recipient:
        found = found.filter(recipient__icontains=recipient)
    if status:
        found = found.filter(status=status)
    if organisation_id:
        found = found.filter(organisation_id=organisation_id)
    tz = timezone.get_current_timezone()
    if date_from:
        found = found.filter(created_at__gte=datetime.combine(date_from, time.min, tzinfo=tz))
    if date_to:
        found = found.filter(created_at__lte=datetime.combine(date_to, time.max, tzinfo=tz))
    return found.defer("body").order_by("-created_at", "-id")


def notification_get(*, membership: Membership, pk: int) -> Notification:
    """One logged e-mail the member may see; another organisation's answers 404."""
    return get_object_or_404(
        Notification.objects.visible_to(membership).select_related("organisation"), pk=pk
    )


def organisation_admin_emails(*, organisation: Organisation) -> list[str]:
    """Where an organisation's notifications go: its active admins."""
    return list(
        Membership.objects.active()
        .filter(organisation=organisation, role="admin", user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
