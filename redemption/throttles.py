"""Counter and API rate limits per membership and per IP (Redis-backed cache in production)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from orgs.audit import client_ip

from .ratelimit import Limit, RateLimited, hit


def counter_limits(membership_id: int | None, ip: str | None) -> None:
    """Raise :class:`RateLimited` when this membership or this IP scans too fast."""
    if membership_id is not None:
        hit(Limit("member", settings.REDEEM_RATE_PER_MEMBERSHIP), str(membership_id))
    if ip:
        hit(Limit("ip", settings.REDEEM_RATE_PER_IP), ip)


def public_limit(ip: str | None) -> None:
    hit(Limit("public", settings.PUBLIC_CHEQUE_RATE_PER_IP), ip or "unknown")


class CounterThrottle(BaseThrottle):
    """DRF throttle for checks and redemptions: answers 429 with Retry-After."""

    def allow_request(self, request, view) -> bool:
        membership = getattr(request._request, "membership", None)
        try:
            counter_limits(membership.pk if membership else None, client_ip(request._request))
        except RateLimited as limited:
            self._wait = limited.retry_after
            return False
        return True

    def wait(self):
        return getattr(self, "_wait", 60)
