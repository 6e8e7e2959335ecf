"""Web pages of the vouchers app: programmes, the catalogue, orders and their approval."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from aptic import exports
from aptic.errors import DomainError, form_add_error
from orgs.audit import actor_from_request
from orgs.decorators import membership_required
from orgs.permissions import membership_has_permission

from .. import selectors
from ..exports import PROGRAMME_COLUMNS, order_columns
from ..forms import (
    ApproveOrderForm,
    OrderForm,
    ProgrammeForm,
    RejectOrderForm,
    ServiceCategoryForm,
)
from ..models import ORDER_TRANSITIONS, OrderStatus
from ..services import orders as order_services
from ..services import programmes as programme_services

# --- Programmes and catalogue (operator) ------------------------------------------------


@membership_required("orders:view")
def programme_list(request: HttpRequest) -> HttpResponse:
    programmes = selectors.programme_list(membership=request.membership)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=programmes,
            columns=PROGRAMME_COLUMNS,
            filename="programmes",
            fmt=fmt,
            title=_("Programmes"),
        )
    return render(request, "vouchers/programme_list.html", {"programmes": programmes})


def _programme_form(request, programme=None):
    initial = ProgrammeForm.initial_from(programme) if programme else None
    return ProgrammeForm(
        request.POST or None,
        initial=initial,
        funders=selectors.funder_choices(),
        categories=selectors.service_category_list(),
    )


@membership_required("programmes:manage")
def programme_create(request: HttpRequest) -> HttpResponse:
    form = _programme_form(request)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            programme = programme_services.programme_create(
                actor=actor_from_request(request),
                funder=data.pop("funder"),
                categories=data.pop("categories"),
                **data,
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, _("Programme « %(name)s » créé.") % {"name": programme})
            return redirect("vouchers:programme_list")
    return render(request, "vouchers/programme_form.html", {"form": form, "programme": None})


@membership_required("programmes:manage")
def programme_edit(request: HttpRequest, pk: int) -> HttpResponse:
    programme = selectors.programme_get(membership=request.membership, pk=pk)
    form = _programme_form(request, programme)
    form.fields["funder"].disabled = True
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        data.pop("funder")
        try:
            programme_services.programme_update(
                actor=actor_from_request(request),
                programme=programme,
                categories=data.pop("categories"),
                **data,
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, _("Programme enregistré."))
            return redirect("vouchers:programme_list")
    return render(request, "vouchers/programme_form.html", {"form": form, "programme": programme})


@membership_required("programmes:manage")
def service_list(request: HttpRequest) -> HttpResponse:
    form = ServiceCategoryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            programme_services.service_category_save(
                actor=actor_from_request(request), **form.cleaned_data
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, _("Service ajouté au catalogue."))
            return redirect("vouchers:service_list")
    return render(
        request,
        "vouchers/service_list.html",
        {"form": form, "services": selectors.service_category_list()},
    )


@membership_required("programmes:manage")
def service_edit(request: HttpRequest, pk: int) -> HttpResponse:
    category = selectors.service_category_get(pk=pk)
    form = ServiceCategoryForm(
        request.POST or None,
        initial={
            "name": category.name,
            "description": category.description,
            "is_active": category.is_active,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            programme_services.service_category_save(
                actor=actor_from_request(request), category=category, **form.cleaned_data
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, _("Service enregistré."))
            return redirect("vouchers:service_list")
    return render(request, "vouchers/service_form.html", {"form": form, "category": category})


# --- Orders (funder) ---------------------------------------------------------------------


@membership_required("orders:view")
def order_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("etat", "")
    if status not in OrderStatus.values:
        status = ""
    orders = selectors.order_list(membership=request.membership, status=status)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=orders,
            columns=order_columns(with_funder=request.membership.organisation.is_operator),
            filename="commandes",
            fmt=fmt,
            title=_("Commandes"),
        )
    return render(
        request,
        "vouchers/order_list.html",
        {
            "orders": orders,
            "status": status,
            "statuses": OrderStatus.choices,
        },
    )


def _order_form(request):
    return OrderForm(
        request.POST or None,
        request.FILES or None,
        programmes=selectors.programmes_orderable(membership=request.membership),
    )


@membership_required("orders:create")
def order_create(request: HttpRequest) -> HttpResponse:
    form = _order_form(request)
    if request.method == "POST" and form.is_valid():
        try:
            order = order_services.order_create(
                actor=actor_from_request(request),
                programme=form.cleaned_data["programme"],
                lines=form.lines(),
                purchase_order_number=form.cleaned_data["purchase_order_number"],
                print_text=form.cleaned_data["print_text"],
                logo=form.cleaned_data.get("logo"),
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(
                request,
                _("Commande %(ref)s enregistrée : vérifiez-la puis envoyez-la.")
                % {"ref": order.reference},
            )
            return redirect("vouchers:order_detail", pk=order.pk)
    return render(request, "vouchers/order_form.html", {"form": form})


@membership_required("orders:create")
def order_quote(request: HttpRequest) -> HttpResponse:
    """The live total shown beside the order form (htmx partial)."""
    form = _order_form(request)
    quote = error = None
    if form.is_valid():
        try:
            programme = form.cleaned_data["programme"]
            lines = order_services.clean_lines(programme=programme, lines=form.lines())
            quote = order_services.order_quote(programme=programme, lines=lines)
        except DomainError as exc:
            error = exc.message
    else:
        error = _("Vérifiez les quantités.")
    programme = form.cleaned_data.get("programme") if hasattr(form, "cleaned_data") else None
    return render(
        request,
        "vouchers/_order_quote.html",
        {"quote": quote, "error": error, "programme": programme},
    )


def _timeline(order) -> list[tuple[str, str, object]]:
    """(label, state, date) for each step of the order's life: done, current or todo."""
    steps = [
        (_("Créée"), order.created_at),
        (_("Envoyée"), order.submitted_at),
        (_("Validée"), order.approved_at),
        (_("Chéquiers émis"), order.issued_at),
        (_("Prête à imprimer"), order.printed_at),
    ]
    if order.status == OrderStatus.CANCELLED:
        steps = [s for s in steps if s[1]] + [(_("Annulée"), order.cancelled_at)]
    elif order.status == OrderStatus.REJECTED:
        steps = [s for s in steps if s[1]] + [(_("Refusée"), order.rejected_at)]
    last_done = max((i for i, (_label, when) in enumerate(steps) if when), default=-1)
    return [
        (label, "done" if i < last_done else "current" if i == last_done else "todo", when)
        for i, (label, when) in enumerate(steps)
    ]


def _order_page(
    request: HttpRequest,
    order,
    *,
    approve_form: ApproveOrderForm | None = None,
    reject_form: RejectOrderForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The order page; a refused approval or rejection shows its bound form with its errors."""
    membership = request.membership
    is_funder = order.funder_id == membership.organisation_id
    context = {
        "order": order,
        "lines": [
            (line, value, value * line.quantity)
            for line in order.lines.all()
            for value in [line.booklet_size * order.programme.cheque_value_cents]
        ],
        "timeline": _timeline(order),
        "run": getattr(order, "print_run", None),
        "can_submit": is_funder
        and order.status == OrderStatus.DRAFT
        and membership_has_permission(membership, "orders:submit"),
        "can_cancel": is_funder
        and OrderStatus.CANCELLED in ORDER_TRANSITIONS[order.status]
        and membership_has_permission(membership, "orders:cancel"),
        "can_approve": order.status == OrderStatus.SUBMITTED
        and membership_has_permission(membership, "orders:approve"),
        "approve_form": approve_form or ApproveOrderForm(),
        "reject_form": reject_form or RejectOrderForm(),
    }
    return render(request, "vouchers/order_detail.html", context, status=status)


@membership_required("orders:view")
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = selectors.order_get(membership=request.membership, pk=pk)
    return _order_page(request, order)


@membership_required("orders:view")
def order_print_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The print progress bar (htmx polls it until the files are ready)."""
    order = selectors.order_get(membership=request.membership, pk=pk)
    run = getattr(order, "print_run", None)
    response = render(request, "vouchers/_print_progress.html", {"order": order, "run": run})
    if request.htmx and run is not None and run.status == "done":
        # The order's status badge and timeline changed too: reload the page once.
        response["HX-Refresh"] = "true"
    return response


def _act(request, pk: int, service, success: str, **kwargs) -> HttpResponse:
    order = selectors.order_get(membership=request.membership, pk=pk)
    try:
        service(actor=actor_from_request(request), order=order, **kwargs)
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, success % {"ref": order.reference})
    return redirect("vouchers:order_detail", pk=order.pk)


@require_POST
@membership_required("orders:submit")
def order_submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        order_services.order_submit,
        _("Commande %(ref)s envoyée à Médias-Cité pour validation."),
    )


@require_POST
@membership_required("orders:cancel")
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, order_services.order_cancel, _("Commande %(ref)s annulée."))


@membership_required("orders:approve")
def order_queue(request: HttpRequest) -> HttpResponse:
    orders = selectors.order_approval_queue(membership=request.membership)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=orders,
            columns=order_columns(with_funder=True),
            filename="commandes-a-valider",
            fmt=fmt,
            title=_("Commandes à valider"),
        )
    return render(request, "vouchers/order_queue.html", {"orders": orders})


def _decide(
    request: HttpRequest, pk: int, form, form_name: str, service, success: str
) -> HttpResponse:
    """Run an approval decision; a refusal re-renders the page with the form's field errors.

    A refusal that names no field of the form (the order changed state meanwhile, the programme
    ended) is told in a message on the order page instead: the form may no longer be shown.
    """
    order = selectors.order_get(membership=request.membership, pk=pk)
    if form.is_valid():
        try:
            service(actor=actor_from_request(request), order=order, **form.cleaned_data)
        except DomainError as exc:
            if getattr(exc, "field", None) not in form.fields:
                messages.error(request, str(exc.message))
                return redirect("vouchers:order_detail", pk=order.pk)
            form_add_error(form, exc)
        else:
            messages.success(request, success % {"ref": order.reference})
            return redirect("vouchers:order_detail", pk=order.pk)
    return _order_page(request, order, **{form_name: form}, status=400)


@require_POST
@membership_required("orders:approve")
def order_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(
        request,
        pk,
        ApproveOrderForm(request.POST),
        "approve_form",
        order_services.order_approve,
        _("Commande %(ref)s validée : les chéquiers sont émis puis mis en page."),
    )


@require_POST
@membership_required("orders:approve")
def order_reject(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(
        request,
        pk,
        RejectOrderForm(request.POST),
        "reject_form",
        order_services.order_reject,
        _("Commande %(ref)s refusée."),
    )


@membership_required("orders:download")
def order_proforma(request: HttpRequest, pk: int) -> HttpResponse:
    from ..printing.proforma import render_proforma

    order = selectors.order_get(membership=request.membership, pk=pk)
    response = HttpResponse(render_proforma(order), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="proforma-{order.reference}.pdf"'
    return response


@membership_required("orders:download")
def order_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The print-ready file, only through this permission-checked view."""
    order = selectors.order_get(membership=request.membership, pk=pk)
    run = getattr(order, "print_run", None)
    if run is None or not run.file:
        raise Http404
    name = run.file.name.rsplit("/", 1)[-1]
    try:
        handle = run.file.open("rb")
    except (FileNotFoundError, ValidationError) as exc:
        raise Http404 from exc
    return FileResponse(handle, as_attachment=True, filename=name)
