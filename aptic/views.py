"""Pages owned by the composition root: the home page per role and the error pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from vouchers.selectors.stock import expiry_warnings


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if request.membership is None:
        return render(request, "orgs/no_membership.html", status=403)
    return render(
        request,
        "home.html",
        {"expiry_warnings": expiry_warnings(membership=request.membership)},
    )


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"code": "not_found", "detail": _("Introuvable.")}, status=404)
    return render(request, "404.html", status=404)


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"code": "permission_denied", "detail": _("Accès refusé.")}, status=403)
    return render(request, "403.html", status=403)


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"code": "bad_request", "detail": _("Requête invalide.")}, status=400)
    return render(request, "400.html", status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    # Render without context processors: the error may come from them.
    if _is_api(request):
        return JsonResponse(
            {"code": "server_error", "detail": _("Erreur interne. L'incident est enregistré.")},
            status=500,
        )
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
