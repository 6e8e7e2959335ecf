"""Web pages of distribution: booklets, allocation and return, movements, stock, follow-up,
hand-outs."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from aptic import exports
from aptic.errors import DomainError, form_add_error
from aptic.listing import query_without_page
from orgs.audit import actor_from_request
from orgs.decorators import membership_required
from orgs.permissions import membership_has_permission
from orgs.templatetags.ui import euros

from .. import codes
from ..exports import HANDOUT_COLUMNS, MOVEMENT_COLUMNS, booklet_columns, follow_up_columns
from ..forms_stock import (
    AllocationForm,
    BlockChequesForm,
    BlockForm,
    BookletFilterForm,
    FollowUpFilterForm,
    HandOutFilterForm,
    ReturnForm,
)
from ..models import Booklet, BookletStatus, ChequeStatus
from ..selectors import handouts as handout_selectors
from ..selectors import stock as selectors
from ..services import distribution

PAGE_SIZE = 50


# --- Booklets --------------------------------------------------------------------------------


@membership_required("booklets:view")
def booklet_list(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    organisation = membership.organisation
    shows_holders = organisation.is_funder or organisation.is_operator
    form = BookletFilterForm(
        request.GET or None,
        programmes=selectors.booklet_filter_programmes(membership=membership),
        holders=selectors.booklet_filter_holders(membership=membership) if shows_holders else None,
    )
    filters = form.filters()
    booklets = selectors.booklet_list(membership=membership, **filters)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=booklets,
            columns=booklet_columns(with_holder=shows_holders),
            filename="chequiers",
            fmt=fmt,
            title=_("Chéquiers"),
        )
    page = Paginator(booklets, PAGE_SIZE).get_page(request.GET.get("page"))
    other_sort = request.GET.copy()
    other_sort.pop("page", None)
    other_sort["tri"] = "recent" if filters["order"] == "number" else "number"
    return render(
        request,
        "vouchers/stock/booklet_list.html",
        {
            "form": form,
            "page": page,
            "query": query_without_page(request),
            "sort": filters["order"],
            "other_sort_query": other_sort.urlencode(),
            "filtered": any(v for k, v in request.GET.items() if k not in ("page", "tri")),
        },
    )


def _booklet_page(
    request: HttpRequest,
    booklet: Booklet,
    *,
    block_form: BlockForm | None = None,
    cheques_form: BlockChequesForm | None = None,
) -> HttpResponse:
    membership = request.membership
    organisation = membership.organisation
    cheques = list(selectors.booklet_cheques(booklet=booklet))
    full_codes = selectors.may_see_full_codes(membership=membership, booklet=booklet)
    replacement = selectors.booklet_replacement(booklet=booklet)
    is_party = organisation.pk in (booklet.funder_id, booklet.holder_id)
    active = [c for c in cheques if c.status == ChequeStatus.ACTIVE]
    # Blocking protects cheques still usable; a booklet with none left has nothing to protect.
    can_block = (
        is_party
        and booklet.status != BookletStatus.BLOCKED
        and bool(active)
        and membership_has_permission(membership, "booklets:block")
    )
    replaceable = [c for c in cheques if c.status == ChequeStatus.BLOCKED]
    context = {
        "booklet": booklet,
        "value_cents": sum(c.value_cents for c in cheques),
        "unspent_cents": sum(c.value_cents for c in active),
        "cheques": [
            (cheque, codes.display(cheque.code) if full_codes else codes.mask(cheque.code))
            for cheque in cheques
        ],
        "full_codes": full_codes,
        # A reason column only for cheques blocked one by one (the booklet's own is shown above).
        "cheque_reasons": any(
            c.blocked_reason and c.blocked_reason != booklet.blocked_reason for c in cheques
        ),
        "movements": selectors.booklet_movements(membership=membership, booklet=booklet),
        "replacement": replacement,
        "is_funder": booklet.funder_id == organisation.pk,
        "can_block": can_block,
        "can_block_cheques": can_block and bool(active),
        "can_replace": booklet.funder_id == organisation.pk
        and booklet.status == BookletStatus.BLOCKED
        and replacement is None
        and bool(replaceable)
        and membership_has_permission(membership, "booklets:replace"),
        "replaceable_count": len(replaceable),
        "replaceable_cents": sum(c.value_cents for c in replaceable),
        "selected_cheques": set(cheques_form.data.getlist("cheques")) if cheques_form else set(),
        "block_form": block_form or BlockForm(),
        "cheques_form": cheques_form or BlockChequesForm(cheques=_active_cheques(booklet)),
    }
    return render(request, "vouchers/stock/booklet_detail.html", context)


def _active_cheques(booklet: Booklet):
    return (
        selectors.booklet_cheques(booklet=booklet)
        .filter(status=ChequeStatus.ACTIVE)
        .select_related("booklet")
    )


@membership_required("booklets:view")
def booklet_detail(request: HttpRequest, number: str) -> HttpResponse:
    booklet = selectors.booklet_get(membership=request.membership, number=number)
    return _booklet_page(request, booklet)


@require_POST
@membership_required("booklets:block")
def booklet_block(request: HttpRequest, number: str) -> HttpResponse:
    booklet = selectors.booklet_get(membership=request.membership, number=number)
    form = BlockForm(request.POST)
    if form.is_valid():
        try:
            blocked = distribution.booklet_block(
                actor=actor_from_request(request),
                booklet=booklet,
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(
                request,
                ngettext(
                    "Chéquier %(number)s bloqué : %(n)s chèque non utilisé est désormais refusé.",
                    "Chéquier %(number)s bloqué : %(n)s chèques non utilisés sont désormais "
                    "refusés.",
                    blocked,
                )
                % {"number": booklet.number, "n": blocked},
            )
            return redirect("vouchers:booklet_detail", number=booklet.number)
    return _booklet_page(request, booklet, block_form=form)


@require_POST
@membership_required("booklets:block")
def cheques_block(request: HttpRequest, number: str) -> HttpResponse:
    booklet = selectors.booklet_get(membership=request.membership, number=number)
    form = BlockChequesForm(request.POST, cheques=_active_cheques(booklet))
    if form.is_valid():
        try:
            blocked = distribution.cheques_block(
                actor=actor_from_request(request),
                cheques=list(form.cleaned_data["cheques"]),
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(
                request,
                ngettext("%(n)s chèque bloqué.", "%(n)s chèques bloqués.", blocked)
                % {"n": blocked},
            )
            return redirect("vouchers:booklet_detail", number=booklet.number)
    return _booklet_page(request, booklet, cheques_form=form)


@require_POST
@membership_required("booklets:replace")
def booklet_replace(request: HttpRequest, number: str) -> HttpResponse:
    booklet = selectors.booklet_get(membership=request.membership, number=number)
    try:
        replacement = distribution.booklet_replace(
            actor=actor_from_request(request), booklet=booklet
        )
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("vouchers:booklet_detail", number=booklet.number)
    messages.success(
        request,
        _("Chéquier de remplacement %(number)s émis : %(n)s chèque(s), %(value)s.")
        % {
            "number": replacement.number,
            "n": replacement.size,
            "value": euros(replacement.size * booklet.programme.cheque_value_cents),
        },
    )
    return redirect("vouchers:booklet_detail", number=replacement.number)


# --- Allocation, return, movements -----------------------------------------------------------


@membership_required("booklets:allocate")
def booklet_allocate(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    form = AllocationForm(
        request.POST or None,
        distributors=selectors.distributor_choices(),
        programmes=selectors.allocatable_programmes(membership=membership),
    )
    if request.method == "POST" and form.is_valid():
        try:
            movement = distribution.booklets_allocate(
                actor=actor_from_request(request), **form.service_arguments()
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(
                request,
                ngettext(
                    "%(n)s chéquier confié à %(to)s (%(first)s), %(value)s.",
                    "%(n)s chéquiers confiés à %(to)s (%(first)s à %(last)s), %(value)s.",
                    movement.booklet_count,
                )
                % {
                    "n": movement.booklet_count,
                    "to": movement.to_organisation.name,
                    "first": movement.first_number,
                    "last": movement.last_number,
                    "value": euros(movement.value_cents),
                },
            )
            return redirect("vouchers:movement_list")
    return render(
        request,
        "vouchers/stock/allocate.html",
        {"form": form, "stock": selectors.funder_stock(membership=membership)},
    )


@membership_required("booklets:view")
def booklet_return(request: HttpRequest) -> HttpResponse:
    """The funder recalls booklets, or the holding distributor gives them back."""
    membership = request.membership
    if not (
        membership_has_permission(membership, "booklets:allocate")
        or membership_has_permission(membership, "booklets:assign")
    ):
        raise PermissionDenied
    form = ReturnForm(request.POST or None, initial={"numbers": request.GET.get("numeros", "")})
    if request.method == "POST" and form.is_valid():
        try:
            movement = distribution.booklets_return(
                actor=actor_from_request(request), numbers=form.cleaned_data["numbers"]
            )
        except DomainError as exc:
            form_add_error(form, exc)
        else:
            messages.success(
                request,
                ngettext(
                    "%(n)s chéquier revenu de %(from)s au stock de %(to)s.",
                    "%(n)s chéquiers revenus de %(from)s au stock de %(to)s.",
                    movement.booklet_count,
                )
                % {
                    "n": movement.booklet_count,
                    "from": movement.from_organisation.name,
                    "to": movement.to_organisation.name,
                },
            )
            return redirect("vouchers:movement_list")
    return render(request, "vouchers/stock/return.html", {"form": form})


@membership_required("booklets:view")
def movement_list(request: HttpRequest) -> HttpResponse:
    movements = selectors.movement_list(membership=request.membership)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=movements,
            columns=MOVEMENT_COLUMNS,
            filename="mouvements-chequiers",
            fmt=fmt,
            title=_("Mouvements"),
        )
    page = Paginator(movements, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "vouchers/stock/movement_list.html",
        {"page": page, "query": query_without_page(request)},
    )


# --- Stock -----------------------------------------------------------------------------------


def _totals(rows: Sequence, fields: Sequence[str]) -> dict[str, int]:
    return {name: sum(getattr(row, name) for row in rows) for name in fields}


@membership_required("booklets:view")
def stock(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    held = selectors.held_stock(membership=membership)
    funded = selectors.funder_stock(membership=membership)
    return render(
        request,
        "vouchers/stock/stock.html",
        {
            "held": held,
            "held_totals": _totals(held, ("allocated", "assigned", "blocked", "total")),
            "funded": funded,
            "funded_totals": _totals(
                funded, ("in_stock", "allocated", "assigned", "blocked", "total")
            ),
            "expiry_warnings": selectors.expiry_warnings(membership=membership),
        },
    )


# --- Follow-up -------------------------------------------------------------------------------

FOLLOW_UP_FIELDS = ("in_stock", "allocated", "handed_out", "started", "blocked")


def _follow_up(request: HttpRequest) -> tuple[FollowUpFilterForm, dict, dict]:
    membership = request.membership
    organisation = membership.organisation
    form = FollowUpFilterForm(
        request.GET or None,
        programmes=selectors.follow_up_programmes(membership=membership),
    )
    filters = form.filters() if request.GET else {}
    tables = {}
    if organisation.is_funder or organisation.is_operator:
        tables["structures"] = selectors.follow_up_by_distributor(
            membership=membership, stock_label=_("Stock du commanditaire"), **filters
        )
    if organisation.is_distributor:
        tables["agents"] = selectors.follow_up_by_agent(
            membership=membership, pending_label=_("Pas encore remis"), **filters
        )
    return form, filters, tables


def _follow_up_export(request: HttpRequest, tables: dict, fmt: str) -> HttpResponse:
    """One table of the follow-up (``vue=structures|agents``) as CSV or XLSX."""
    view = request.GET.get("vue")
    if view not in tables:
        view = next(iter(tables), "structures")
    return exports.export_response(
        request,
        rows=tables.get(view, []),
        columns=follow_up_columns(view=view),
        filename=f"suivi-chequiers-{view}",
        fmt=fmt,
        title=_("Suivi"),
    )


@membership_required("booklets:view")
def follow_up(request: HttpRequest) -> HttpResponse:
    form, filters, tables = _follow_up(request)
    if fmt := exports.requested_format(request):
        return _follow_up_export(request, tables, fmt)
    return render(
        request,
        "vouchers/stock/follow_up.html",
        {
            "form": form,
            "filters": filters,
            "by_distributor": tables.get("structures"),
            "by_distributor_totals": _totals(tables.get("structures", []), FOLLOW_UP_FIELDS),
            "by_agent": tables.get("agents"),
            "by_agent_totals": _totals(tables.get("agents", []), FOLLOW_UP_FIELDS),
            "query": query_without_page(request),
        },
    )


@membership_required("booklets:view")
def follow_up_csv(request: HttpRequest) -> HttpResponse:
    """The earlier address of the follow-up CSV, kept for saved links: same export as
    ``suivi/?export=csv``."""
    _form, _filters, tables = _follow_up(request)
    return _follow_up_export(request, tables, "csv")


# --- Hand-outs -------------------------------------------------------------------------------


@membership_required("booklets:view")
def handout_list(request: HttpRequest) -> HttpResponse:
    """Each booklet handed to a beneficiary: a funder's, its own agents' for a distributor.

    Invalid filters show their errors and no rows (nor an export): never rows not asked for.
    """
    membership = request.membership
    organisation = membership.organisation
    form = HandOutFilterForm(
        request.GET or None,
        programmes=handout_selectors.handout_filter_programmes(membership=membership),
        agents=(
            handout_selectors.handout_filter_agents(membership=membership)
            if organisation.is_distributor
            else None
        ),
        distributors=(
            handout_selectors.handout_filter_distributors(membership=membership)
            if organisation.is_funder or organisation.is_operator
            else None
        ),
    )
    valid = not form.is_bound or form.is_valid()
    handouts = handout_selectors.handout_list(
        membership=membership, **(form.filters() if form.is_bound and valid else {})
    )
    if not valid:
        handouts = handouts.none()
    elif fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=handouts,
            columns=HANDOUT_COLUMNS,
            filename="remises-chequiers",
            fmt=fmt,
            title=_("Remises de chéquiers"),
        )
    page = Paginator(handouts, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "vouchers/stock/handout_list.html",
        {
            "form": form,
            "page": page,
            "valid": valid,
            "query": query_without_page(request),
            "filtered": any(v for k, v in request.GET.items() if k not in exports.NOT_FILTERS),
        },
    )
