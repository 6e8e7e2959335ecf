"""Permission keys (``resource:action``) and the one table that derives them from roles.

A membership holds a key when its organisation has one of the rule's organisation roles and, for
admin-only keys, the membership is an admin. Services check keys with :func:`require`; templates
and views ask :func:`membership_has_permission` (also ``membership.has_perm``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aptic.errors import NotAllowed

from .models import OrgRole

if TYPE_CHECKING:
    from .models import Membership

ANY_ROLE = frozenset(OrgRole.values)
FUNDER = frozenset({OrgRole.FUNDER.value})
DISTRIBUTOR = frozenset({OrgRole.DISTRIBUTOR.value})
PROVIDER = frozenset({OrgRole.PROVIDER.value})
OPERATOR = frozenset({OrgRole.OPERATOR.value})


@dataclass(frozen=True)
class Rule:
    roles: frozenset[str]
    admin_only: bool = False


PERMISSIONS: dict[str, Rule] = {
    # Organisation and people
    "organisations:create": Rule(OPERATOR, admin_only=True),
    "organisations:view_all": Rule(OPERATOR),
    "members:view": Rule(ANY_ROLE, admin_only=True),
    "members:manage": Rule(ANY_ROLE, admin_only=True),
    "tokens:manage": Rule(ANY_ROLE, admin_only=True),
    "audit:view": Rule(ANY_ROLE, admin_only=True),
    "audit:view_all": Rule(OPERATOR),
    "logins:unlock": Rule(OPERATOR, admin_only=True),
    "notifications:view": Rule(ANY_ROLE),
    "notifications:view_all": Rule(OPERATOR),
    # Programmes, orders, booklets
    "programmes:manage": Rule(OPERATOR, admin_only=True),
    "orders:view": Rule(FUNDER | OPERATOR),
    "orders:create": Rule(FUNDER),
    "orders:submit": Rule(FUNDER),
    "orders:cancel": Rule(FUNDER),
    "orders:approve": Rule(OPERATOR, admin_only=True),
    "orders:download": Rule(FUNDER | OPERATOR),
    "booklets:view": Rule(FUNDER | DISTRIBUTOR | OPERATOR),
    "booklets:allocate": Rule(FUNDER),
    "booklets:assign": Rule(DISTRIBUTOR),
    "booklets:override_limit": Rule(DISTRIBUTOR, admin_only=True),
    "booklets:block": Rule(FUNDER | DISTRIBUTOR),
    "booklets:replace": Rule(FUNDER),
    # Accreditation, redemption, settlement
    "accreditation:apply": Rule(PROVIDER, admin_only=True),
    "accreditation:review": Rule(OPERATOR, admin_only=True),
    "cheques:check": Rule(PROVIDER),
    "cheques:redeem": Rule(PROVIDER),
    "redemptions:view": Rule(PROVIDER | OPERATOR),
    "redemptions:cancel": Rule(PROVIDER),
    "settlement:view": Rule(OPERATOR),
    "settlement:compute": Rule(OPERATOR, admin_only=True),
    "settlement:approve": Rule(OPERATOR, admin_only=True),
    "payouts:view": Rule(PROVIDER | OPERATOR),
    # Dashboards, one per organisation role
    "dashboards:funder": Rule(FUNDER),
    "dashboards:distributor": Rule(DISTRIBUTOR),
    "dashboards:provider": Rule(PROVIDER),
    "dashboards:operator": Rule(OPERATOR),
}


def membership_has_permission(membership: Membership | None, key: str) -> bool:
    """True when the membership's organisation roles and member role grant ``key``."""
    if membership is None or not membership.is_active:
        return False
    rule = PERMISSIONS.get(key)
    if rule is None:
        raise KeyError(f"Unknown permission key: {key}")
    if rule.admin_only and not membership.is_admin:
        return False
    return any(membership.organisation.has_role(role) for role in rule.roles)


def permissions_of(membership: Membership | None) -> set[str]:
    return {key for key in PERMISSIONS if membership_has_permission(membership, key)}


def require(membership: Membership | None, key: str) -> None:
    """Raise :class:`NotAllowed` unless the membership holds ``key``."""
    if not membership_has_permission(membership, key):
        raise NotAllowed(code="permission_denied")
