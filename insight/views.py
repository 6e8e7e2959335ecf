"""Dashboards with charts, one per organisation role; thin: parse the filters, read, render."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from orgs.decorators import membership_required
from orgs.permissions import membership_has_permission

from . import selectors
from .forms import DashboardFilterForm
from .services import insight_refresh_if_stale

ROLES = ("operator", "funder", "distributor", "provider")


def _tabs(request: HttpRequest, current: str) -> list[dict]:
    labels = {
        "operator": _("Opérateur"),
        "funder": _("Commanditaire"),
        "distributor": _("Structure relais"),
        "provider": _("Lieu qualifié"),
    }
    return [
        {"role": role, "label": labels[role], "url": f"insight:{role}", "current": role == current}
        for role in ROLES
        if membership_has_permission(request.membership, f"dashboards:{role}")
    ]


def _render(
    request: HttpRequest, role: str, form: DashboardFilterForm, build, *, title: str, lead: str
) -> HttpResponse:
    context = {
        "form": form,
        "role": role,
        "tabs": _tabs(request, role),
        "title": title,
        "lead": lead,
        "filtered": bool(request.GET),
    }
    if not form.is_valid():
        return render(request, "insight/dashboard.html", context, status=400)
    context.update(build(form.cleaned_data))
    return render(request, "insight/dashboard.html", context)


@require_safe
@membership_required()
def dashboard(request: HttpRequest) -> HttpResponse:
    """The first dashboard of the organisation's roles."""
    for role in ROLES:
        if membership_has_permission(request.membership, f"dashboards:{role}"):
            return redirect(f"insight:{role}")
    return render(request, "403.html", status=403)


def _funding(request: HttpRequest, role: str, *, title: str, lead: str) -> HttpResponse:
    membership = request.membership
    form = DashboardFilterForm(
        request.GET or {},
        programmes=selectors.dashboard_programmes(membership=membership, role=role),
        funders=selectors.dashboard_funders(membership=membership) if role == "operator" else None,
    )
    snapshot = selectors.snapshot_get()
    if insight_refresh_if_stale(snapshot=snapshot):
        snapshot = selectors.snapshot_get()  # without a worker, the rebuild has just run

    def build(data: dict) -> dict:
        dashboard = selectors.funding_dashboard(
            membership=membership,
            role=role,
            period=data["period"],
            programme=data.get("programme"),
            funder=data.get("commanditaire"),
        )
        sections = [{"title": _("Chèques et encaissements"), "dashboard": dashboard}]
        if role == "operator":
            sections.append(
                {
                    "title": _("Qualification et fraude"),
                    "dashboard": selectors.operator_dashboard_extras(
                        membership=membership, period=data["period"]
                    ),
                }
            )
        return {"sections": sections, "period": data["period"], "snapshot": snapshot}

    return _render(request, role, form, build, title=title, lead=lead)


@require_safe
@membership_required("dashboards:funder")
def funder_dashboard(request: HttpRequest) -> HttpResponse:
    return _funding(
        request,
        "funder",
        title=_("Tableau de bord du commanditaire"),
        lead=_("Vos chèques émis, remis, encaissés et expirés, et qui en a profité."),
    )


@require_safe
@membership_required("dashboards:operator")
def operator_dashboard(request: HttpRequest) -> HttpResponse:
    return _funding(
        request,
        "operator",
        title=_("Tableau de bord de l'opérateur"),
        lead=_("Tous les commanditaires, les qualifications et les signaux de fraude."),
    )


def _own(request: HttpRequest, role: str, read, *, title: str, lead: str) -> HttpResponse:
    membership = request.membership
    programmes = selectors.dashboard_programmes(membership=membership, role=role)
    form = DashboardFilterForm(request.GET or {}, programmes=programmes)

    def build(data: dict) -> dict:
        dashboard = read(
            membership=membership, period=data["period"], programme=data.get("programme")
        )
        return {"sections": [{"title": "", "dashboard": dashboard}], "period": data["period"]}

    return _render(request, role, form, build, title=title, lead=lead)


@require_safe
@membership_required("dashboards:distributor")
def distributor_dashboard(request: HttpRequest) -> HttpResponse:
    return _own(
        request,
        "distributor",
        selectors.distributor_dashboard,
        title=_("Tableau de bord de la structure relais"),
        lead=_("Votre stock de chéquiers et les remises de vos agents."),
    )


@require_safe
@membership_required("dashboards:provider")
def provider_dashboard(request: HttpRequest) -> HttpResponse:
    return _own(
        request,
        "provider",
        selectors.provider_dashboard,
        title=_("Tableau de bord du lieu qualifié"),
        lead=_("Vos encaissements par mois et par service, et vos remboursements."),
    )
