"""DRF permission classes built on the permission keys."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from .permissions import membership_has_permission


def current_membership(request):
    return getattr(request._request, "membership", None)


class HasMembership(BasePermission):
    """Signed in (session or token) and acting for an organisation."""

    message = "Vous devez agir pour une organisation."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return current_membership(request) is not None


def HasPerm(key: str) -> type[BasePermission]:
    """Permission class requiring the permission key ``key``."""

    class _HasPerm(HasMembership):
        def has_permission(self, request, view) -> bool:
            return super().has_permission(request, view) and membership_has_permission(
                current_membership(request), key
            )

    _HasPerm.__name__ = f"HasPerm[{key}]"
    return _HasPerm
