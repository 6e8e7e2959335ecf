"""View guards: signed in, acting for an organisation, holding a permission key."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from .permissions import membership_has_permission


def membership_required(perm: str | None = None) -> Callable:
    """Require a signed-in user acting for an organisation, and ``perm`` when given.

    A page of a role the organisation does not hold answers 403: it reveals no object.
    Objects themselves are fetched through selectors and answer 404 when out of reach.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if request.membership is None:
                return render(request, "orgs/no_membership.html", status=403)
            if perm and not membership_has_permission(request.membership, perm):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
