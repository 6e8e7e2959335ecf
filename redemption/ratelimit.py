"""Fixed-window rate limits in the cache (Redis in production): a count per key per window."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache


@dataclass(frozen=True)
class Limit:
    name: str
    per_window: int
    window_seconds: int = 60


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"retry after {retry_after}s")


def hit(limit: Limit, subject: str) -> None:
    """Count one request of ``subject``; raise :class:`RateLimited` past the limit."""
    window = int(time.time() // limit.window_seconds)
    key = f"rl:{limit.name}:{subject}:{window}"
    cache.add(key, 0, timeout=limit.window_seconds + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=limit.window_seconds + 1)
        count = 1
    if count > limit.per_window:
        retry_after = limit.window_seconds - int(time.time()) % limit.window_seconds
        raise RateLimited(max(retry_after, 1))
