"""Accreditation pages: the provider's application step by step, and the operator's review.

Thin: parse a form, call one service or selector, render. Provider pages act on the caller's own
application; operator pages fetch through ``visible_to`` (404 outside reach).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from aptic import exports
from aptic.errors import DomainError, form_add_error
from aptic.listing import query_without_page

from . import selectors_accreditation as selectors
from . import services_accreditation as services
from .audit import actor_from_request
from .decorators import membership_required
from .exports import ACCREDITATION_COLUMNS
from .forms_accreditation import (
    LEGAL_FORMS,
    STEP_FORMS,
    ApproveForm,
    BankForm,
    BankVerifyForm,
    CommentForm,
    DocumentForm,
    QueueFilterForm,
    ReinstateForm,
    RejectForm,
    RenewForm,
    SiteForm,
    SuspendForm,
)
from .models import Accreditation, AccreditationStatus, BankStatus
from .permissions import membership_has_permission

# The URL of each step, under /qualification/ (French words people can read and share).
STEP_SLUGS = {
    "applicant": "vous",
    "organisation": "structure",
    "representative": "representant",
    "sites": "lieux",
    "documents": "documents",
    "bank": "banque",
    "charter": "charte",
}
# After approval the provider can still change its bank details (they go back to unverified).
AFTER_APPROVAL = (
    AccreditationStatus.APPROVED,
    AccreditationStatus.SUSPENDED,
    AccreditationStatus.EXPIRED,
)


def step_url(step: str) -> str:
    if step == "sites":
        return reverse("accreditation_sites")
    if step == "documents":
        return reverse("accreditation_documents")
    return reverse("accreditation_step", kwargs={"step": step})


@dataclass(frozen=True)
class StepLink:
    key: str
    number: int
    label: str
    done: bool
    missing: list[str]
    url: str
    current: bool


def _step_links(accreditation: Accreditation, current: str = "") -> list[StepLink]:
    return [
        StepLink(
            key=step.key,
            number=number,
            label=step.label,
            done=step.done,
            missing=step.missing,
            url=step_url(step.key),
            current=step.key == current,
        )
        for number, step in enumerate(selectors.accreditation_steps(accreditation), start=1)
    ]


def _timeline(accreditation: Accreditation) -> list[tuple[str, str, datetime | None]]:
    """(label, done / current / todo, date) for each stage of the application's life."""
    a, status = accreditation, accreditation.status
    first = (_("Demande en préparation"), a.created_at)
    if status == AccreditationStatus.CHANGES_REQUESTED:
        first = (_("Compléments à apporter"), a.reviewed_at)
    final = {
        AccreditationStatus.APPROVED: _("Qualifié"),
        AccreditationStatus.REJECTED: _("Refusée"),
        AccreditationStatus.SUSPENDED: _("Suspendue"),
        AccreditationStatus.EXPIRED: _("Qualification expirée"),
    }.get(status, _("Décision de Médias-Cité"))
    decided = status in (AccreditationStatus.REJECTED, *AFTER_APPROVAL)
    stages = [
        first,
        (_("Envoyée à Médias-Cité"), a.submitted_at),
        (_("En cours d'examen"), None),
        (final, a.reviewed_at if decided else None),
    ]
    current = {
        AccreditationStatus.DRAFT: 0,
        AccreditationStatus.CHANGES_REQUESTED: 0,
        AccreditationStatus.SUBMITTED: 1,
        AccreditationStatus.IN_REVIEW: 2,
    }.get(status, 3)
    return [
        (
            label,
            "done"
            if i < current or (i == current and status == AccreditationStatus.APPROVED)
            else "current"
            if i == current
            else "todo",
            when,
        )
        for i, (label, when) in enumerate(stages)
    ]


def _form_errors(form, exc: DomainError) -> None:
    """Show a service's refusal on the form, on every field it names."""
    errors = exc.extra.get("errors") if isinstance(exc.extra, dict) else None
    if not errors:
        form_add_error(form, exc)
        return
    for field, error in errors.items():
        form.add_error(field if field in form.fields else None, error["detail"])


def _formatted_iban(iban: str) -> str:
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def _summary_context(accreditation: Accreditation) -> dict:
    return {
        "accreditation": accreditation,
        "sites": selectors.accreditation_sites(accreditation=accreditation),
        "documents": selectors.accreditation_documents(accreditation=accreditation),
        "iban_display": _formatted_iban(accreditation.iban),
        "timeline": _timeline(accreditation),
    }


# --- The provider's application ------------------------------------------------------------


def _own_accreditation(request: HttpRequest) -> Accreditation | None:
    return selectors.accreditation_of_organisation(membership=request.membership)


@membership_required("accreditation:apply")
def accreditation_overview(request: HttpRequest) -> HttpResponse:
    accreditation = _own_accreditation(request)
    if accreditation is None:
        return render(request, "orgs/accreditation/start.html")
    steps = _step_links(accreditation)
    context = {
        **_summary_context(accreditation),
        "steps": steps,
        "missing": [message for step in steps for message in step.missing],
        "can_edit": not accreditation.is_locked,
        "after_approval": accreditation.status in AFTER_APPROVAL,
    }
    if context["after_approval"]:
        context["bank_form"] = BankForm(initial=_step_initial(accreditation, "bank"))
    return render(request, "orgs/accreditation/overview.html", context)


@require_POST
@membership_required("accreditation:apply")
def accreditation_start(request: HttpRequest) -> HttpResponse:
    services.accreditation_get_or_start(actor=actor_from_request(request))
    return redirect(step_url("applicant"))


def _step_initial(accreditation: Accreditation, step: str) -> dict:
    if step == "charter":
        return {
            "charter": bool(accreditation.charter_accepted_at),
            "terms": bool(accreditation.terms_accepted_at),
        }
    if step == "bank":
        return {
            "iban": _formatted_iban(accreditation.iban),
            "bic": accreditation.bic,
            "account_holder": accreditation.account_holder or accreditation.legal_name,
        }
    return {field: getattr(accreditation, field) for field in STEP_FORMS[step].base_fields}


def _next_step(step: str) -> str:
    order = list(selectors.STEPS)
    index = order.index(step)
    return order[index + 1] if index + 1 < len(order) else ""


@membership_required("accreditation:apply")
def accreditation_step(request: HttpRequest, step: str) -> HttpResponse:
    """One step of the application; saving it goes on to the next step."""
    if step not in STEP_FORMS:
        raise Http404
    accreditation = _own_accreditation(request)
    if accreditation is None:
        return redirect("accreditation_overview")
    bank_after_approval = step == "bank" and accreditation.status in AFTER_APPROVAL
    if accreditation.is_locked and not bank_after_approval:
        messages.info(request, _("Votre demande a été envoyée : elle n'est plus modifiable."))
        return redirect("accreditation_overview")
    form = STEP_FORMS[step](request.POST or None, initial=_step_initial(accreditation, step))
    if request.method == "POST" and form.is_valid():
        actor = actor_from_request(request)
        try:
            if bank_after_approval:
                services.accreditation_bank_update(
                    actor=actor,
                    accreditation=accreditation,
                    iban=form.cleaned_data["iban"],
                    bic=form.cleaned_data["bic"],
                    holder=form.cleaned_data["account_holder"],
                )
            else:
                services.accreditation_save_step(
                    actor=actor, accreditation=accreditation, step=step, data=form.cleaned_data
                )
        except DomainError as exc:
            _form_errors(form, exc)
        else:
            if bank_after_approval:
                messages.success(
                    request,
                    _(
                        "Coordonnées bancaires enregistrées. Médias-Cité doit les vérifier : "
                        "vos remboursements sont suspendus d'ici là."
                    ),
                )
                return redirect("accreditation_overview")
            messages.success(
                request, _("« %(step)s » enregistré.") % {"step": selectors.STEP_LABELS[step]}
            )
            following = _next_step(step)
            return redirect(step_url(following) if following else "accreditation_overview")
    return render(
        request,
        "orgs/accreditation/step.html",
        {
            "accreditation": accreditation,
            "form": form,
            "step": step,
            "step_label": selectors.STEP_LABELS[step],
            "steps": _step_links(accreditation, current=step),
            "legal_forms": LEGAL_FORMS,
            "bank_after_approval": bank_after_approval,
        },
    )


def _editable_accreditation(request: HttpRequest) -> Accreditation | None:
    """The caller's application when it can be edited; else a message (None)."""
    accreditation = _own_accreditation(request)
    if accreditation is not None and accreditation.is_locked:
        messages.info(request, _("Votre demande a été envoyée : elle n'est plus modifiable."))
        return None
    return accreditation


@membership_required("accreditation:apply")
def accreditation_sites(request: HttpRequest) -> HttpResponse:
    accreditation = _own_accreditation(request)
    if accreditation is None:
        return redirect("accreditation_overview")
    return render(
        request,
        "orgs/accreditation/sites.html",
        {
            "accreditation": accreditation,
            "sites": selectors.accreditation_sites(accreditation=accreditation),
            "steps": _step_links(accreditation, current="sites"),
            "can_edit": not accreditation.is_locked,
            "next_url": step_url("documents"),
        },
    )


def _site_page(request: HttpRequest, site=None) -> HttpResponse:
    accreditation = _editable_accreditation(request)
    if accreditation is None:
        return redirect("accreditation_overview")
    if site is not None:
        initial = {
            "name": site.name,
            "address": site.address,
            "postcode": site.postcode,
            "city": site.city,
            "departement": site.departement,
            "services": list(site.services.all()),
            "opening_hours": site.opening_hours,
        }
    elif not accreditation.sites.exists():
        # The first site is usually the organisation's own address.
        organisation = accreditation.organisation
        initial = {
            "name": organisation.name,
            "address": organisation.address,
            "postcode": organisation.postcode,
            "city": organisation.city,
        }
    else:
        initial = {}
    form = SiteForm(request.POST or None, initial=initial, services=selectors.service_choices())
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.accreditation_site_save(
                actor=actor_from_request(request),
                accreditation=accreditation,
                site=site,
                **form.cleaned_data,
            )
        except DomainError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("Lieu « %(name)s » enregistré.") % {"name": saved.name})
            return redirect("accreditation_sites")
    return render(
        request,
        "orgs/accreditation/site_form.html",
        {
            "accreditation": accreditation,
            "form": form,
            "site": site,
            "steps": _step_links(accreditation, current="sites"),
        },
    )


@membership_required("accreditation:apply")
def accreditation_site_add(request: HttpRequest) -> HttpResponse:
    return _site_page(request)


@membership_required("accreditation:apply")
def accreditation_site_edit(request: HttpRequest, pk: int) -> HttpResponse:
    site = selectors.accreditation_site_get(membership=request.membership, pk=pk)
    return _site_page(request, site)


@require_POST
@membership_required("accreditation:apply")
def accreditation_site_remove(request: HttpRequest, pk: int) -> HttpResponse:
    site = selectors.accreditation_site_get(membership=request.membership, pk=pk)
    try:
        services.accreditation_site_remove(
            actor=actor_from_request(request), accreditation=site.accreditation, site=site
        )
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("Lieu « %(name)s » retiré.") % {"name": site.name})
    return redirect("accreditation_sites")


@membership_required("accreditation:apply")
def accreditation_documents(request: HttpRequest) -> HttpResponse:
    accreditation = _own_accreditation(request)
    if accreditation is None:
        return redirect("accreditation_overview")
    form = DocumentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            document = services.accreditation_document_add(
                actor=actor_from_request(request),
                accreditation=accreditation,
                kind=form.cleaned_data["kind"],
                upload=form.cleaned_data["file"],
            )
        except DomainError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, _("« %(name)s » ajouté.") % {"name": document.original_name})
            return redirect("accreditation_documents")
    return render(
        request,
        "orgs/accreditation/documents.html",
        {
            "accreditation": accreditation,
            "form": form,
            "documents": selectors.accreditation_documents(accreditation=accreditation),
            "steps": _step_links(accreditation, current="documents"),
            "can_edit": not accreditation.is_locked,
            "next_url": step_url("bank"),
        },
    )


@require_POST
@membership_required("accreditation:apply")
def accreditation_document_remove(request: HttpRequest, pk: int) -> HttpResponse:
    document = selectors.accreditation_document_get(membership=request.membership, pk=pk)
    try:
        services.accreditation_document_remove(
            actor=actor_from_request(request),
            accreditation=document.accreditation,
            document=document,
        )
    except DomainError as exc:
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("« %(name)s » retiré.") % {"name": document.original_name})
    return redirect("accreditation_documents")


@membership_required()
def accreditation_document_download(request: HttpRequest, pk: int) -> HttpResponse:
    """A supporting document, for its provider's admins and operator admins only."""
    membership = request.membership
    if not (
        membership_has_permission(membership, "accreditation:apply")
        or membership_has_permission(membership, "accreditation:review")
    ):
        raise PermissionDenied
    document = selectors.accreditation_document_get(membership=membership, pk=pk)
    try:
        handle = document.file.open("rb")
    except (FileNotFoundError, ValidationError) as exc:
        raise Http404 from exc
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=document.original_name,
        content_type=document.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@membership_required("accreditation:apply")
def accreditation_submit(request: HttpRequest) -> HttpResponse:
    accreditation = _own_accreditation(request)
    if accreditation is None:
        return redirect("accreditation_overview")
    try:
        services.accreditation_submit(
            actor=actor_from_request(request), accreditation=accreditation
        )
    except DomainError as exc:
        if exc.code == "incomplete":
            messages.error(
                request,
                _("Votre demande est incomplète : complétez les étapes signalées ci-dessous."),
            )
        else:
            messages.error(request, str(exc.message))
    else:
        messages.success(
            request,
            _("Demande envoyée à Médias-Cité. Vous recevrez un e-mail dès qu'elle sera examinée."),
        )
    return redirect("accreditation_overview")


# --- The operator's review -----------------------------------------------------------------


@membership_required("accreditation:review")
def accreditation_queue(request: HttpRequest) -> HttpResponse:
    form = QueueFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    accreditations = selectors.accreditation_queue(
        membership=request.membership,
        status=filters.get("etat", ""),
        departement=filters.get("departement", ""),
        search=filters.get("q", ""),
    )
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=accreditations,
            columns=ACCREDITATION_COLUMNS,
            filename="qualifications",
            fmt=fmt,
            title=_("Qualifications"),
        )
    page = Paginator(accreditations, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "orgs/accreditation/queue.html",
        {"form": form, "page": page, "query": query_without_page(request)},
    )


def _review_page(request: HttpRequest, accreditation: Accreditation, **forms) -> HttpResponse:
    status = accreditation.status
    context = {
        **_summary_context(accreditation),
        "can_start_review": status == AccreditationStatus.SUBMITTED,
        "can_decide": status in selectors.PENDING,
        "can_suspend": status == AccreditationStatus.APPROVED,
        "can_reinstate": status == AccreditationStatus.SUSPENDED,
        "can_renew": status in (AccreditationStatus.APPROVED, AccreditationStatus.EXPIRED),
        "can_verify_bank": status in AFTER_APPROVAL
        and accreditation.bank_status == BankStatus.UNVERIFIED
        and bool(accreditation.iban),
        "approve_form": forms.get("approve_form") or ApproveForm(),
        "comment_form": forms.get("comment_form") or CommentForm(),
        "reject_form": forms.get("reject_form") or RejectForm(),
        "suspend_form": forms.get("suspend_form") or SuspendForm(),
        "reinstate_form": forms.get("reinstate_form") or ReinstateForm(),
        "renew_form": forms.get("renew_form") or RenewForm(current=accreditation.valid_until),
        "bank_verify_form": BankVerifyForm(initial={"iban": accreditation.iban}),
    }
    return render(request, "orgs/accreditation/review.html", context)


@membership_required("accreditation:review")
def accreditation_review(request: HttpRequest, pk: int) -> HttpResponse:
    accreditation = selectors.accreditation_get(membership=request.membership, pk=pk)
    return _review_page(request, accreditation)


def _act(
    request: HttpRequest,
    pk: int,
    service,
    success: str,
    form_class=None,
    form_name: str = "",
    fields: tuple[str, ...] = (),
) -> HttpResponse:
    """Run one review decision; on a refusal, show the page again with the form's errors."""
    accreditation = selectors.accreditation_get(membership=request.membership, pk=pk)
    form = form_class(request.POST) if form_class else None
    if form is not None and not form.is_valid():
        return _review_page(request, accreditation, **{form_name: form})
    kwargs = {field: form.cleaned_data[field] for field in fields} if form else {}
    try:
        service(actor=actor_from_request(request), accreditation=accreditation, **kwargs)
    except DomainError as exc:
        if form is not None and getattr(exc, "field", None) in form.fields:
            form_add_error(form, exc)
            return _review_page(request, accreditation, **{form_name: form})
        messages.error(request, str(exc.message))
    else:
        messages.success(request, success % {"name": accreditation.organisation.name})
    return redirect("accreditation_review", pk=accreditation.pk)


@require_POST
@membership_required("accreditation:review")
def accreditation_start_review(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, services.accreditation_start_review, _("Examen commencé : %(name)s."))


@require_POST
@membership_required("accreditation:review")
def accreditation_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        services.accreditation_approve,
        _("%(name)s est qualifié : ses lieux sont ouverts aux chèques."),
        ApproveForm,
        "approve_form",
        ("valid_until",),
    )


@require_POST
@membership_required("accreditation:review")
def accreditation_request_changes(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        services.accreditation_request_changes,
        _("Compléments demandés à %(name)s."),
        CommentForm,
        "comment_form",
        ("comment",),
    )


@require_POST
@membership_required("accreditation:review")
def accreditation_reject(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        services.accreditation_reject,
        _("Demande refusée : %(name)s."),
        RejectForm,
        "reject_form",
        ("reason",),
    )


@require_POST
@membership_required("accreditation:review")
def accreditation_suspend(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        services.accreditation_suspend,
        _("Qualification suspendue : %(name)s."),
        SuspendForm,
        "suspend_form",
        ("reason",),
    )


@require_POST
@membership_required("accreditation:review")
def accreditation_reinstate(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        services.accreditation_reinstate,
        _("Qualification rétablie : %(name)s."),
        ReinstateForm,
        "reinstate_form",
        ("valid_until",),
    )


@require_POST
@membership_required("accreditation:review")
def accreditation_renew(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        services.accreditation_renew,
        _("Qualification renouvelée : %(name)s."),
        RenewForm,
        "renew_form",
        ("valid_until",),
    )


@require_POST
@membership_required("accreditation:review")
def accreditation_bank_verify(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        services.accreditation_bank_verify,
        _("Coordonnées bancaires vérifiées : %(name)s."),
        BankVerifyForm,
        "bank_verify_form",
        ("iban",),
    )
