"""Funders' accounts: a funder's account and credit notes; operators' balances of all funders."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from aptic import exports
from orgs.decorators import membership_required

from ..exports import BALANCE_COLUMNS, LEDGER_COLUMNS
from ..selectors import ledger as selectors

PAGE_SIZE = 50


class AtDateForm(forms.Form):
    au = forms.DateField(
        label=_("Situation au"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean_au(self):
        day = self.cleaned_data.get("au")
        if day and day > timezone.localdate():
            raise ValidationError(_("Choisissez une date passée ou aujourd'hui."))
        return day


@require_safe
@membership_required("orders:view")
def account(request: HttpRequest) -> HttpResponse:
    """A funder's account: per programme, what was paid in, paid out, given back, and held.

    Operators open one funder's account from the balances page (``?commanditaire=<id>``).
    """
    membership = request.membership
    funder = None
    if membership.organisation.is_operator:
        if not request.GET.get("commanditaire"):
            return redirect("vouchers:balances")
        funder = selectors.account_funder_get(
            membership=membership, pk=request.GET["commanditaire"]
        )
    elif not membership.organisation.is_funder:
        raise Http404
    form = AtDateForm(request.GET or None)
    at = form.cleaned_data["au"] if form.is_valid() else None
    accounts = selectors.funder_account(membership=membership, at=at, funder=funder)
    entries = selectors.ledger_entries(membership=membership, funder=funder, at=at)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=entries,
            columns=LEDGER_COLUMNS,
            filename="compte",
            fmt=fmt,
            title=_("Compte"),
        )
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    query = urlencode(
        {
            key: value
            for key, value in (("commanditaire", funder.pk if funder else ""), ("au", at or ""))
            if value
        }
    )
    return render(
        request,
        "vouchers/ledger/account.html",
        {
            "funder": funder or membership.organisation,
            "accounts": accounts,
            "page": page,
            "credit_notes": selectors.credit_notes(membership=membership, funder=funder),
            "form": form,
            "at": at,
            "query": query,
            "totals": _totals(accounts),
        },
    )


def _totals(rows) -> dict[str, int]:
    keys = ("paid_in_cents", "fee_cents", "paid_out_cents", "returned_cents", "held_cents")
    return {key: sum(getattr(row, key) for row in rows) for key in keys}


@require_safe
@membership_required("settlement:view")
def balances(request: HttpRequest) -> HttpResponse:
    """Operators: the money held for each funder at a date (default today)."""
    form = AtDateForm(request.GET or None)
    at = (form.cleaned_data["au"] if form.is_valid() else None) or timezone.localdate()
    rows = selectors.operator_balances(membership=request.membership, at=at)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=rows,
            columns=BALANCE_COLUMNS,
            filename=f"soldes-{at:%Y-%m-%d}",
            fmt=fmt,
            title=_("Soldes"),
        )
    return render(
        request,
        "vouchers/ledger/balances.html",
        {"rows": rows, "form": form, "at": at, "totals": _totals(rows)},
    )


@require_safe
@membership_required("orders:view")
def credit_note_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The credit note PDF, only through this permission-checked view (private storage)."""
    note = selectors.credit_note_get(membership=request.membership, pk=pk)
    if not note.pdf:
        raise Http404
    try:
        handle = note.pdf.open("rb")
    except (FileNotFoundError, ValidationError) as exc:
        raise Http404 from exc
    return FileResponse(
        handle,
        as_attachment=False,
        filename=f"avoir-{note.number}.pdf",
        content_type="application/pdf",
    )
