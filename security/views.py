"""The account page and the two-factor pages: set up, second sign-in step, turn off."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from aptic.errors import DomainError, NotFound, form_add_error
from orgs.audit import actor_from_request
from orgs.decorators import membership_required

from . import selectors, services
from .forms import CodeForm, SetupCodeForm
from .middleware import second_factor_required, second_factor_state_set


def _next_url(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return "/"


def _with_next(name: str, request: HttpRequest) -> HttpResponse:
    return redirect(f"{reverse(name)}?{urlencode({'next': _next_url(request)})}")


def _secret_text(device) -> str:
    """The key as authenticator apps expect it when typed: base32, in groups of four."""
    secret = base64.b32encode(binascii.unhexlify(device.key)).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@never_cache
@login_required
def account(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "security/account.html",
        {
            "two_factor_on": selectors.user_has_two_factor(user=user),
            "two_factor_required": selectors.user_requires_two_factor(user=user),
            "backup_codes_left": selectors.backup_codes_left(user=user),
            "disable_form": CodeForm(auto_id="disable_%s"),
            "backup_form": CodeForm(auto_id="backup_%s"),
        },
    )


@never_cache
@login_required
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Show the QR code and the key of a new authenticator; confirm it with a first code."""
    actor = actor_from_request(request)
    try:
        device = services.totp_device_start(actor=actor)
    except DomainError as exc:
        if exc.code == "two_factor_enabled" and not request.user.is_verified():
            # Set up in another browser since this session began: the session owes a code, and
            # the account page would send it back here.
            second_factor_state_set(request, has_device=True)
            return _with_next("two_factor_verify", request)
        messages.info(request, exc.message)
        return redirect("my_account")
    form = SetupCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = services.totp_device_confirm(
                actor=actor, device_id=device.pk, token=form.cleaned_data["token"]
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            # The code just typed proves the second factor for this session too.
            otp_login(request, device)
            second_factor_state_set(request, has_device=True)
            return render(
                request,
                "security/backup_codes.html",
                {"codes": codes, "next": _next_url(request), "first_time": True},
            )
    qr = segno.make(device.config_url, error="m")
    return render(
        request,
        "security/two_factor_setup.html",
        {
            "form": form,
            "qr_svg": qr.svg_inline(scale=5, dark="#1a1a1a", title=_("QR code à scanner")),
            "secret": _secret_text(device),
            "required": selectors.user_requires_two_factor(user=request.user),
            "next": _next_url(request),
        },
        status=400 if form.errors else 200,
    )


@never_cache
@login_required
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    """The second sign-in step: a code from the app (or a backup code) for this session."""
    if request.user.is_verified():
        return redirect(_next_url(request))
    if not selectors.user_has_two_factor(user=request.user):
        # Turned off in another browser, or removed by support, since this session began: the
        # session stops expecting a code, else the next page would send it back here for ever.
        second_factor_state_set(request, has_device=False)
        if second_factor_required(request):
            return _with_next("two_factor_setup", request)
        return redirect(_next_url(request))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device = services.two_factor_verify(
                actor=actor_from_request(request), token=form.cleaned_data["token"]
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            otp_login(request, device)
            # Rotate the session key: the session now carries a second factor.
            request.session.cycle_key()
            return redirect(_next_url(request))
    return render(
        request,
        "security/two_factor_verify.html",
        {"form": form, "next": _next_url(request)},
        status=400 if form.errors else 200,
    )


@require_POST
@login_required
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST, auto_id="disable_%s")
    if form.is_valid():
        try:
            services.two_factor_disable(
                actor=actor_from_request(request), token=form.cleaned_data["token"]
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            second_factor_state_set(request, has_device=False)
            messages.success(request, _("La double authentification est désactivée."))
            return redirect("my_account")
    return _account_with_errors(request, disable_form=form)


@require_POST
@login_required
def backup_codes_renew(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST, auto_id="backup_%s")
    if form.is_valid():
        try:
            codes = services.backup_codes_regenerate(
                actor=actor_from_request(request), token=form.cleaned_data["token"]
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            return render(
                request,
                "security/backup_codes.html",
                {"codes": codes, "next": reverse("my_account")},
            )
    return _account_with_errors(request, backup_form=form)


def _account_with_errors(request: HttpRequest, **forms) -> HttpResponse:
    user = request.user
    context = {
        "two_factor_on": selectors.user_has_two_factor(user=user),
        "two_factor_required": selectors.user_requires_two_factor(user=user),
        "backup_codes_left": selectors.backup_codes_left(user=user),
        "disable_form": CodeForm(auto_id="disable_%s"),
        "backup_form": CodeForm(auto_id="backup_%s"),
        **forms,
    }
    return render(request, "security/account.html", context, status=400)


@membership_required("logins:unlock")
def login_lockouts(request: HttpRequest) -> HttpResponse:
    """Operators: people locked out of signing in after wrong passwords, and lifting it."""
    return render(
        request,
        "security/login_lockouts.html",
        {
            "attempts": selectors.login_lockouts(membership=request.membership),
            "failure_limit": settings.AXES_FAILURE_LIMIT,
        },
    )


@require_POST
@membership_required("logins:unlock")
def login_lockout_lift(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.login_lockout_lift(actor=actor_from_request(request), attempt_id=pk)
    except NotFound as exc:
        raise Http404 from exc
    messages.success(request, _("Le blocage est levé : la personne peut se reconnecter."))
    return redirect("login_lockouts")
