"""Settlement pages: the operator's batches (compute, approve, export, pay) and the provider's
payouts with their statements. Thin: parse, call one settlement service, render."""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Max, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from aptic import exports
from aptic.errors import DomainError, form_add_error
from orgs.audit import actor_from_request
from orgs.authentication import ApiTokenAuthentication
from orgs.decorators import membership_required
from orgs.models import Membership
from orgs.permissions import membership_has_permission

from .exports import BATCH_COLUMNS, PAYOUT_COLUMNS, batch_payout_columns
from .forms_settlement import BatchCreateForm, BatchExportForm, BatchPaidForm, PayoutRejectForm
from .models import BatchStatus, HeldProvider, Payout, PayoutStatus, SettlementBatch
from .services import settlement as settlement_services

PAGE_SIZE = 24

# Why a provider was left out of a batch (``HeldProvider.reason``), as the screens say it.
HELD_REASONS = {
    "bank_unverified": gettext_lazy("Coordonnées bancaires à vérifier"),
    "not_accredited": gettext_lazy("Qualification non valide"),
}


def held_reason_label(reason: str) -> str:
    return str(HELD_REASONS.get(reason, reason))


def iban_masked(iban: str) -> str:
    """Only the last four characters: enough to recognise an account, not to reuse it."""
    compact = "".join(iban.split())
    return f"•••• {compact[-4:]}" if compact else "—"


# --- Reads -------------------------------------------------------------------------------
# Batches span every provider: only operators (``settlement:view``) reach them, so the
# permission key is their tenancy. Payouts and holds are read through the provider's reach.


def _batch_get(*, pk: int) -> SettlementBatch:
    return get_object_or_404(
        SettlementBatch.objects.select_related("created_by", "approved_by"), pk=pk
    )


def payouts_of(*, membership: Membership) -> QuerySet[Payout]:
    """Payouts the membership may see, once their batch is computed (newest batch first)."""
    return (
        Payout.objects.visible_to(membership)
        .exclude(batch__status=BatchStatus.COMPUTING)
        .select_related("batch", "provider")
        .order_by("-batch__period_end", "provider__name", "pk")
    )


def _payout_get(*, membership: Membership, pk: int) -> Payout:
    return get_object_or_404(payouts_of(membership=membership), pk=pk)


# --- Operator: batches -------------------------------------------------------------------


@membership_required("settlement:view")
def batch_list(request: HttpRequest) -> HttpResponse:
    can_compute = membership_has_permission(request.membership, "settlement:compute")
    form = BatchCreateForm(request.POST or None)
    if request.method == "POST":
        if not can_compute:
            raise PermissionDenied
        if form.is_valid():
            try:
                batch = settlement_services.batch_create(
                    actor=actor_from_request(request), period_end=form.cleaned_data["period_end"]
                )
            except DomainError as exc:
                form_add_error(form, exc)
            else:
                messages.success(
                    request,
                    _("Lot %(ref)s créé : le calcul des remboursements est lancé.")
                    % {"ref": batch.reference},
                )
                return redirect("settlement:batch_detail", pk=batch.pk)
    batches = SettlementBatch.objects.select_related("created_by", "approved_by").order_by(
        "-period_end"
    )
    if request.method != "POST" and (fmt := exports.requested_format(request)):
        return exports.export_response(
            request,
            rows=batches,
            columns=BATCH_COLUMNS,
            filename="lots-de-remboursement",
            fmt=fmt,
            title=_("Lots"),
        )
    page = Paginator(batches, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "redemption/settlement/batch_list.html",
        {"page": page, "batches": page.object_list, "form": form, "can_compute": can_compute},
    )


def _timeline(batch: SettlementBatch) -> list[tuple[str, str, object, str]]:
    """(label, done|current|todo, when, who or detail) for each step of the batch."""
    created_by = batch.created_by.get_full_name() if batch.created_by else _("calcul mensuel")
    approved_by = batch.approved_by.get_full_name() if batch.approved_by else ""
    steps = [
        (_("Créé"), batch.created_at, created_by),
        (_("Calculé"), batch.computed_at, ""),
        (_("Approuvé"), batch.approved_at, approved_by),
        (_("Virement exporté"), batch.exported_at, ""),
        (_("Payé"), batch.paid_at, ""),
    ]
    if batch.status == BatchStatus.EXPORTED and batch.execution_date:
        steps[3] = (
            steps[3][0],
            steps[3][1],
            _("exécution le %(date)s") % {"date": batch.execution_date.strftime("%d/%m/%Y")},
        )
    if batch.status == BatchStatus.PAID and batch.paid_on:
        steps[4] = (
            steps[4][0],
            steps[4][1],
            _("reçu le %(date)s") % {"date": batch.paid_on.strftime("%d/%m/%Y")},
        )
    last_done = max((i for i, step in enumerate(steps) if step[1]), default=-1)
    return [
        (label, "done" if i < last_done else "current" if i == last_done else "todo", when, note)
        for i, (label, when, note) in enumerate(steps)
    ]


def _providers_done(batch: SettlementBatch) -> int:
    """Providers the computation has settled so far (paid or held)."""
    return batch.payouts.count() + batch.held.count()


def _detail_context(
    request: HttpRequest,
    batch: SettlementBatch,
    *,
    export_form: BatchExportForm | None = None,
    paid_form: BatchPaidForm | None = None,
    reject_form: PayoutRejectForm | None = None,
    reject_payout_id: int | None = None,
) -> dict:
    membership = request.membership
    may_approve = membership_has_permission(membership, "settlement:approve")
    is_creator = batch.created_by_id is not None and batch.created_by_id == request.user.pk
    transferred = batch.status in (BatchStatus.EXPORTED, BatchStatus.PAID)
    payouts = []
    for payout in batch.payouts.select_related("provider").order_by("provider__name", "pk"):
        if payout.pk == reject_payout_id and reject_form is not None:
            form = reject_form
        else:
            form = PayoutRejectForm(prefix=f"payout-{payout.pk}")
        payouts.append((payout, iban_masked(payout.iban), form))
    held = [
        (hold, held_reason_label(hold.reason))
        for hold in batch.held.select_related("provider").order_by("provider__name")
    ]
    return {
        "batch": batch,
        "timeline": _timeline(batch),
        "payouts": payouts,
        "held": held,
        "held_cents": sum(hold.amount_cents for hold, _label in held),
        "held_redemptions": sum(hold.redemption_count for hold, _label in held),
        "is_creator": is_creator,
        "may_approve": may_approve,
        "can_approve": batch.status == BatchStatus.PENDING_APPROVAL
        and may_approve
        and not is_creator,
        "can_export": batch.status == BatchStatus.APPROVED and may_approve,
        "can_mark_paid": batch.status == BatchStatus.EXPORTED and may_approve,
        "can_download_sepa": transferred and may_approve and bool(batch.sepa_file),
        "can_reject": transferred and may_approve,
        "export_form": export_form or BatchExportForm(),
        "paid_form": paid_form or BatchPaidForm(),
        "reject_payout_id": reject_payout_id,
        "done": _providers_done(batch) if batch.status == BatchStatus.COMPUTING else 0,
    }


@membership_required("settlement:view")
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_get(pk=pk)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=batch.payouts.select_related("provider").order_by("provider__name", "pk"),
            columns=batch_payout_columns(iban=iban_masked),
            filename=f"virements-{batch.reference}",
            fmt=fmt,
            title=_("Virements"),
        )
    return render(
        request, "redemption/settlement/batch_detail.html", _detail_context(request, batch)
    )


@membership_required("settlement:view")
def batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The computation's progress (htmx polls it); once computed, the whole page reloads."""
    batch = _batch_get(pk=pk)
    if batch.status != BatchStatus.COMPUTING and request.headers.get("HX-Request"):
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render(
        request,
        "redemption/settlement/_batch_progress.html",
        {"batch": batch, "done": _providers_done(batch)},
    )


def _act(request: HttpRequest, batch: SettlementBatch, service, success: str, **kwargs):
    try:
        service(actor=actor_from_request(request), batch=batch, **kwargs)
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, success % {"ref": batch.reference})
    return redirect("settlement:batch_detail", pk=batch.pk)


@require_POST
@membership_required("settlement:approve")
def batch_approve(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_get(pk=pk)
    return _act(
        request,
        batch,
        settlement_services.batch_approve,
        _("Lot %(ref)s approuvé : vous pouvez exporter le virement SEPA."),
    )


@require_POST
@membership_required("settlement:approve")
def batch_export(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_get(pk=pk)
    form = BatchExportForm(request.POST)
    if form.is_valid():
        try:
            settlement_services.batch_export(
                actor=actor_from_request(request),
                batch=batch,
                execution_date=form.cleaned_data["execution_date"],
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(
                request,
                _("Virement SEPA du lot %(ref)s exporté : téléchargez le fichier pour la banque.")
                % {"ref": batch.reference},
            )
            return redirect("settlement:batch_detail", pk=batch.pk)
    batch.refresh_from_db()
    return render(
        request,
        "redemption/settlement/batch_detail.html",
        _detail_context(request, batch, export_form=form),
    )


@require_POST
@membership_required("settlement:approve")
def batch_mark_paid(request: HttpRequest, pk: int) -> HttpResponse:
    batch = _batch_get(pk=pk)
    form = BatchPaidForm(request.POST)
    if form.is_valid():
        try:
            settlement_services.batch_mark_paid(
                actor=actor_from_request(request), batch=batch, paid_on=form.cleaned_data["paid_on"]
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(request, _("Lot %(ref)s marqué payé.") % {"ref": batch.reference})
            return redirect("settlement:batch_detail", pk=batch.pk)
    batch.refresh_from_db()
    return render(
        request,
        "redemption/settlement/batch_detail.html",
        _detail_context(request, batch, paid_form=form),
    )


@membership_required("settlement:approve")
def batch_sepa(request: HttpRequest, pk: int) -> HttpResponse:
    """The SEPA credit-transfer file (full IBANs): operator admins, once exported."""
    batch = _batch_get(pk=pk)
    if batch.status not in (BatchStatus.EXPORTED, BatchStatus.PAID) or not batch.sepa_file:
        raise Http404
    return _file_response(batch.sepa_file, f"{batch.reference}.xml", "application/xml")


@require_POST
@membership_required("settlement:approve")
def payout_reject(request: HttpRequest, pk: int) -> HttpResponse:
    payout = _payout_get(membership=request.membership, pk=pk)
    batch = _batch_get(pk=payout.batch_id)
    form = PayoutRejectForm(request.POST, prefix=f"payout-{payout.pk}")
    if form.is_valid():
        try:
            settlement_services.payout_reject(
                actor=actor_from_request(request), payout=payout, reason=form.cleaned_data["reason"]
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(
                request,
                _(
                    "Virement à %(provider)s marqué rejeté : ses encaissements reviendront dans "
                    "le prochain lot, une fois ses coordonnées bancaires vérifiées."
                )
                % {"provider": payout.provider.name},
            )
            return redirect("settlement:batch_detail", pk=batch.pk)
    return render(
        request,
        "redemption/settlement/batch_detail.html",
        _detail_context(request, batch, reject_form=form, reject_payout_id=payout.pk),
    )


# --- Provider: payouts and statements ----------------------------------------------------


@membership_required("payouts:view")
def payout_list(request: HttpRequest) -> HttpResponse:
    organisation = request.membership.organisation
    if not organisation.is_provider:
        # Operators follow payouts batch by batch.
        return redirect("settlement:batch_list")
    payouts = payouts_of(membership=request.membership).filter(provider=organisation)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=payouts,
            columns=PAYOUT_COLUMNS,
            filename="remboursements",
            fmt=fmt,
            title=_("Remboursements"),
        )
    current = [p for p in payouts if p.status != PayoutStatus.PAID]
    paid = payouts.filter(status=PayoutStatus.PAID)
    page = Paginator(paid, PAGE_SIZE).get_page(request.GET.get("page"))
    # A hold matters until a later batch pays the provider again.
    last_paid = payouts.exclude(status=PayoutStatus.REJECTED).aggregate(
        end=Max("batch__period_end")
    )["end"]
    holds = (
        HeldProvider.objects.filter(provider=organisation)
        .exclude(batch__status=BatchStatus.COMPUTING)
        .select_related("batch")
        .order_by("-batch__period_end")
    )
    if last_paid is not None:
        holds = holds.filter(batch__period_end__gt=last_paid)
    return render(
        request,
        "redemption/settlement/payout_list.html",
        {
            "current": current,
            "page": page,
            "paid": page.object_list,
            "holds": [(hold, held_reason_label(hold.reason)) for hold in holds],
        },
    )


def _file_response(field, filename: str, content_type: str) -> FileResponse:
    try:
        handle = field.open("rb")
    except (FileNotFoundError, ValidationError) as exc:
        raise Http404 from exc
    return FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)


def _statement(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    payout = _payout_get(membership=request.membership, pk=pk)
    field = payout.statement_pdf if kind == "pdf" else payout.statement_csv
    if payout.statement_ready_at is None or not field:
        messages.info(
            request,
            _("Le relevé du lot %(ref)s est en préparation : réessayez dans quelques minutes.")
            % {"ref": payout.batch.reference},
        )
        if request.membership.organisation.is_operator:
            return redirect("settlement:batch_detail", pk=payout.batch_id)
        return redirect("settlement:payout_list")
    filename = f"releve-{payout.batch.reference}-{payout.provider.slug}.{kind}"
    content_type = "application/pdf" if kind == "pdf" else "text/csv; charset=utf-8"
    return _file_response(field, filename, content_type)


def api_token_accepted(view):
    """Also let an ``Authorization: Token`` caller in: the payouts API links to these files.

    The token decides the membership, as in the API; without the header the session does.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.headers.get("Authorization", "").lower().startswith("token "):
            try:
                user, _token = ApiTokenAuthentication().authenticate(Request(request))
            except AuthenticationFailed as exc:
                return JsonResponse(
                    {"code": "authentication_failed", "detail": str(exc.detail)}, status=401
                )
            request.user = user  # authenticate() set request.membership from the token
        return view(request, *args, **kwargs)

    return wrapped


@api_token_accepted
@membership_required("payouts:view")
def statement_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    return _statement(request, pk, "pdf")


@api_token_accepted
@membership_required("payouts:view")
def statement_csv(request: HttpRequest, pk: int) -> HttpResponse:
    return _statement(request, pk, "csv")
