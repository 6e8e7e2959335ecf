"""Counter and API rate limits per membership and per IP (Redis-backed cache in production)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

from orgs.audit import client_ip

from .ratelimit import Limit, RateLimited, hit

# ratelimit.hit() for several limits in one round trip: the same key, the same "add 0 with a
# timeout, then increment" per limit, in the same order, stopping at the first limit exceeded
# (the later ones are not counted), atomically. Returns {index of that limit (1-based), count},
# or {0, 0} when every limit allows the request.
_HITS = """
for i, key in ipairs(KEYS) do
    redis.call('SET', key, 0, 'NX', 'EX', ARGV[2 * i - 1])
    local count = redis.call('INCR', key)
    if count > tonumber(ARGV[2 * i]) then
        return {i, count}
    end
end
return {0, 0}
"""


_scripts: dict[int, object] = {}


def _hits_script(backend: RedisCache):
    """The ``_HITS`` script bound to a client of the cache's pool, made once per pool.

    Django's cache builds a new client object on every call (a few hundred dictionary entries of
    response callbacks); this path runs on every check and redemption. The script is sent by
    its SHA (EVALSHA), loaded again by redis-py if the server forgot it.
    """
    pool = backend._cache._get_connection_pool(write=True)
    script = _scripts.get(id(pool))
    if script is None:
        client = backend._cache._client(connection_pool=pool)
        script = _scripts[id(pool)] = client.register_script(_HITS)
    return script


def _hit_all(limits: list[tuple[Limit, str]]) -> None:
    """``hit(limit, subject)`` for each pair in order: with Redis, one round trip for all.

    Raises :class:`RateLimited` for the first limit exceeded, exactly as the calls would.
    """
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        for limit, subject in limits:
            hit(limit, subject)
        return
    now = time.time()
    keys, argv = [], []
    for limit, subject in limits:
        window = int(now // limit.window_seconds)
        keys.append(backend.make_and_validate_key(f"rl:{limit.name}:{subject}:{window}"))
        argv += [limit.window_seconds + 1, limit.per_window]
    exceeded, _count = _hits_script(backend)(keys=keys, args=argv)
    if exceeded:
        window_seconds = limits[exceeded - 1][0].window_seconds
        retry_after = window_seconds - int(time.time()) % window_seconds
        raise RateLimited(max(retry_after, 1))


def counter_limits(membership_id: int | None, ip: str | None) -> None:
    """Raise :class:`RateLimited` when this membership or this IP scans too fast."""
    limits = []
    if membership_id is not None:
        limits.append((Limit("member", settings.REDEEM_RATE_PER_MEMBERSHIP), str(membership_id)))
    if ip:
        limits.append((Limit("ip", settings.REDEEM_RATE_PER_IP), ip))
    if limits:
        _hit_all(limits)


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
