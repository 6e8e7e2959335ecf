"""Two-factor authentication: set up an authenticator app, check codes, turn it off.

The authenticator is a django-otp ``TOTPDevice`` (RFC 6238, 6 digits, 30 s); backup codes are one
``StaticDevice`` with single-use tokens. Every change is audited with the person as actor.
"""

from __future__ import annotations

from typing import NoReturn

from axes.models import AccessAttempt
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from aptic.errors import Conflict, NotFound, ValidationFailed
from orgs.audit import Actor, audit_record
from orgs.models import User
from orgs.permissions import require

from .selectors import user_has_two_factor, user_requires_two_factor

BACKUP_CODE_COUNT = 10


def _clean_code(token: str) -> str:
    # People type "123 456" as the app shows it, or a backup code in any case.
    return "".join(str(token).split()).lower()


def _throttled_until(devices: list[Device]):
    """When every device is still waiting after earlier wrong codes, the soonest end of the wait."""
    waits = []
    for device in devices:
        allowed, details = device.verify_is_allowed()
        if allowed:
            return None
        waits.append((details or {}).get("locked_until") or timezone.now())
    return min(waits) if waits else None


def _refuse_wrong_code(devices: list[Device], throttled_until=None) -> NoReturn:
    if throttled_until is not None:
        seconds = max(1, int((throttled_until - timezone.now()).total_seconds()) + 1)
        raise ValidationFailed(
            ngettext(
                "Trop de codes erronés : attendez %(seconds)d seconde avant de réessayer.",
                "Trop de codes erronés : attendez %(seconds)d secondes avant de réessayer.",
                seconds,
            )
            % {"seconds": seconds},
            field="token",
            code="too_many_attempts",
        )
    raise ValidationFailed(
        _("Code incorrect ou expiré. Saisissez le code à 6 chiffres affiché par l'application."),
        field="token",
        code="invalid_code",
    )


def _backup_codes_replace(*, user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=_("Codes de secours"), confirmed=True)
    codes = [StaticToken.random_token() for _index in range(BACKUP_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


@transaction.atomic
def totp_device_start(*, actor: Actor) -> TOTPDevice:
    """The person's authenticator waiting for its first code, created (random key) when missing.

    Refused when an authenticator is already confirmed: turn it off first.
    """
    user = actor.user
    User.objects.select_for_update().filter(pk=user.pk).first()
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        raise Conflict(
            _("La double authentification est déjà activée sur ce compte."),
            code="two_factor_enabled",
        )
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        # django-otp devices are confirmed by default: this one waits for its first code.
        device = TOTPDevice.objects.create(
            user=user, name=_("Application d'authentification"), confirmed=False
        )
        audit_record(actor=actor, action="security.two_factor.setup_started", target=user)
    return device


def totp_device_confirm(
    *, actor: Actor, device_id: int, token: str
) -> tuple[TOTPDevice, list[str]]:
    """Confirm the pending authenticator with a valid code; returns it and fresh backup codes.

    A wrong code changes nothing but the device's throttle (each failure doubles the wait).
    """
    user = actor.user
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(pk=device_id, user=user, confirmed=False)
            .first()
        )
        if device is None:
            raise Conflict(
                _("Cette configuration n'est plus valable : recommencez depuis votre compte."),
                code="setup_expired",
            )
        throttled_until = _throttled_until([device])
        if device.verify_token(_clean_code(token)):
            updated = TOTPDevice.objects.filter(pk=device.pk, confirmed=False).update(
                confirmed=True
            )
            if updated != 1:
                raise Conflict(
                    _("La double authentification est déjà activée."), code="two_factor_enabled"
                )
            device.confirmed = True
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            codes = _backup_codes_replace(user=user)
            audit_record(
                actor=actor,
                action="security.two_factor.enabled",
                target=user,
                data={"backup_codes": len(codes)},
            )
            return device, codes
    # Refused after the commit, so the failure counted by verify_token stays counted.
    _refuse_wrong_code([device], throttled_until)


def two_factor_verify(*, actor: Actor, token: str) -> Device:
    """The confirmed device (authenticator, else a backup code) that accepts ``token``.

    A backup code works once. Raises ``ValidationFailed`` (field ``token``) otherwise; failures
    are counted per device and slow the next attempts down.
    """
    user = actor.user
    code = _clean_code(token)
    if not code:
        raise ValidationFailed(_("Saisissez le code."), field="token", code="required")
    with transaction.atomic():
        devices: list[Device] = [
            *TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True),
            *StaticDevice.objects.select_for_update().filter(user=user, confirmed=True),
        ]
        throttled_until = _throttled_until(devices)
        for device in devices:
            if device.verify_token(code):
                audit_record(
                    actor=actor,
                    action="security.two_factor.verified",
                    target=user,
                    data={"device": "backup_code" if isinstance(device, StaticDevice) else "app"},
                )
                return device
    # Outside the transaction: the throttle counters committed above.
    _refuse_wrong_code(devices, throttled_until)


def two_factor_disable(*, actor: Actor, token: str) -> None:
    """Turn two-factor off after a valid code (operators must keep it: refused)."""
    user = actor.user
    if user_requires_two_factor(user=user):
        raise Conflict(
            _(
                "La double authentification est obligatoire pour les comptes de l'opérateur : "
                "elle ne peut pas être désactivée."
            ),
            code="two_factor_required",
        )
    if not user_has_two_factor(user=user):
        raise Conflict(_("La double authentification n'est pas activée."), code="not_enabled")
    # The code is checked (and consumed) in its own transaction so that failures stay counted.
    two_factor_verify(actor=actor, token=token)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        audit_record(actor=actor, action="security.two_factor.disabled", target=user)


def backup_codes_regenerate(*, actor: Actor, token: str) -> list[str]:
    """Replace the backup codes after a valid code; the old ones stop working."""
    user = actor.user
    two_factor_verify(actor=actor, token=token)
    with transaction.atomic():
        codes = _backup_codes_replace(user=user)
        audit_record(actor=actor, action="security.two_factor.backup_codes_renewed", target=user)
    return codes


@transaction.atomic
def login_lockout_lift(*, actor: Actor, attempt_id: int) -> None:
    """Lift a log-in lock-out (operators): the address may try its password again at once."""
    require(actor.membership, "logins:unlock")
    attempt = AccessAttempt.objects.select_for_update().filter(pk=attempt_id).first()
    if attempt is None:
        raise NotFound(_("Ce blocage n'existe plus : il a peut-être déjà été levé."))
    data = {
        "username": attempt.username,
        "ip": attempt.ip_address,
        "failures": attempt.failures_since_start,
    }
    attempt.delete()
    audit_record(actor=actor, action="security.login_lockout.lifted", data=data)
