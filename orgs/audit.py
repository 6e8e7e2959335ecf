"""Who acts, and the one function that writes an audit event.

Every service takes an :class:`Actor` and calls :func:`audit_record` inside its transaction, so the
event commits or rolls back with the change it describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

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
    # Behind the reverse proxy the first X-Forwarded-For hop is the client; gunicorn is only
    # reachable through the proxy in the production shape (docker-compose).
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded:
        return forwarded.split(",")[0].strip() or None
    return request.META.get("REMOTE_ADDR") or None


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
    return AuditEvent.objects.create(
        actor=actor.user,
        organisation=organisation or actor.organisation,
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        data=_jsonable(data),
        ip=actor.ip,
    )
