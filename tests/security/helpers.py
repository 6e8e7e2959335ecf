"""Second-factor helpers for tests: a confirmed authenticator, its codes, a verified session."""

from __future__ import annotations

import time

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice


def confirmed_totp_device(user, key: str | None = None) -> TOTPDevice:
    """The user's confirmed authenticator, created (with ``key`` when given) when missing."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        extra = {"key": key} if key else {}
        device = TOTPDevice.objects.create(user=user, name="Test", confirmed=True, **extra)
    return device


def totp_code(device: TOTPDevice) -> str:
    """A code the device accepts now: the current time step, or the next one when the current
    one was already used (a code works once; the device tolerates one step of drift)."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    if totp.t() <= device.last_t:
        totp.time += device.step * (device.last_t + 1 - totp.t())
    return f"{totp.token():0{device.digits}d}"


def verify_second_factor(client, user) -> TOTPDevice:
    """Mark a signed-in test client's session as verified by a confirmed authenticator.

    This is what ``django_otp.login`` stores after the second sign-in step.
    """
    device = confirmed_totp_device(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device
