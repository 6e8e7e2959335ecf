"""Attach the membership a signed-in person acts for to every request (``request.membership``)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .selectors import membership_current_for

SESSION_KEY = "membership_id"


class CurrentMembershipMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None
        if request.user.is_authenticated:
            request.membership = membership_current_for(
                user=request.user, membership_id=request.session.get(SESSION_KEY)
            )
        return self.get_response(request)
