"""Log-in throttling glue for django-axes: the client IP and the French lock-out answer."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import ngettext

from orgs.audit import client_ip
from orgs.forms import EmailAuthenticationForm

# Too Many Requests: the form is shown again, with the reason, but no password is checked.
LOCKED_OUT_STATUS = 429


def request_ip(request: HttpRequest) -> str:
    """The IP that lock-outs count against: the same rule as the audit log's."""
    return client_ip(request) or ""


def lockout_message() -> str:
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    return ngettext(
        "Trop de tentatives de connexion échouées : ce compte est bloqué depuis cet appareil "
        "pendant %(minutes)d minute. Réessayez plus tard ou réinitialisez votre mot de passe.",
        "Trop de tentatives de connexion échouées : ce compte est bloqué depuis cet appareil "
        "pendant %(minutes)d minutes. Réessayez plus tard ou réinitialisez votre mot de passe.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The log-in page again, with the lock-out as the form's error (axes' lock-out hook)."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"code": "locked_out", "detail": lockout_message()}, status=LOCKED_OUT_STATUS
        )
    # An unbound form: validating it again would count one more failure.
    initial = {"username": (credentials or {}).get("username", "")}
    form = EmailAuthenticationForm(request, initial=initial)
    return render(
        request,
        "registration/login.html",
        {"form": form, "lockout_error": lockout_message(), "next": request.POST.get("next", "")},
        status=LOCKED_OUT_STATUS,
    )
