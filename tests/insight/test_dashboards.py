"""Dashboards: figures equal to the raw tables, fixed query counts, tenancy, bad filters."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from insight.models import Snapshot, Tally
from insight.selectors import month_label
from insight.services import insight_refresh
from orgs.models import MemberRole
from redemption.models import Payout, RedemptionLine
from redemption.services.settlement import batch_compute, batch_create
from tests.factories import MembershipFactory
from tests.insight.helpers import funded_world
from tests.vouchers.helpers import actor_for, operator_membership
from vouchers.models import AgeBracket, Booklet, Cheque, ChequeStatus, Situation

pytestmark = pytest.mark.django_db

FUNDER = reverse("insight:funder")
OPERATOR = reverse("insight:operator")
DISTRIBUTOR = reverse("insight:distributor")
PROVIDER = reverse("insight:provider")


@pytest.fixture(autouse=True)
def _french():
    with translation.override("fr"):
        yield


def _month(moment) -> date:
    return timezone.localtime(moment).date().replace(day=1)


def charts(response) -> dict:
    assert response.status_code == 200, response.content.decode()[:500]
    return {c.id: c for s in response.context["sections"] for c in s["dashboard"].charts}


def figures(response) -> dict:
    return {f.label: f.value for s in response.context["sections"] for f in s["dashboard"].figures}


def values(chart, series: int = 0) -> dict:
    """The chart's non-zero figures by category."""
    return {
        category: value
        for category, value in zip(chart.categories, chart.series[series].values, strict=True)
        if value
    }


def _lines_of(funder_org):
    """Live redemption lines of the funder's cheques, read row by row (no GROUP BY)."""
    return [
        line
        for line in RedemptionLine.objects.select_related(
            "redemption__service",
            "redemption__site",
            "cheque__booklet__holder",
            "cheque__booklet__beneficiary",
        )
        if line.live and line.cheque.booklet.funder_id == funder_org.pk
    ]


def test_a_funders_figures_equal_counts_made_from_the_raw_tables(client_for):
    world = funded_world(booklets=4, redeem_per_booklet=3)
    other = funded_world(booklets=2, redeem_per_booklet=2, offset=50)
    insight_refresh()

    response = client_for(world.funder).get(FUNDER)
    shown = charts(response)
    funder = world.funder.organisation
    lines = _lines_of(funder)
    booklets = list(Booklet.objects.filter(funder=funder))
    cheques = list(Cheque.objects.filter(booklet__funder=funder))

    assert len(lines) == world.redeemed == 12
    over_time = shown["cheques-par-mois"]
    issued, handed, redeemed, expired = (values(over_time, n) for n in range(4))
    issued_by_month = Counter()
    for booklet in booklets:
        issued_by_month[month_label(_month(booklet.created_at))] += booklet.size
    assert issued == issued_by_month
    assert handed == {month_label(_month(b.assigned_at)): b.size for b in booklets if b.assigned_at}
    assert redeemed == Counter(month_label(_month(line.redemption.created_at)) for line in lines)
    assert expired == Counter(
        month_label(c.expires_on.replace(day=1))
        for c in cheques
        if c.status == ChequeStatus.EXPIRED
    )
    assert values(shown["par-service"]) == Counter(line.redemption.service.name for line in lines)
    assert values(shown["par-code-postal"]) == Counter(
        line.redemption.site.postcode for line in lines
    )
    assert values(shown["par-departement"]) == Counter(
        line.redemption.site.departement for line in lines
    )
    assert values(shown["par-structure"]) == Counter(
        line.cheque.booklet.holder.name for line in lines
    )
    age_labels, situation_labels = dict(AgeBracket.choices), dict(Situation.choices)
    assert values(shown["par-age"]) == Counter(
        str(age_labels[line.cheque.booklet.beneficiary.age_bracket]) for line in lines
    )
    assert values(shown["par-situation"]) == Counter(
        str(situation_labels.get(line.cheque.booklet.beneficiary.situation, "Non renseignée"))
        for line in lines
    )
    # The rate: redeemed cheques of the booklets handed out each month, over their cheques.
    rate = values(shown["taux-encaissement"])
    for booklet in booklets:
        if booklet.assigned_at:
            used = sum(1 for c in cheques if c.booklet_id == booklet.pk and c.status == "redeemed")
            assert rate[month_label(_month(booklet.assigned_at))] == round(
                100 * used / booklet.size, 1
            )
    headline = figures(response)
    assert headline["Chèques encaissés"] == 12
    assert headline["Montant encaissé"] == sum(line.value_cents for line in lines)
    assert headline["Taux d'encaissement des chèques remis"] == round(100 * 12 / 20, 1)
    # What a person reads: the figures in the page's table view, the other funder's nowhere.
    text = unescape(response.content.decode())
    assert world.services[0].name in text and "Chèques encaissés par service" in text
    assert other.programme.name not in text
    assert other.services[1].name not in text


def test_a_funder_never_sees_another_funders_figures(client_for):
    first = funded_world(booklets=3, redeem_per_booklet=1)
    second = funded_world(booklets=2, redeem_per_booklet=4, offset=50)
    insight_refresh()

    assert figures(client_for(first.funder).get(FUNDER))["Chèques encaissés"] == 3
    assert figures(client_for(second.funder).get(FUNDER))["Chèques encaissés"] == 8

    # Another funder's programme in the filter: a field error, and no figure at all.
    response = client_for(first.funder).get(FUNDER, {"programme": second.programme.pk})
    assert response.status_code == 400
    assert "Ce programme n'existe pas ou ne vous concerne pas." in unescape(response.text)
    assert "sections" not in response.context
    assert "<svg" not in response.text


def test_operators_see_every_funder_and_may_narrow_to_one(client_for):
    first = funded_world(booklets=3, redeem_per_booklet=1)
    second = funded_world(booklets=2, redeem_per_booklet=4, offset=50)
    operator = operator_membership()
    insight_refresh()
    client = client_for(operator)

    assert figures(client.get(OPERATOR))["Chèques encaissés"] == 11
    narrowed = client.get(OPERATOR, {"commanditaire": second.funder.organisation.pk})
    assert figures(narrowed)["Chèques encaissés"] == 8
    by_programme = client.get(OPERATOR, {"programme": first.programme.pk})
    assert figures(by_programme)["Chèques encaissés"] == 3
    mismatch = client.get(
        OPERATOR,
        {"commanditaire": second.funder.organisation.pk, "programme": first.programme.pk},
    )
    assert mismatch.status_code == 400
    assert "Ce programme n'est pas financé par ce commanditaire." in unescape(mismatch.text)


def test_operators_see_accreditations_by_state_and_refused_scans_per_provider(client_for):
    world = funded_world(booklets=2, redeem_per_booklet=1)
    insight_refresh()
    shown = charts(client_for(operator_membership()).get(OPERATOR))

    assert values(shown["qualifications"]) == {"Qualifié": 1}
    scans = shown["scans-refuses"]
    assert [s.label for s in scans.series] == [world.provider.organisation.name]
    assert values(scans) == {month_label(timezone.localdate().replace(day=1)): 2}


def test_a_provider_sees_only_its_own_redemptions_and_payouts(client_for):
    world = funded_world(booklets=3, redeem_per_booklet=2)
    funded_world(booklets=2, redeem_per_booklet=3, offset=50)  # another provider's
    operator = operator_membership()
    batch = batch_create(
        actor=actor_for(operator), period_end=timezone.localdate() - timedelta(days=1)
    )
    batch_compute(batch_id=batch.pk)
    payout = Payout.objects.get(provider=world.provider.organisation)

    response = client_for(world.provider).get(PROVIDER)
    shown = charts(response)
    lines = [
        line
        for line in RedemptionLine.objects.select_related("redemption__service")
        if line.redemption.provider_id == world.provider.organisation_id
    ]
    assert len(lines) == 6
    per_service = Counter(line.redemption.service.name for line in lines)
    assert values(shown["par-service"]) == per_service
    stacked = shown["encaissements-par-mois"]
    for index, series in enumerate(stacked.series):
        assert values(stacked, index) == Counter(
            month_label(_month(line.redemption.created_at))
            for line in lines
            if line.redemption.service.name == series.label
        )
    amount = sum(line.value_cents for line in lines)
    assert sum(shown["montant-par-mois"].series[0].values) == amount
    payouts = shown["remboursements"]
    assert values(payouts, 0) == {month_label(batch.period_end.replace(day=1)): payout.amount_cents}
    assert figures(response)["Chèques encaissés sur la période"] == 6


def test_a_provider_sees_no_payout_of_a_batch_still_being_computed(client_for):
    """As on its payouts page: amounts of a batch in computation are not shown yet."""
    from redemption.models import BatchStatus, SettlementBatch

    world = funded_world(booklets=2, redeem_per_booklet=2)
    batch = batch_create(
        actor=actor_for(operator_membership()),
        period_end=timezone.localdate() - timedelta(days=1),
    )
    batch_compute(batch_id=batch.pk)
    assert Payout.objects.filter(provider=world.provider.organisation).exists()
    SettlementBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.COMPUTING)

    shown = charts(client_for(world.provider).get(PROVIDER))

    assert all(not any(series.values) for series in shown["remboursements"].series)


def test_a_distributor_sees_its_stock_and_each_agents_hand_outs(client_for):
    world = funded_world(booklets=3, redeem_per_booklet=0)
    response = client_for(world.funder).get(DISTRIBUTOR)
    shown = charts(response)
    held = list(Booklet.objects.filter(holder=world.funder.organisation))

    assert values(shown["stock"], 1) == {f"{world.programme.name} (5)": len(held)}
    by_agent = Counter(b.assigned_by.full_name for b in held if b.assigned_by)
    assert values(shown["remises-par-agent"]) == by_agent
    assert values(shown["remises-par-mois"]) == Counter(
        month_label(_month(b.assigned_at)) for b in held
    )
    assert figures(response)["Chéquiers remis sur la période"] == 3


@pytest.mark.parametrize(
    ("role", "url"),
    [
        ("funder", FUNDER),
        ("operator", OPERATOR),
        ("distributor", DISTRIBUTOR),
        ("provider", PROVIDER),
    ],
)
def test_the_number_of_queries_does_not_grow_with_the_data(role, url, client_for):
    def queries(world) -> int:
        member = {
            "funder": world.funder,
            "distributor": world.funder,
            "provider": world.provider,
            "operator": operator_membership(),
        }[role]
        client = client_for(member)
        client.get(url)  # session and membership caches warm
        insight_refresh()
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = queries(funded_world(booklets=1, redeem_per_booklet=1))
    large = queries(funded_world(booklets=6, redeem_per_booklet=4, offset=50))
    assert large == small


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"du": "2026-13"}, "du", "Indiquez un mois sous la forme AAAA-MM"),
        ({"au": "demain"}, "au", "Indiquez un mois sous la forme AAAA-MM"),
        ({"du": "1800-01"}, "du", "Indiquez un mois sous la forme AAAA-MM"),
        ({"du": "2026-06", "au": "2026-01"}, "au", "Le mois de fin doit suivre le mois de début."),
        ({"du": "2010-01", "au": "2026-01"}, "du", "La période ne peut pas dépasser 60 mois."),
        ({"programme": "abc"}, "programme", "Ce programme n'existe pas ou ne vous concerne pas."),
        ({"programme": "99999999"}, "programme", "Ce programme n'existe pas"),
    ],
)
def test_bad_filters_get_a_french_field_error_and_no_figures(params, field, message, client_for):
    world = funded_world(booklets=1, redeem_per_booklet=1)
    for url, member in ((FUNDER, world.funder), (PROVIDER, world.provider)):
        response = client_for(member).get(url, params)

        assert response.status_code == 400
        assert message in response.context["form"].errors[field][0]
        assert message in unescape(response.text)
        assert "<svg" not in response.text


def test_the_period_filter_keeps_only_its_months(client_for):
    world = funded_world(booklets=3, redeem_per_booklet=1)
    insight_refresh()
    two_months_ago = timezone.localdate().replace(day=1) - timedelta(days=40)
    month = f"{two_months_ago:%Y-%m}"

    response = client_for(world.funder).get(FUNDER, {"du": month, "au": month})
    shown = charts(response)
    assert shown["cheques-par-mois"].categories == [month_label(two_months_ago.replace(day=1))]
    assert figures(response)["Chèques encaissés"] == 1


def test_each_role_reaches_only_its_dashboards(client_for):
    world = funded_world(booklets=1, redeem_per_booklet=1)
    provider = client_for(world.provider)

    assert provider.get(reverse("insight:dashboard")).url == PROVIDER
    assert provider.get(FUNDER).status_code == 403
    assert provider.get(OPERATOR).status_code == 403
    assert provider.get(DISTRIBUTOR).status_code == 403
    funder = client_for(world.funder)  # funds and distributes
    assert funder.get(reverse("insight:dashboard")).url == FUNDER
    assert funder.get(OPERATOR).status_code == 403
    tabs = funder.get(FUNDER).text
    assert DISTRIBUTOR in tabs and PROVIDER not in tabs
    agent = MembershipFactory(organisation=world.funder.organisation, role=MemberRole.AGENT)
    assert client_for(agent).get(FUNDER).status_code == 200


def test_rebuilding_twice_gives_the_same_tallies():
    funded_world(booklets=2, redeem_per_booklet=2)
    insight_refresh()
    first = sorted(
        Tally.objects.values_list(
            "month", "measure", "dimension", "key", "quantity", "amount_cents"
        )
    )
    snapshot = insight_refresh()

    assert first == sorted(
        Tally.objects.values_list(
            "month", "measure", "dimension", "key", "quantity", "amount_cents"
        )
    )
    assert snapshot.rows == len(first) and Snapshot.objects.count() == 1


def test_stale_figures_queue_one_rebuild_and_fresh_ones_none(
    client_for, django_capture_on_commit_callbacks
):
    world = funded_world(booklets=1, redeem_per_booklet=1)
    client = client_for(world.funder)

    with django_capture_on_commit_callbacks(execute=True) as queued:
        first = client.get(FUNDER)
        client.get(FUNDER)
    assert "en cours de calcul" in first.text
    assert len(queued) == 1  # the second view found the rebuild already queued
    assert figures(client.get(FUNDER))["Chèques encaissés"] == 1
    assert "Chiffres arrêtés le" in client.get(FUNDER).text

    with django_capture_on_commit_callbacks() as queued:
        client.get(FUNDER)
    assert queued == []  # fresh


def test_figures_move_only_when_the_tallies_are_rebuilt(client_for):
    world = funded_world(booklets=2, redeem_per_booklet=1)
    insight_refresh()
    client = client_for(world.funder)
    assert figures(client.get(FUNDER))["Chèques expirés"] == 4

    Cheque.objects.filter(booklet__funder=world.funder.organisation, status="active").update(
        status=ChequeStatus.EXPIRED, expires_on=timezone.localdate()
    )
    assert figures(client.get(FUNDER))["Chèques expirés"] == 4
    insight_refresh()
    assert figures(client.get(FUNDER))["Chèques expirés"] == 8
