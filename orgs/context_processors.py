from django.http import HttpRequest

from .permissions import permissions_of
from .selectors import memberships_of_user


def membership(request: HttpRequest) -> dict:
    current = getattr(request, "membership", None)
    if current is None or not request.user.is_authenticated:
        return {"membership": None, "perms_keys": set(), "other_memberships": []}
    return {
        "membership": current,
        "perms_keys": permissions_of(current),
        "other_memberships": [
            m for m in memberships_of_user(user=request.user) if m.pk != current.pk
        ],
    }
