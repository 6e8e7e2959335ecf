"""Secrets handed to people (API keys, invitation links): random, shown once, stored as digests."""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "apt_"


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 hex digest. The secrets carry 256 bits of entropy, so no salt or stretching."""
    return hashlib.sha256(secret.encode()).hexdigest()
