"""The pseudonymous key that recognises a person across distributors without storing who they are.

Names and birth date are normalised (case, accents, spaces, hyphens, apostrophes), then keyed
with HMAC-SHA256 and a server secret. The inputs are used only here and never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from datetime import date

from django.conf import settings


def normalise_name(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name or "")
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in letters.casefold() if c.isalnum())


def dedup_key(*, last_name: str, first_name: str, birth_date: date) -> str:
    message = "|".join(
        (normalise_name(last_name), normalise_name(first_name), birth_date.isoformat())
    )
    return hmac.new(settings.DEDUP_SECRET.encode(), message.encode(), hashlib.sha256).hexdigest()
