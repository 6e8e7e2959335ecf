"""Second sign-in step: a person with an authenticator enters a code before anything else, and
operators' staff without one set it up first.

Runs after ``OTPMiddleware`` (``request.user.is_verified()``) and ``CurrentMembershipMiddleware``
(``request.membership``). API requests carrying an ``Authorization: Token`` header are left to the
API's token authentication, which DRF tries before the session (a wrong token is refused, never
replaced by the session): a token is itself a long random secret created from a verified session
(see README, "Security").

Whether a person has an authenticator is read at sign-in and kept in the session, so that
ordinary requests cost no query; the account pages update it when it changes, and the second
step corrects it when the authenticator was removed elsewhere. Whether one is *required* is
decided again on every request from what is already loaded (the user row and the current
membership with its organisation), so joining the operator, being made staff or having an
operator membership reactivated during a live session takes effect at once.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from aptic.handlers import carries_api_token

from .selectors import user_second_factor_state

# Pages reachable between the password and the code: the two-factor pages themselves, signing
# out, and the language switch.
OPEN_URL_NAMES = frozenset(
    {"two_factor_verify", "two_factor_setup", "logout", "set_language", "login"}
)


STATE_SESSION_KEY = "second_factor_state"


def remember_second_factor_state(sender, request, user, **kwargs) -> None:
    """At sign-in (``user_logged_in``): note in the session whether a code is owed."""
    if request is not None and hasattr(request, "session"):
        request.session[STATE_SESSION_KEY] = list(user_second_factor_state(user=user))


def second_factor_state(request: HttpRequest) -> tuple[bool, bool]:
    """(has a confirmed authenticator, must have one) for the signed-in person of the session."""
    state = request.session.get(STATE_SESSION_KEY)
    if state is None:  # a session opened before this check existed
        state = list(user_second_factor_state(user=request.user))
        request.session[STATE_SESSION_KEY] = state
    return bool(state[0]), bool(state[1])


def second_factor_required(request: HttpRequest) -> bool:
    """Must the signed-in person of this request use a second factor, as things stand now?

    No query: the user row and ``request.membership`` (with its organisation) are loaded by the
    authentication and membership middlewares. The state noted at sign-in still counts, so a
    person with an operator membership who acts for another organisation stays held to it.
    """
    user = request.user
    membership = getattr(request, "membership", None)
    return (
        user.is_staff
        or user.is_superuser
        or (membership is not None and membership.organisation.is_operator)
        or second_factor_state(request)[1]
    )


def second_factor_state_set(request: HttpRequest, *, has_device: bool) -> None:
    """After set-up or removal in this session."""
    _had, required = second_factor_state(request)
    request.session[STATE_SESSION_KEY] = [has_device, required]


def owes_second_factor(request: HttpRequest) -> bool:
    """Has the signed-in person of this session still to give a code (or set one up)?"""
    user = request.user
    if not user.is_authenticated or user.is_verified():
        return False
    has_device, _required = second_factor_state(request)
    return has_device or second_factor_required(request)


class TwoFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            not user.is_authenticated
            or user.is_verified()
            or self._is_open(request)
            or self._carries_api_token(request)
        ):
            return self.get_response(request)
        has_device, _required = second_factor_state(request)
        if has_device:
            target = "two_factor_verify"
            detail = _("Saisissez votre code de double authentification pour continuer.")
        elif second_factor_required(request):
            target = "two_factor_setup"
            detail = _("Les comptes de l'opérateur doivent activer la double authentification.")
        else:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"code": "two_factor_required", "detail": detail}, status=403)
        url = f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}"
        if getattr(request, "htmx", False):
            return HttpResponseClientRedirect(url)
        return redirect(url)

    @staticmethod
    def _carries_api_token(request: HttpRequest) -> bool:
        """An API request with ``Authorization: Token …``: the token authenticates it, or it is
        refused (401), before the session is looked at."""
        return carries_api_token(request.path, request.META.get("HTTP_AUTHORIZATION", b""))

    @staticmethod
    def _is_open(request: HttpRequest) -> bool:
        if request.path.startswith(settings.STATIC_URL):
            return True
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return True  # the 404 page reveals nothing
        return match.view_name in OPEN_URL_NAMES
