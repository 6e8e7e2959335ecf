"""Reads about a person's sign-in protection: whether two-factor is theirs, or owed."""

from __future__ import annotations

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Exists, OuterRef, Value
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from orgs.models import Membership, User
from orgs.permissions import require


def user_requires_two_factor(*, user: User) -> bool:
    """Operators' staff (any live membership of an operator organisation) must use two factors.

    They approve orders, bank details and settlement batches for every organisation, so a stolen
    password alone must not be enough. Staff accounts (the admin) are held to the same rule.
    """
    if user.is_staff or user.is_superuser:
        return True
    return Membership.objects.active().filter(user=user, organisation__is_operator=True).exists()


def user_has_two_factor(*, user: User) -> bool:
    """True once the person confirmed an authenticator app with a valid code."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def totp_device_pending(*, user: User) -> TOTPDevice | None:
    """The authenticator being set up (shown as a QR code), not yet confirmed by a code."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def user_second_factor_state(*, user: User) -> tuple[bool, bool]:
    """(has a confirmed authenticator, must have one) in one query: asked on every request of a
    person who has not given a code in this session."""
    if user.is_staff or user.is_superuser:
        required = Value(True)
    else:
        required = Exists(
            Membership.objects.active().filter(user=OuterRef("pk"), organisation__is_operator=True)
        )
    return (
        User.objects.filter(pk=user.pk)
        .annotate(
            has_device=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
            required=required,
        )
        .values_list("has_device", "required")
        .get()
    )


def backup_codes_left(*, user: User) -> int:
    device = StaticDevice.objects.filter(user=user, confirmed=True).first()
    return device.token_set.count() if device else 0


def login_lockouts(*, membership: Membership) -> list[AccessAttempt]:
    """Recent failed sign-ins per address and IP (operators only), locked-out pairs first.

    Each row carries ``is_locked`` and ``locked_until`` (the end of the cool-off).
    """
    require(membership, "logins:unlock")
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = list(AccessAttempt.objects.filter(attempt_time__gte=since).order_by("-attempt_time"))
    for row in rows:
        row.is_locked = row.failures_since_start >= settings.AXES_FAILURE_LIMIT
        row.locked_until = row.attempt_time + settings.AXES_COOLOFF_TIME
    return sorted(rows, key=lambda row: not row.is_locked)
