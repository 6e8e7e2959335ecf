"""The dashboards' figures, per role, for a period of whole months and optionally a programme.

Funders and operators read the monthly tallies (``insight.models.Tally``): a few GROUP BY
queries over small tables, whatever the number of cheques. A distributor's and a provider's
dashboards read their own rows live (booklets they hold, redemptions they made), through the
indexes on ``holder`` and ``provider``. Every function runs a fixed number of queries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time

from django.db.models import Count, DateField, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from orgs.models import Accreditation, AccreditationStatus, Membership, Organisation
from redemption.models import (
    BatchStatus,
    Payout,
    PayoutStatus,
    RedemptionLine,
    RedemptionStatus,
)
from vouchers.models import AgeBracket, Booklet, Programme, Situation
from vouchers.selectors.stock import held_stock

from .charts import BAR, CENTS, LINE, PERCENT, STACKED, Chart, Series
from .models import Dimension, Measure, Snapshot, Tally

TOP = 15  # bars of a breakdown; the rest adds up in « Autres »
TOP_SCANNERS = 6


@dataclass(frozen=True)
class Period:
    """Whole months, from ``start`` to ``end`` included (both the first day of their month)."""

    start: date
    end: date

    @property
    def months(self) -> list[date]:
        months, current = [], self.start
        while current <= self.end:
            months.append(current)
            current = next_month(current)
        return months

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=timezone.get_current_timezone())

    @property
    def until(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(
            next_month(self.end), time.min, tzinfo=timezone.get_current_timezone()
        )


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def month_label(day: date) -> str:
    return date_format(day, "N Y")


@dataclass
class Figure:
    """A headline number of a dashboard."""

    label: str
    value: float
    unit: str = "count"


@dataclass
class Dashboard:
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


def _month_series(period: Period, values: dict[date, float], label: str) -> Series:
    return Series(label, [values.get(month, 0) for month in period.months])


def _top(
    pairs: list[tuple[str, float]], *, limit: int = TOP, other: str = ""
) -> list[tuple[str, float]]:
    """The largest ``limit`` entries, then their rest summed under « Autres »."""
    pairs = sorted(pairs, key=lambda pair: (-pair[1], pair[0]))
    if len(pairs) <= limit:
        return pairs
    rest = sum(value for _label, value in pairs[limit - 1 :])
    return [*pairs[: limit - 1], (other or _("Autres"), rest)]


def _bar(chart_id: str, title: str, pairs: list[tuple[str, float]], series: str, **kw) -> Chart:
    return Chart(
        id=chart_id,
        title=title,
        categories=[label for label, _value in pairs],
        series=[Series(series, [value for _label, value in pairs])],
        kind=BAR,
        **kw,
    )


# --- Filters' choices ------------------------------------------------------------------------


def dashboard_programmes(*, membership: Membership, role: str) -> QuerySet[Programme]:
    """The programmes a dashboard may be filtered on: never another organisation's."""
    organisation = membership.organisation
    if role == "operator" and organisation.is_operator:
        programmes = Programme.objects.all()
    elif role == "funder" and organisation.is_funder:
        programmes = Programme.objects.filter(funder=organisation)
    elif role == "distributor" and organisation.is_distributor:
        # Ids first, through the holder index: as a subquery inside the select's cursor,
        # PostgreSQL picks a fast-start plan that scans every booklet.
        ids = set(
            Booklet.objects.filter(holder=organisation)
            .order_by()
            .values_list("programme_id", flat=True)
            .distinct()
        )
        programmes = Programme.objects.filter(pk__in=ids)
    elif role == "provider" and organisation.is_provider:
        ids = set(
            RedemptionLine.objects.filter(redemption__provider=organisation)
            .order_by()
            .values_list("cheque__booklet__programme_id", flat=True)
            .distinct()
        )
        programmes = Programme.objects.filter(pk__in=ids)
    else:
        programmes = Programme.objects.none()
    return programmes.order_by("name", "pk")


def dashboard_funders(*, membership: Membership) -> QuerySet[Organisation]:
    if not membership.organisation.is_operator:
        return Organisation.objects.none()
    return Organisation.objects.filter(is_funder=True).order_by("name")


def snapshot_get() -> Snapshot | None:
    return Snapshot.objects.filter(pk=1).first()


# --- Funders and operators: from the tallies -------------------------------------------------


def _funding_scope(
    *,
    membership: Membership,
    role: str,
    period: Period,
    programme: Programme | None,
    funder: Organisation | None,
) -> QuerySet[Tally]:
    organisation = membership.organisation
    tallies = Tally.objects.filter(month__gte=period.start, month__lte=period.end)
    if role == "operator" and organisation.is_operator:
        if funder is not None:
            tallies = tallies.filter(funder=funder)
    elif role == "funder" and organisation.is_funder:
        tallies = tallies.filter(funder=organisation)
    else:
        return Tally.objects.none()
    if programme is not None:
        tallies = tallies.filter(programme=programme)
    return tallies


def funding_dashboard(
    *,
    membership: Membership,
    role: str,
    period: Period,
    programme: Programme | None = None,
    funder: Organisation | None = None,
) -> Dashboard:
    """A funder's cheques over time and their redemptions broken down (operators: all funders').

    Three queries: the monthly series, the breakdowns, the names of the services.
    """
    from orgs.models import ServiceCategory

    scope = _funding_scope(
        membership=membership, role=role, period=period, programme=programme, funder=funder
    )
    monthly: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    amounts: dict[str, int] = defaultdict(int)
    booklets: dict[str, int] = defaultdict(int)
    time_rows = (
        scope.filter(
            Q(
                measure__in=[
                    Measure.ISSUED,
                    Measure.HANDED_OUT,
                    Measure.EXPIRED,
                    Measure.HANDED_REDEEMED,
                ]
            )
            | Q(measure=Measure.REDEEMED, dimension=Dimension.SERVICE)
        )
        .values("measure", "month")
        .annotate(quantity=Sum("quantity"), amount=Sum("amount_cents"), booklets=Sum("booklets"))
        .order_by()
    )
    for row in time_rows:
        monthly[row["measure"]][row["month"]] += row["quantity"]
        amounts[row["measure"]] += row["amount"]
        booklets[row["measure"]] += row["booklets"]

    breakdown: dict[str, dict[tuple, list[int]]] = defaultdict(dict)
    breakdown_rows = (
        scope.filter(measure=Measure.REDEEMED)
        .values("dimension", "key", "organisation_id", "organisation__name")
        .annotate(quantity=Sum("quantity"), amount=Sum("amount_cents"))
        .order_by()
    )
    for row in breakdown_rows:
        key = (row["key"], row["organisation_id"], row["organisation__name"])
        breakdown[row["dimension"]][key] = [row["quantity"], row["amount"]]
    service_keys = [int(k[0]) for k in breakdown[Dimension.SERVICE] if k[0].isdigit()]
    service_names = (
        dict(ServiceCategory.objects.filter(pk__in=service_keys).values_list("pk", "name"))
        if service_keys
        else {}
    )

    total = {measure: sum(values.values()) for measure, values in monthly.items()}
    handed, handed_redeemed = (
        total.get(Measure.HANDED_OUT, 0),
        total.get(Measure.HANDED_REDEEMED, 0),
    )
    figures = [
        Figure(_("Chèques émis"), total.get(Measure.ISSUED, 0)),
        Figure(_("Chèques remis"), handed),
        Figure(_("Chéquiers remis"), booklets.get(Measure.HANDED_OUT, 0)),
        Figure(_("Chèques encaissés"), total.get(Measure.REDEEMED, 0)),
        Figure(_("Montant encaissé"), amounts.get(Measure.REDEEMED, 0), CENTS),
        Figure(_("Chèques expirés"), total.get(Measure.EXPIRED, 0)),
        Figure(
            _("Taux d'encaissement des chèques remis"),
            round(100 * handed_redeemed / handed, 1) if handed else 0,
            PERCENT,
        ),
    ]
    categories = [month_label(month) for month in period.months]
    charts = [
        Chart(
            id="cheques-par-mois",
            title=_("Chèques émis, remis, encaissés et expirés, par mois"),
            categories=categories,
            series=[
                _month_series(period, monthly[Measure.ISSUED], _("Émis")),
                _month_series(period, monthly[Measure.HANDED_OUT], _("Remis")),
                _month_series(period, monthly[Measure.REDEEMED], _("Encaissés")),
                _month_series(period, monthly[Measure.EXPIRED], _("Expirés")),
            ],
            kind=LINE,
            category_label=_("Mois"),
        ),
        Chart(
            id="taux-encaissement",
            title=_("Taux d'encaissement des chèques remis, par mois de remise"),
            categories=categories,
            series=[
                Series(
                    _("Chèques encaissés parmi les remis"),
                    [
                        round(
                            100
                            * monthly[Measure.HANDED_REDEEMED].get(month, 0)
                            / monthly[Measure.HANDED_OUT][month],
                            1,
                        )
                        if monthly[Measure.HANDED_OUT].get(month)
                        else 0
                        for month in period.months
                    ],
                )
            ],
            kind=BAR,
            unit=PERCENT,
            category_label=_("Mois de remise"),
            notes=[
                _("Part des chèques des chéquiers remis ce mois-là qui ont été encaissés depuis.")
            ],
        ),
    ]

    def pairs(dimension: str, label) -> list[tuple[str, float]]:
        merged: dict[str, float] = defaultdict(int)
        for key, (quantity, _amount) in breakdown[dimension].items():
            merged[label(key)] += quantity
        return list(merged.items())

    not_given = _("Non renseignée")
    redeemed = _("Chèques encaissés")
    situation_labels = dict(Situation.choices)
    by_age = dict(pairs(Dimension.AGE_BRACKET, lambda k: k[0]))
    by_situation = dict(pairs(Dimension.SITUATION, lambda k: k[0]))
    charts += [
        _bar(
            "par-service",
            _("Chèques encaissés par service"),
            _top(
                pairs(
                    Dimension.SERVICE,
                    lambda k: service_names.get(int(k[0]), k[0]) if k[0].isdigit() else k[0],
                )
            ),
            redeemed,
            category_label=_("Service"),
        ),
        _bar(
            "par-departement",
            _("Chèques encaissés par département du lieu"),
            _top(pairs(Dimension.DEPARTEMENT, lambda k: k[0] or not_given)),
            redeemed,
            category_label=_("Département"),
        ),
        _bar(
            "par-code-postal",
            _("Chèques encaissés par code postal du lieu"),
            _top(pairs(Dimension.POSTCODE, lambda k: k[0] or not_given)),
            redeemed,
            category_label=_("Code postal"),
        ),
        _bar(
            "par-structure",
            _("Chèques encaissés par structure relais"),
            _top(pairs(Dimension.DISTRIBUTOR, lambda k: k[2] or _("Sans structure relais"))),
            redeemed,
            category_label=_("Structure relais"),
        ),
        _bar(
            "par-age",
            _("Chèques encaissés par tranche d'âge des bénéficiaires"),
            [(str(label), by_age.get(value, 0)) for value, label in AgeBracket.choices],
            redeemed,
            category_label=_("Tranche d'âge"),
        ),
        _bar(
            "par-situation",
            _("Chèques encaissés par situation des bénéficiaires"),
            _top(
                [
                    (str(situation_labels.get(value, value)) if value else not_given, count)
                    for value, count in by_situation.items()
                ]
            ),
            redeemed,
            category_label=_("Situation"),
        ),
    ]
    return Dashboard(figures=figures, charts=charts)


def operator_dashboard_extras(*, membership: Membership, period: Period) -> Dashboard:
    """Operators: applications for accreditation by state, refused scans per organisation."""
    if not membership.organisation.is_operator:
        return Dashboard()
    by_status = dict(
        Accreditation.objects.values_list("status").annotate(count=Count("pk")).order_by()
    )
    scans: dict[tuple[int | None, str], dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        Tally.objects.filter(
            measure=Measure.FAILED_SCANS, month__gte=period.start, month__lte=period.end
        )
        .values("month", "organisation_id", "organisation__name")
        .annotate(quantity=Sum("quantity"))
        .order_by()
    ):
        name = row["organisation__name"] or _("Page publique (sans compte)")
        scans[(row["organisation_id"], name)][row["month"]] += row["quantity"]
    ranked = sorted(scans.items(), key=lambda item: (-sum(item[1].values()), item[0][1]))
    series = [_month_series(period, months, name) for (_pk, name), months in ranked[:TOP_SCANNERS]]
    if len(ranked) > TOP_SCANNERS:
        rest: dict[date, int] = defaultdict(int)
        for _key, months in ranked[TOP_SCANNERS:]:
            for month, count in months.items():
                rest[month] += count
        series.append(_month_series(period, rest, _("Autres")))
    figures = [
        Figure(
            _("Demandes de qualification à examiner"),
            sum(
                by_status.get(s, 0)
                for s in (AccreditationStatus.SUBMITTED, AccreditationStatus.IN_REVIEW)
            ),
        ),
        Figure(_("Lieux qualifiés"), by_status.get(AccreditationStatus.APPROVED, 0)),
        Figure(_("Scans refusés sur la période"), sum(sum(m.values()) for m in scans.values())),
    ]
    charts = [
        _bar(
            "qualifications",
            _("Demandes de qualification par état (aujourd'hui)"),
            [(str(label), by_status.get(value, 0)) for value, label in AccreditationStatus.choices],
            _("Demandes"),
            category_label=_("État"),
        ),
        Chart(
            id="scans-refuses",
            title=_("Scans refusés par organisation et par mois"),
            categories=[month_label(month) for month in period.months],
            series=series or [Series(_("Scans refusés"), [0] * len(period.months))],
            kind=STACKED,
            category_label=_("Mois"),
            notes=[_("Les organisations qui ont le plus de scans refusés sur la période.")],
        ),
    ]
    return Dashboard(figures=figures, charts=charts)


# --- Distributors and providers: their own rows, live ----------------------------------------


def distributor_dashboard(
    *, membership: Membership, period: Period, programme: Programme | None = None
) -> Dashboard:
    """A distributor's stock today, and its hand-outs over the period, per month and per agent."""
    organisation = membership.organisation
    if not organisation.is_distributor:
        return Dashboard()
    stock = [
        row
        for row in held_stock(membership=membership)
        if programme is None or row.programme_id == programme.pk
    ]
    handed = Booklet.objects.filter(
        holder=organisation, assigned_at__gte=period.since, assigned_at__lt=period.until
    )
    if programme is not None:
        handed = handed.filter(programme=programme)
    per_month = {
        row["month"]: row
        for row in handed.values(month=TruncMonth("assigned_at", output_field=DateField()))
        .annotate(booklets=Count("pk"), cheques=Sum("size"))
        .order_by()
    }
    per_agent = [
        (row["assigned_by__full_name"] or row["assigned_by__email"] or _("Inconnu"), row)
        for row in handed.values("assigned_by_id", "assigned_by__full_name", "assigned_by__email")
        .annotate(booklets=Count("pk"))
        .order_by("-booklets", "assigned_by__full_name")
    ]
    stock_labels = [f"{row.programme_name} ({row.size})" for row in stock]
    figures = [
        Figure(_("Chéquiers à remettre"), sum(row.allocated for row in stock)),
        Figure(_("Chéquiers remis (depuis le début)"), sum(row.assigned for row in stock)),
        Figure(_("Chéquiers remis sur la période"), sum(r["booklets"] for r in per_month.values())),
        Figure(_("Chèques remis sur la période"), sum(r["cheques"] for r in per_month.values())),
    ]
    charts = [
        Chart(
            id="stock",
            title=_("Votre stock de chéquiers par programme (aujourd'hui)"),
            categories=stock_labels,
            series=[
                Series(_("À remettre"), [row.allocated for row in stock]),
                Series(_("Remis"), [row.assigned for row in stock]),
                Series(_("Bloqués"), [row.blocked for row in stock]),
            ],
            kind=STACKED,
            category_label=_("Programme (chèques par chéquier)"),
        ),
        Chart(
            id="remises-par-mois",
            title=_("Chéquiers remis par mois"),
            categories=[month_label(month) for month in period.months],
            series=[
                Series(
                    _("Chéquiers remis"),
                    [per_month.get(m, {}).get("booklets", 0) for m in period.months],
                )
            ],
            kind=BAR,
            category_label=_("Mois"),
        ),
        Chart(
            id="remises-par-agent",
            title=_("Chéquiers remis par agent sur la période"),
            categories=[name for name, _row in per_agent],
            # Booklets only: cheques (ten times more) on the same axis flattened the booklets.
            series=[
                Series(_("Chéquiers remis"), [row["booklets"] for _name, row in per_agent]),
            ],
            kind=BAR,
            category_label=_("Agent"),
        ),
    ]
    return Dashboard(figures=figures, charts=charts)


def provider_dashboard(
    *, membership: Membership, period: Period, programme: Programme | None = None
) -> Dashboard:
    """A provider's redeemed cheques per month and per service, and its payouts."""
    organisation = membership.organisation
    if not organisation.is_provider:
        return Dashboard()
    lines = RedemptionLine.objects.filter(
        redemption__provider=organisation,
        redemption__status=RedemptionStatus.ACTIVE,
        live=True,
        redemption__created_at__gte=period.since,
        redemption__created_at__lt=period.until,
    )
    if programme is not None:
        lines = lines.filter(cheque__booklet__programme=programme)
    cells: dict[tuple[date, str], list[int]] = {}
    for row in (
        lines.values(
            "redemption__service__name",
            month=TruncMonth("redemption__created_at", output_field=DateField()),
        )
        .annotate(quantity=Count("pk"), amount=Sum("value_cents"))
        .order_by()
    ):
        cells[(row["month"], row["redemption__service__name"])] = [
            row["quantity"],
            row["amount"],
        ]
    services = sorted({service for _month, service in cells}, key=str.casefold)
    months = period.months
    payouts: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        Payout.objects.filter(
            provider=organisation,
            batch__period_end__gte=period.start,
            batch__period_end__lt=next_month(period.end),
        )
        # As on the provider's payouts page: a batch still being computed shows nothing yet.
        .exclude(batch__status=BatchStatus.COMPUTING)
        .values("status", month=TruncMonth("batch__period_end", output_field=DateField()))
        .annotate(amount=Sum("amount_cents"))
        .order_by()
    ):
        payouts[row["status"]][row["month"]] += row["amount"]

    def per_month(service: str | None, index: int) -> list[int]:
        return [
            sum(
                value[index]
                for (month, name), value in cells.items()
                if month == m and (service is None or name == service)
            )
            for m in months
        ]

    categories = [month_label(month) for month in months]
    figures = [
        Figure(_("Chèques encaissés sur la période"), sum(v[0] for v in cells.values())),
        Figure(_("Montant encaissé sur la période"), sum(v[1] for v in cells.values()), CENTS),
        Figure(
            _("Remboursé sur la période"),
            sum(payouts[PayoutStatus.PAID].values()),
            CENTS,
        ),
    ]
    charts = [
        Chart(
            id="encaissements-par-mois",
            title=_("Chèques encaissés par mois et par service"),
            categories=categories,
            series=[Series(service, per_month(service, 0)) for service in services]
            or [Series(_("Chèques encaissés"), [0] * len(months))],
            kind=STACKED,
            category_label=_("Mois"),
        ),
        Chart(
            id="montant-par-mois",
            title=_("Montant encaissé par mois"),
            categories=categories,
            series=[Series(_("Montant encaissé"), per_month(None, 1))],
            kind=BAR,
            unit=CENTS,
            category_label=_("Mois"),
        ),
        _bar(
            "par-service",
            _("Chèques encaissés par service sur la période"),
            sorted(
                (
                    (service, sum(v[0] for (m, s), v in cells.items() if s == service))
                    for service in services
                ),
                key=lambda pair: -pair[1],
            ),
            _("Chèques encaissés"),
            category_label=_("Service"),
        ),
        Chart(
            id="remboursements",
            title=_("Vos remboursements, par mois de la période remboursée"),
            categories=categories,
            series=[
                _month_series(period, payouts[status], str(label))
                for status, label in PayoutStatus.choices
            ],
            kind=STACKED,
            unit=CENTS,
            category_label=_("Mois"),
            notes=[_("Tous programmes confondus : un remboursement couvre tous vos chèques.")],
        ),
    ]
    return Dashboard(figures=figures, charts=charts)
