"""Who acts, and the one function that writes an audit event.

Every service takes an :class:`Actor` and calls :func:`audit_record` inside its transaction, so the
event commits or rolls back with the change it describes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router

from aptic import rows

from .models import AuditEvent

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import Membership, Organisation, User


@dataclass(frozen=True)
class Actor:
    """The person (or system job) doing an operation, the membership they act through, and IP."""

    user: User | None
    membership: Membership | None = None
    ip: str | None = None

    @property
    def organisation(self) -> Organisation | None:
        return self.membership.organisation if self.membership else None

    @property
    def is_system(self) -> bool:
        """Server-side callers (management commands, scheduled jobs) act with no user."""
        return self.user is None and self.membership is None

    @classmethod
    def system(cls) -> Actor:
        """Scheduled jobs and management commands that act for nobody in particular."""
        return cls(user=None)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, for log-in lock-outs, rate limits and the audit log.

    X-Forwarded-For is written by whoever sends the request: only the hops appended by our own
    proxies can be believed. Each proxy appends the address it received the request from, so with
    ``TRUSTED_PROXIES`` = N in front of the server, the client is the N-th hop from the right;
    anything further left is the client's own writing. With 0 (the default: nothing trusted in
    front), the header is ignored and the connection's address is the client.
    """
    remote_addr = request.META.get("REMOTE_ADDR") or None
    trusted = settings.TRUSTED_PROXIES
    if trusted <= 0:
        return remote_addr
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    if len(hops) < trusted:
        return remote_addr  # reached the server without passing every proxy
    try:
        return str(ipaddress.ip_address(hops[-trusted]))
    except ValueError:
        return remote_addr


def actor_from_request(request: HttpRequest) -> Actor:
    user = request.user if request.user.is_authenticated else None
    return Actor(user=user, membership=getattr(request, "membership", None), ip=client_ip(request))


def _jsonable(data: dict[str, Any] | None) -> dict[str, Any]:
    import json

    return json.loads(json.dumps(data or {}, cls=DjangoJSONEncoder))


def audit_record(
    *,
    actor: Actor,
    action: str,
    target: models.Model | None = None,
    organisation: Organisation | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. ``organisation`` defaults to the one the actor acts for."""
    target_type = target_id = target_label = ""
    if target is not None:
        target_type = target._meta.label_lower
        target_id = str(target.pk)
        target_label = str(target)[:250]
    event = AuditEvent(
        actor=actor.user,
        organisation=organisation or actor.organisation,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        data=_jsonable(data),
        ip=actor.ip,
    )
    # An INSERT from SQL made once (as bulk_create): every write of the platform ends here.
    [event] = rows.insert([event], router.db_for_write(AuditEvent))
    return event
