"""The provider's redemption counter (« Encaisser »), its receipts, and the public cheque page.

Counter: one field fed by a handheld scanner, the camera or the keyboard. Each Enter posts the
scanned text to :func:`counter_check`, which answers its verdict as a small partial (scans made
while a check is in flight leave together with the next one: a row each, in order);
``static/js/redeem-counter.js`` puts each row in the basket (hidden ``codes`` inputs inside the
redeem form) or in the refused list. The basket lives in the page only: nothing is lost between
scans and there is no server state to race. A POST to :func:`counter` redeems the whole basket at
once, all or nothing, with an idempotency key rendered per page (and renewed by the script when
the basket changes), so a double click or a resent form never redeems twice.

The check is on the scanner's critical path (a verdict within 300 ms of Enter): it renders its
partial without the request context processors, and ``cheque_verdicts`` reads the cheques with
their booklet and programme (and whether the programme funds the service) in one query.

Without JavaScript the same URLs answer whole pages: one cheque at a time, but it works.

Public page: anyone holding a cheque sees whether it is valid, its value and end date, the
programme and the nearest places; never who the beneficiary is, nor where or when it was used.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import date, timedelta
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
    require_safe,
)

from aptic import exports
from aptic.errors import DomainError
from orgs.audit import Actor, actor_from_request, client_ip
from orgs.decorators import membership_required
from orgs.models import AccreditationSite, Membership, Postcode, ServiceCategory
from orgs.permissions import membership_has_permission
from orgs.selectors_geo import NearbyProvider, provider_candidates, providers_nearest
from orgs.templatetags.ui import euros
from vouchers import codes
from vouchers.models import BookletStatus, Cheque, ChequeStatus

from . import selectors
from .exports import REDEMPTION_COLUMNS
from .forms import CounterForm
from .models import Reason, Redemption, RedemptionStatus
from .ratelimit import RateLimited
from .services.abuse import LockedOut, lockout_check, scan_attempts_record
from .services.checks import Verdict, cheque_verdicts
from .services.redeem import MAX_CODES, NotRedeemable, cheques_redeem, redemption_cancel
from .throttles import counter_limits, public_limit

COUNTER = "redemption/counter.html"
VERDICT = "redemption/_verdict.html"
SCAN_MESSAGE = "redemption/_scan_message.html"
PER_PAGE = 25
NEARBY_PLACES = 5


# --- Counter ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanRow:
    """A verdict as the counter shows it: a basket row (ok) or a refused one."""

    key: str  # the normalised code: one row per key in the page
    display: str
    reason: str
    label: str
    detail: str
    value_cents: int = 0
    expires_on: date | None = None
    programme: str = ""

    @property
    def ok(self) -> bool:
        return self.reason == Reason.OK


def _row(verdict: Verdict) -> ScanRow:
    if verdict.code:
        key, display = verdict.code, codes.display(verdict.code)
    else:
        key = codes.normalise(verdict.scanned)[:40]
        display = codes.display(key) if len(key) == codes.CODE_LENGTH else key
    cheque = verdict.cheque
    return ScanRow(
        key=key,
        display=display,
        reason=verdict.reason,
        label=str(Reason(verdict.reason).label),
        detail=verdict.detail,
        value_cents=verdict.value_cents,
        expires_on=cheque.expires_on if cheque else None,
        programme=cheque.booklet.programme.name if cheque else "",
    )


def _new_key() -> str:
    return secrets.token_hex(16)


def _scan_context(
    membership: Membership, data
) -> tuple[AccreditationSite | None, ServiceCategory | None]:
    """The site and service a check is for, when the agent picked them (ignored otherwise)."""
    site = service = None
    site_id, service_id = str(data.get("site", "")), str(data.get("service", ""))
    if site_id.isdigit():
        site = (
            selectors.provider_sites(membership=membership)
            .prefetch_related(None)
            .filter(pk=int(site_id))
            .first()
        )
    if service_id.isdigit():
        service = (
            selectors.provider_services(membership=membership).filter(pk=int(service_id)).first()
        )
    return site, service


def _basket_rows(
    membership: Membership, scanned: list[str], site=None, service=None
) -> tuple[list[ScanRow], list[ScanRow]]:
    """Verdicts of a basket sent back (an error page keeps what the agent scanned)."""
    if not scanned:
        return [], []
    verdicts = cheque_verdicts(
        scanned[:MAX_CODES], provider=membership.organisation, site=site, service=service
    )
    rows = [_row(v) for v in verdicts]
    return [r for r in rows if r.ok], [r for r in rows if not r.ok]


def _counter_page(
    request: HttpRequest,
    *,
    form: CounterForm | None = None,
    basket: list[ScanRow] | None = None,
    refused: list[ScanRow] | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    basket = basket or []
    response = render(
        request,
        COUNTER,
        {
            "form": form or CounterForm(membership=request.membership),
            "basket": basket,
            "basket_cents": sum(row.value_cents for row in basket),
            "refused": refused or [],
            "error": error,
            "idempotency_key": _new_key(),
            "record_timings": "timings" in request.GET,
            "max_codes": MAX_CODES,
        },
        status=status,
    )
    return response


def _retry_after(response: HttpResponse, seconds: int) -> HttpResponse:
    response["Retry-After"] = str(seconds)
    return response


def _too_fast_message(seconds: int) -> str:
    return _("Trop de scans, patientez %(n)s s.") % {"n": seconds}


def _guard(request: HttpRequest, *, scans: int = 1) -> tuple[str, int] | None:
    """Rate limits (each scan counts) then lock-out: the French message and its Retry-After,
    or None to go on."""
    membership = request.membership
    ip = client_ip(request)
    try:
        for _scan in range(max(scans, 1)):
            counter_limits(membership.pk, ip)
        lockout_check(organisation=membership.organisation)
    except RateLimited as limited:
        return _too_fast_message(limited.retry_after), limited.retry_after
    except LockedOut as locked:
        return str(locked.message), int(locked.extra.get("retry_after", 60))
    return None


def _check(request: HttpRequest, scanned: list[str], data) -> list[ScanRow]:
    """One row per scanned text, in order; failed verdicts are kept as scan attempts."""
    membership = request.membership
    site, service = _scan_context(membership, data)
    verdicts = cheque_verdicts(
        scanned, provider=membership.organisation, site=site, service=service
    )
    failed = [v for v in verdicts if not v.ok]
    if failed:
        scan_attempts_record(actor=actor_from_request(request), verdicts=failed, kind="check")
    # cheque_verdicts answers once per code: the same key finds it for each text.
    rows = {verdict.scanned: _row(verdict) for verdict in verdicts}
    return [rows[codes.parse(raw) or raw.strip()] for raw in scanned]


@require_http_methods(["GET", "POST"])
@membership_required("cheques:redeem")
def counter(request: HttpRequest) -> HttpResponse:
    """The counter page; POST redeems the basket (``codes``) for the chosen site and service."""
    if request.method == "POST":
        return _redeem(request)
    initial = {
        name: request.GET[name]
        for name in ("site", "service")
        if request.GET.get(name, "").isdigit()
    }
    form = CounterForm(membership=request.membership, initial=initial)
    scanned = request.GET.get("code", "").strip()[:200]
    if not scanned:
        return _counter_page(request, form=form)
    # « Encaisser ce chèque » from the public page: the code arrives already scanned.
    refused = _guard(request)
    if refused is not None:
        message, seconds = refused
        return _retry_after(_counter_page(request, form=form, error=message, status=429), seconds)
    [row] = _check(request, [scanned], {name: form[name].initial for name in ("site", "service")})
    return _counter_page(
        request, form=form, basket=[row] if row.ok else [], refused=[] if row.ok else [row]
    )


def _server_timing(view):
    """Say how long the server took (``Server-Timing``): the counter's budget is 300 ms."""

    @wraps(view)
    def timed(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        started = time.perf_counter()
        response = view(request, *args, **kwargs)
        response["Server-Timing"] = f"check;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    return timed


@require_POST
@_server_timing
@membership_required("cheques:check")
def counter_check(request: HttpRequest) -> HttpResponse:
    """The verdicts of scanned codes (``code``, once or several times), for the chosen site and
    service: a row each, in order, as a partial for htmx.

    Several codes come when scans were made while the previous check was in flight.
    """
    scanned = [c.strip()[:200] for c in request.POST.getlist("code") if c.strip()]
    if len(scanned) > MAX_CODES:
        message = _("Trop de codes à la fois : scannez-les de nouveau, un par un.")
        return HttpResponse(render_to_string(SCAN_MESSAGE, {"message": message}), status=400)
    refused = _guard(request, scans=len(scanned))
    if refused is not None:
        message, seconds = refused
        if not request.htmx:
            return _retry_after(_counter_page(request, error=message, status=429), seconds)
        context = {"message": message, "scanned": [text[:40] for text in scanned]}
        return _retry_after(
            HttpResponse(render_to_string(SCAN_MESSAGE, context), status=429), seconds
        )
    if not scanned:
        message = _("Scannez ou tapez le code du chèque.")
        if not request.htmx:
            return _counter_page(request, error=message, status=400)
        return HttpResponse(render_to_string(SCAN_MESSAGE, {"message": message}), status=400)
    rows = _check(request, scanned, request.POST)
    if not request.htmx:
        choices = {name: request.POST.get(name, "") for name in ("site", "service")}
        form = CounterForm(membership=request.membership, initial=choices)
        return _counter_page(
            request,
            form=form,
            basket=[r for r in rows if r.ok],
            refused=[r for r in rows if not r.ok],
        )
    # No request context: the context processors (navigation, memberships) are not needed here.
    html = "".join(render_to_string(VERDICT, {"row": row}) for row in rows)
    return HttpResponse(html)


def _redeem(request: HttpRequest) -> HttpResponse:
    membership = request.membership
    form = CounterForm(request.POST, membership=membership)
    scanned = [c for c in request.POST.getlist("codes") if c.strip()]
    valid = form.is_valid()
    site = form.cleaned_data.get("site") if valid else None
    service = form.cleaned_data.get("service") if valid else None

    def page(error: str, status: int, verdicts: list[Verdict] | None = None) -> HttpResponse:
        if verdicts is not None:
            rows = [_row(v) for v in verdicts]
            basket, refused = [r for r in rows if r.ok], [r for r in rows if not r.ok]
        else:
            basket, refused = _basket_rows(membership, scanned, site, service)
        return _counter_page(
            request, form=form, basket=basket, refused=refused, error=error, status=status
        )

    limited = _guard(request)
    if limited is not None:
        message, seconds = limited
        return _retry_after(page(message, 429), seconds)
    if not valid:
        return page(_("Choisissez le lieu et le service, puis encaissez."), 400)
    key = request.POST.get("idempotency_key", "").strip()[:100] or None
    try:
        redemption = cheques_redeem(
            actor=actor_from_request(request),
            codes=scanned,
            service=service,
            site=site,
            idempotency_key=key,
        )
    except NotRedeemable as refused:
        error = _(
            "%(message)s Les chèques refusés ont été retirés du panier : vérifiez-les, puis "
            "encaissez les autres."
        ) % {"message": refused.message}
        return page(error, 409, refused.verdicts)
    except LockedOut as locked:
        response = page(str(locked.message), 429)
        return _retry_after(response, int(locked.extra.get("retry_after", 60)))
    except DomainError as exc:
        return page(str(exc.message), exc.status_code)
    count = redemption.cheque_count
    messages.success(
        request,
        ngettext(
            "%(n)s chèque encaissé : %(amount)s.", "%(n)s chèques encaissés : %(amount)s.", count
        )
        % {"n": count, "amount": euros(redemption.amount_cents)},
    )
    return redirect("redemption:redemption_detail", pk=redemption.pk)


# --- Redemptions: list, receipt, cancel ---------------------------------------------------------


@require_GET
@membership_required("redemptions:view")
def redemption_list(request: HttpRequest) -> HttpResponse:
    redemptions = selectors.redemption_list(membership=request.membership).prefetch_related(None)
    if fmt := exports.requested_format(request):
        return exports.export_response(
            request,
            rows=redemptions,
            columns=REDEMPTION_COLUMNS,
            filename="encaissements",
            fmt=fmt,
            title=_("Encaissements"),
        )
    totals = redemptions.aggregate(
        active_count=Count("pk", filter=Q(status=RedemptionStatus.ACTIVE)),
        active_cents=Sum("amount_cents", filter=Q(status=RedemptionStatus.ACTIVE)),
        active_cheques=Sum("cheque_count", filter=Q(status=RedemptionStatus.ACTIVE)),
    )
    page = Paginator(redemptions, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "redemption/redemption_list.html", {"page": page, "totals": totals})


def _cancel_deadline(redemption: Redemption):
    return redemption.created_at + timedelta(hours=settings.REDEMPTION_CANCEL_HOURS)


def _cancellable(membership: Membership, redemption: Redemption) -> bool:
    return (
        redemption.status == RedemptionStatus.ACTIVE
        and redemption.provider_id == membership.organisation_id
        and timezone.now() <= _cancel_deadline(redemption)
        and not getattr(redemption, "payout_id", None)
        and membership_has_permission(membership, "redemptions:cancel")
    )


@require_GET
@membership_required("redemptions:view")
def redemption_detail(request: HttpRequest, pk: int) -> HttpResponse:
    membership = request.membership
    redemption = selectors.redemption_get(membership=membership, pk=pk)
    lines = [
        {"code": codes.mask(line.cheque.code), "value_cents": line.value_cents}
        for line in redemption.lines.all()
    ]
    again = reverse("redemption:counter")
    if redemption.site_id:
        again += f"?site={redemption.site_id}&service={redemption.service_id}"
    return render(
        request,
        "redemption/redemption_detail.html",
        {
            "redemption": redemption,
            "lines": lines,
            "cancellable": _cancellable(membership, redemption),
            # ?confirmer=1: the cancel button's second step, which restates what cancelling does.
            "confirming": request.GET.get("confirmer") == "1",
            "cancel_deadline": _cancel_deadline(redemption),
            "again_url": again,
        },
    )


@require_POST
@membership_required("redemptions:cancel")
def redemption_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    redemption = selectors.redemption_get(membership=request.membership, pk=pk)
    try:
        redemption_cancel(actor=actor_from_request(request), redemption=redemption)
    except DomainError as exc:
        if exc.status_code == 404:  # seen (a funder's view) but not this organisation's to cancel
            raise Http404 from exc
        messages.error(request, str(exc.message))
    else:
        messages.success(
            request, _("Encaissement annulé : ses chèques peuvent être encaissés de nouveau.")
        )
    return redirect("redemption:redemption_detail", pk=pk)


# --- Public cheque page -------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicCheque:
    """What anyone holding the cheque may know: its state, value, end date, programme, places."""

    state: str  # a Reason value
    code: str | None
    display: str
    cheque: Cheque | None = None
    places: list[NearbyProvider] | None = None
    places_near_home: bool = False


def _public_state(cheque: Cheque, today: date) -> str:
    """The cheque's state for its holder (same order as ``checks.judge``, no provider rules)."""
    if cheque.status == ChequeStatus.REDEEMED:
        return Reason.ALREADY_REDEEMED
    if cheque.status == ChequeStatus.BLOCKED:
        return Reason.BLOCKED
    if cheque.status == ChequeStatus.VOIDED:
        return Reason.VOIDED
    if cheque.status == ChequeStatus.EXPIRED or (cheque.expires_on and cheque.expires_on < today):
        return Reason.EXPIRED
    if cheque.booklet.status != BookletStatus.ASSIGNED or cheque.expires_on is None:
        return Reason.NOT_ELIGIBLE  # not handed out yet
    return Reason.OK


def _places(cheque: Cheque) -> tuple[list[NearbyProvider], bool]:
    """The nearest places to the beneficiary's postcode, else some in the programme's area."""
    booklet = cheque.booklet
    territory = sorted(booklet.programme.departements or [])
    if booklet.beneficiary_id:
        near = providers_nearest(
            postcode=booklet.beneficiary.postcode,
            departements=territory or None,
            limit=NEARBY_PLACES,
        )
        if near:
            return near, True
    if not territory:
        return [], False
    # No position to rank from: places of the programme's département(s), without distances.
    return [
        NearbyProvider.of(c) for c in provider_candidates(departements=territory)[:NEARBY_PLACES]
    ], False


def _public_lookup(raw: str) -> PublicCheque:
    code = codes.parse(raw)
    if code is None:
        typed = codes.normalise(raw)[:40]
        shown = codes.display(typed) if len(typed) == codes.CODE_LENGTH else typed
        return PublicCheque(Reason.INVALID_CODE, None, shown)
    cheque = (
        Cheque.objects.select_related("booklet__programme", "booklet__beneficiary")
        .filter(code=code)
        .first()
    )
    if cheque is None:
        return PublicCheque(Reason.UNKNOWN_CHEQUE, code, codes.display(code))
    state = _public_state(cheque, timezone.localdate())
    places, near_home = _places(cheque) if state == Reason.OK else ([], False)
    return PublicCheque(state, code, codes.display(code), cheque, places, near_home)


def _directory_url(cheque: Cheque | None) -> str:
    """The public directory, in the holder's département when the hand-over recorded it.

    Not their postcode: whoever finds a cheque must not learn where its holder lives.
    """
    url = reverse("directory:search")
    booklet = cheque.booklet if cheque is not None else None
    if booklet is not None and booklet.beneficiary_id:
        departement = (
            Postcode.objects.filter(code=booklet.beneficiary.postcode)
            .values_list("departement", flat=True)
            .first()
        )
        if departement:
            url += "?" + urlencode({"departement": departement})
    return url


@never_cache
@require_safe
def public_cheque(request: HttpRequest, code: str) -> HttpResponse:
    """« Mon chèque est-il valable ? » — the page the cheque's QR code opens. No login."""
    ip = client_ip(request)
    try:
        public_limit(ip)
    except RateLimited as limited:
        response = render(
            request,
            "redemption/public_limited.html",
            {"retry_after": limited.retry_after},
            status=429,
        )
        return _retry_after(response, limited.retry_after)
    found = _public_lookup(code)
    if found.state != Reason.OK:
        verdict = Verdict(code[:40], found.code, found.state, "", found.cheque)
        scan_attempts_record(
            actor=Actor(user=None, ip=ip), verdicts=[verdict], kind="public", organisation=None
        )
    can_redeem = found.cheque is not None and membership_has_permission(
        getattr(request, "membership", None), "cheques:redeem"
    )
    status = {Reason.INVALID_CODE: 400, Reason.UNKNOWN_CHEQUE: 404}.get(found.state, 200)
    return render(
        request,
        "redemption/public_cheque.html",
        {
            "found": found,
            "cheque": found.cheque,
            "programme": found.cheque.booklet.programme if found.cheque else None,
            "redeem_url": (
                f"{reverse('redemption:counter')}?code={found.code}" if can_redeem else ""
            ),
            "directory_url": _directory_url(found.cheque),
        },
        status=status,
    )


@membership_required("settlement:view")
def fraud_alerts(request: HttpRequest) -> HttpResponse:
    """Operators: organisations locked out of redemption and the failed scans behind it."""
    return render(
        request,
        "redemption/fraud_alerts.html",
        selectors.fraud_signals(membership=request.membership),
    )
