"""The hand-over counter (« guichet »): find a booklet, hand it to a person, print the receipt.

Built for a service desk: one field takes the booklet number from a handheld scanner, the camera
or the keyboard; only the result region below it is swapped (htmx), so the field keeps its focus
and nothing typed is lost. Without JavaScript the same URLs answer full pages.

The person's names and birth date are only passed to ``booklet_assign`` for the limit check:
they are never stored, logged, put in a message, the session or a URL, and Django's error
reports hide them (``sensitive_post_parameters`` and ``sensitive_variables``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from aptic.errors import DomainError, NotFound, ValidationFailed, form_add_error
from orgs.audit import actor_from_request
from orgs.decorators import membership_required
from orgs.permissions import membership_has_permission

from ..forms_counter import PERSON_NOTICE, BeneficiaryForm, BookletNumberForm
from ..models import Booklet
from ..selectors.counter import (
    booklet_for_counter,
    booklet_number_normalise,
    counter_booklet,
    receipt_get,
)
from ..services.distribution import Person, booklet_assign

PAGE = "vouchers/counter/page.html"
RESULT = "vouchers/counter/_booklet.html"


def _result(request: HttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    """The result region for htmx; the whole counter page otherwise (no JavaScript)."""
    context = {"scan_form": BookletNumberForm(), "person_notice": PERSON_NOTICE, **context}
    return render(request, RESULT if request.htmx else PAGE, context, status=status)


def _not_found(request: HttpRequest, number: str) -> HttpResponse:
    # The same answer for a number that does not exist and for another organisation's booklet.
    return _result(request, {"number": number, "not_found": True}, status=404)


def _booklet(
    request: HttpRequest,
    booklet: Booklet,
    *,
    form: BeneficiaryForm | None = None,
    error: str = "",
    status: int | None = None,
) -> HttpResponse:
    item = counter_booklet(membership=request.membership, booklet=booklet)
    if item.is_assignable and form is None:
        form = BeneficiaryForm()
    if status is None:
        status = 200 if item.is_assignable else 409
    return _result(
        request,
        {"item": item, "number": booklet.number, "form": form, "error": error},
        status=status,
    )


@membership_required("booklets:assign")
def counter(request: HttpRequest) -> HttpResponse:
    return render(request, PAGE, {"scan_form": BookletNumberForm(), "person_notice": PERSON_NOTICE})


@require_POST
@membership_required("booklets:assign")
def counter_lookup(request: HttpRequest) -> HttpResponse:
    form = BookletNumberForm(request.POST)
    if not form.is_valid():
        return _result(request, {"lookup_errors": form.errors["number"]}, status=400)
    number = form.cleaned_data["number"]
    booklet = booklet_for_counter(membership=request.membership, number=number)
    if booklet is None:
        return _not_found(request, number)
    return _booklet(request, booklet)


@require_POST
@sensitive_post_parameters("last_name", "first_name", "birth_date")
@membership_required("booklets:assign")
@sensitive_variables()  # every frame below this view: the names pass through forms and services
def counter_assign(request: HttpRequest, number: str) -> HttpResponse:
    membership = request.membership
    booklet = booklet_for_counter(membership=membership, number=number)
    if booklet is None:
        return _not_found(request, booklet_number_normalise(number) or number)
    if not counter_booklet(membership=membership, booklet=booklet).is_assignable:
        return _booklet(request, booklet)  # already handed out, blocked, not held: 409

    can_override = membership_has_permission(membership, "booklets:override_limit")
    form = BeneficiaryForm(
        request.POST, with_override=can_override and "override_reason" in request.POST
    )
    if not form.is_valid():
        return _booklet(request, booklet, form=form, status=400)
    data = form.cleaned_data
    try:
        beneficiary = booklet_assign(
            actor=actor_from_request(request),
            booklet=booklet,
            person=Person(
                last_name=data["last_name"],
                first_name=data["first_name"],
                birth_date=data["birth_date"],
            ),
            age_bracket=data["age_bracket"],
            postcode=data["postcode"],
            gender=data["gender"],
            situation=data["situation"],
            override_reason=data.get("override_reason", ""),
        )
    except ValidationFailed as exc:
        form_add_error(form, exc)
        return _booklet(request, booklet, form=form, status=400)
    except NotFound:
        return _not_found(request, booklet.number)
    except DomainError as exc:
        if exc.code == "beneficiary_limit_reached":
            if can_override and form.override_field is None:
                form = BeneficiaryForm(request.POST, with_override=True)
                form.is_valid()  # bound again to show what was typed, with the extra field
            return _booklet(request, booklet, form=form, error=str(exc.message), status=409)
        if exc.code == "override_not_allowed":
            return _booklet(request, booklet, form=form, error=str(exc.message), status=409)
        # The booklet changed meanwhile (handed out at another desk): show what it is now.
        fresh = booklet_for_counter(membership=membership, number=booklet.number)
        if fresh is None:
            return _not_found(request, booklet.number)
        return _booklet(request, fresh, error=str(exc.message), status=409)

    messages.success(
        request, _("Chéquier %(number)s remis. Imprimez le reçu.") % {"number": booklet.number}
    )
    url = reverse("vouchers:receipt", args=[beneficiary.reference])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


# --- Receipt ------------------------------------------------------------------------------------


def _receipt_context(request: HttpRequest, reference: str) -> dict:
    receipt = receipt_get(membership=request.membership, reference=reference)
    # The public directory, opened near the beneficiary's postcode (printed in full on paper).
    query = urlencode({"cp": receipt.postcode})
    directory_url = f"{settings.SITE_URL}{reverse('directory:search')}?{query}"
    return {
        "receipt": receipt,
        "printed_on": timezone.localdate(),
        "site_host": settings.SITE_URL.split("://", 1)[-1],
        "directory_url": directory_url,
    }


@require_GET
@membership_required("booklets:view")
def receipt(request: HttpRequest, reference: str) -> HttpResponse:
    return render(request, "vouchers/counter/receipt.html", _receipt_context(request, reference))


@require_GET
@membership_required("booklets:view")
def receipt_pdf(request: HttpRequest, reference: str) -> HttpResponse:
    from weasyprint import HTML

    context = _receipt_context(request, reference)
    with translation.override(settings.LANGUAGE_CODE):
        html = render_to_string("vouchers/counter/receipt_pdf.html", context)
    pdf = HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="recu-{context["receipt"].reference}.pdf"'
    return response
