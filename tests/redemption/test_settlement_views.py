"""Settlement screens: the operator's batches from computation to payment, the provider's payouts
and statements, the payouts API, and the demo seed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from orgs.models import Accreditation, BankStatus, MemberRole, Membership
from redemption.models import (
    BatchStatus,
    HeldProvider,
    Payout,
    PayoutStatus,
    Redemption,
    SettlementBatch,
)
from redemption.services.redeem import cheques_redeem
from redemption.services.settlement import (
    batch_approve,
    batch_compute,
    batch_create,
    batch_export,
    previous_month_end,
)
from redemption.services.statements import payout_statement_render
from tests.factories import MembershipFactory, OrganisationFactory
from tests.redemption.helpers import accredit, accredited_provider_member, handed_out_cheques
from tests.vouchers.helpers import actor_for, operator_membership

pytestmark = pytest.mark.django_db
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
APPROVE = "Approuver le lot"


@dataclass
class Settle:
    alpha: Membership  # a provider with 3 cheques redeemed (30 €)
    beta: Membership  # a provider with 2 cheques redeemed (20 €)
    operator: Membership  # operator admin who creates the batches
    second: Membership  # another operator admin (four eyes)

    @property
    def yesterday(self):
        return timezone.localdate() - timedelta(days=1)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world() -> Settle:
    cheques = handed_out_cheques(booklets=1, size=10)
    (alpha, alpha_site), (beta, beta_site) = (
        accredited_provider_member(services=[cheques.service]) for _ in range(2)
    )
    for member, site, codes in (
        (alpha, alpha_site, cheques.codes[:3]),
        (beta, beta_site, cheques.codes[3:5]),
    ):
        for code in codes:
            cheques_redeem(
                actor=actor_for(member), codes=[code], service=cheques.service, site=site
            )
    Redemption.objects.update(created_at=timezone.now() - timedelta(days=1))
    operator = operator_membership()
    second = MembershipFactory(organisation=operator.organisation, role=MemberRole.ADMIN)
    return Settle(alpha=alpha, beta=beta, operator=operator, second=second)


def computed(world: Settle, *, render: bool = True) -> SettlementBatch:
    batch = batch_create(actor=actor_for(world.operator), period_end=world.yesterday)
    batch = batch_compute(batch_id=batch.pk)
    if render:
        for payout in batch.payouts.all():
            payout_statement_render(payout_id=payout.pk)
    return batch


def exported(world: Settle) -> SettlementBatch:
    batch = batch_approve(actor=actor_for(world.second), batch=computed(world))
    return batch_export(
        actor=actor_for(world.second),
        batch=batch,
        execution_date=timezone.localdate() + timedelta(days=1),
    )


def detail_url(batch) -> str:
    return reverse("settlement:batch_detail", args=[batch.pk])


def _exported_payout_of(owner: Membership) -> Payout:
    """A payout to the owner's organisation in an exported batch, its statement rendered."""
    cheques = handed_out_cheques(booklets=1, size=5, people_offset=700)
    site = accredit(owner.organisation, [cheques.service])
    cheques_redeem(
        actor=actor_for(owner), codes=cheques.codes[:2], service=cheques.service, site=site
    )
    Redemption.objects.update(created_at=timezone.now() - timedelta(days=1))
    operator = operator_membership()
    second = MembershipFactory(organisation=operator.organisation, role=MemberRole.ADMIN)
    batch = batch_create(
        actor=actor_for(operator), period_end=timezone.localdate() - timedelta(days=1)
    )
    batch = batch_approve(actor=actor_for(second), batch=batch_compute(batch_id=batch.pk))
    batch_export(
        actor=actor_for(second),
        batch=batch,
        execution_date=timezone.localdate() + timedelta(days=1),
    )
    return payout_statement_render(
        payout_id=Payout.objects.get(batch=batch, provider=owner.organisation).pk
    )


def tenancy_payout_kwargs(owner: Membership) -> dict:
    """For the tenancy walk: a payout (with its statement) to the owner's organisation."""
    return {"pk": _exported_payout_of(owner).pk}


def tenancy_batch_kwargs(owner: Membership) -> dict:
    """For the tenancy walk: an exported batch paying the owner's organisation."""
    return {"pk": _exported_payout_of(owner).batch_id}


# --- Operator: list and detail ----------------------------------------------------------


def test_an_operator_computes_a_batch_from_the_list_and_reads_its_detail(
    world, client_for, django_capture_on_commit_callbacks
):
    client = client_for(world.operator)
    page = client.get(reverse("settlement:batch_list"))
    assert page.status_code == 200
    assert "Calculer un lot" in page.text
    assert f'value="{previous_month_end():%Y-%m-%d}"' in page.text  # the default period

    with django_capture_on_commit_callbacks(execute=True):  # the computation task, eagerly
        response = client.post(
            reverse("settlement:batch_list"), {"period_end": world.yesterday.isoformat()}
        )
    batch = SettlementBatch.objects.get()
    assert response.status_code == 302 and response.url == detail_url(batch)
    assert batch.status == BatchStatus.PENDING_APPROVAL and batch.created_by == world.operator.user

    page = client.get(detail_url(batch)).text
    assert f"Lot {batch.reference}" in page and "À approuver" in page
    assert "50,00\u00a0€" in page  # 30 € + 20 €
    for payout in batch.payouts.select_related("provider"):
        assert payout.provider.name in page
        assert payout.end_to_end_id in page
        assert reverse("settlement:statement_pdf", args=[payout.pk]) in page  # rendered on commit
    assert "•••• 0189" in page
    assert "FR7630006000011234567890189" not in page  # the IBAN is masked
    assert 'hx-trigger="every 2s"' not in page  # computed: no polling

    listing = client.get(reverse("settlement:batch_list")).text
    for shown in (batch.reference, "À approuver", "50,00\u00a0€", world.operator.user.full_name):
        assert shown in listing


def test_a_batch_still_computing_polls_its_progress_then_reloads_the_page(world, client_for):
    batch = batch_create(actor=actor_for(world.operator), period_end=world.yesterday)
    client = client_for(world.operator)
    page = client.get(detail_url(batch)).text
    progress_url = reverse("settlement:batch_progress", args=[batch.pk])
    assert f'hx-get="{progress_url}"' in page and 'hx-trigger="every 2s"' in page
    assert "Calcul en cours" in page and APPROVE not in page
    poll = client.get(progress_url, headers={"HX-Request": "true"})
    assert poll.status_code == 200 and "Calcul en cours" in poll.text

    batch_compute(batch_id=batch.pk)
    poll = client.get(progress_url, headers={"HX-Request": "true"})
    assert poll.headers["HX-Refresh"] == "true"


def test_a_provider_cannot_open_the_batch_pages(world, client_for):
    batch = computed(world, render=False)
    client = client_for(world.alpha)
    for url in (
        reverse("settlement:batch_list"),
        detail_url(batch),
        reverse("settlement:batch_progress", args=[batch.pk]),
        reverse("settlement:batch_sepa", args=[batch.pk]),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("settlement:batch_approve", args=[batch.pk])).status_code == 403
    assert SettlementBatch.objects.get().status == BatchStatus.PENDING_APPROVAL


def test_an_operator_agent_sees_batches_but_cannot_compute_nor_approve(world, client_for):
    batch = computed(world, render=False)
    agent = MembershipFactory(organisation=world.operator.organisation, role=MemberRole.AGENT)
    client = client_for(agent)
    listing = client.get(reverse("settlement:batch_list"))
    assert listing.status_code == 200 and "Calculer un lot" not in listing.text
    posted = client.post(
        reverse("settlement:batch_list"), {"period_end": world.yesterday.isoformat()}
    )
    assert posted.status_code == 403
    assert APPROVE not in client.get(detail_url(batch)).text


def test_the_creator_does_not_see_approve_and_is_refused_another_operator_approves(
    world, client_for
):
    batch = computed(world, render=False)
    creator = client_for(world.operator)
    page = creator.get(detail_url(batch)).text
    assert APPROVE not in page
    assert "un autre opérateur doit l'approuver" in page

    refused = creator.post(reverse("settlement:batch_approve", args=[batch.pk]), follow=True)
    assert "Un autre opérateur doit approuver le lot que vous avez créé." in refused.text
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PENDING_APPROVAL and batch.approved_by is None

    other = client_for(world.second)
    assert APPROVE in other.get(detail_url(batch)).text
    approved = other.post(reverse("settlement:batch_approve", args=[batch.pk]), follow=True)
    assert f"Lot {batch.reference} approuvé" in approved.text
    batch.refresh_from_db()
    assert batch.status == BatchStatus.APPROVED and batch.approved_by == world.second.user
    assert "Exporter le virement SEPA" in approved.text


def test_a_batch_of_the_monthly_schedule_can_be_approved_by_any_operator_admin(world, client_for):
    from orgs.audit import Actor

    batch = batch_create(actor=Actor.system(), period_end=world.yesterday)
    batch_compute(batch_id=batch.pk)
    page = client_for(world.operator).get(detail_url(batch)).text
    assert "calcul mensuel" in page and APPROVE in page
    assert "calcul mensuel" in client_for(world.operator).get(reverse("settlement:batch_list")).text


# --- Export, SEPA file, payment, rejection -------------------------------------------------


def test_the_sepa_file_is_downloadable_after_export_only_by_operator_admins(world, client_for):
    batch = batch_approve(actor=actor_for(world.second), batch=computed(world, render=False))
    sepa_url = reverse("settlement:batch_sepa", args=[batch.pk])
    operator = client_for(world.second)
    assert operator.get(sepa_url).status_code == 404  # approved, not exported yet
    assert sepa_url not in operator.get(detail_url(batch)).text

    tomorrow = timezone.localdate() + timedelta(days=1)
    response = operator.post(
        reverse("settlement:batch_export", args=[batch.pk]),
        {"execution_date": tomorrow.isoformat()},
        follow=True,
    )
    assert "Virement SEPA du lot" in response.text and sepa_url in response.text
    download = operator.get(sepa_url)
    assert download.status_code == 200
    assert download["Content-Type"] == "application/xml"
    assert download["Content-Disposition"] == f'attachment; filename="{batch.reference}.xml"'
    root = ET.fromstring(b"".join(download.streaming_content))  # noqa: S314 - our own file
    assert root.find("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", NS).text == "2"

    agent = MembershipFactory(organisation=world.operator.organisation, role=MemberRole.AGENT)
    assert client_for(agent).get(sepa_url).status_code == 403
    assert client_for(world.alpha).get(sepa_url).status_code == 403


def test_an_execution_date_in_the_past_is_refused_in_french_and_nothing_changes(world, client_for):
    batch = batch_approve(actor=actor_for(world.second), batch=computed(world, render=False))
    response = client_for(world.second).post(
        reverse("settlement:batch_export", args=[batch.pk]),
        {"execution_date": world.yesterday.isoformat()},
    )
    assert response.status_code == 200
    assert "La date d&#x27;exécution ne peut pas être passée." in response.text
    assert 'class="field has-error"' in response.text
    batch.refresh_from_db()
    assert batch.status == BatchStatus.APPROVED and not batch.sepa_file

    garbled = client_for(world.second).post(
        reverse("settlement:batch_export", args=[batch.pk]), {"execution_date": "demain"}
    )
    assert "Saisissez une date valide." in garbled.text


def test_an_empty_rejection_reason_is_refused_then_a_bank_rejection_is_recorded(world, client_for):
    batch = exported(world)
    payout = Payout.objects.get(provider=world.alpha.organisation)
    client = client_for(world.second)
    url = reverse("settlement:payout_reject", args=[payout.pk])
    field = f"payout-{payout.pk}-reason"
    assert "Rejet bancaire" in client.get(detail_url(batch)).text

    response = client.post(url, {field: "   "})
    assert "Indiquez le motif du rejet." in response.text
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.PENDING
    assert Redemption.objects.filter(payout=payout).count() == 3

    response = client.post(url, {field: "Compte clos (AC04)"}, follow=True)
    assert "marqué rejeté" in response.text and "Compte clos (AC04)" in response.text
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.REJECTED
    assert Redemption.objects.filter(payout=payout).count() == 0
    assert client_for(world.alpha).post(url, {field: "x"}).status_code == 403


def test_marking_paid_refuses_a_future_date_then_pays_the_payouts(world, client_for):
    batch = exported(world)
    client = client_for(world.second)
    url = reverse("settlement:batch_mark_paid", args=[batch.pk])
    future = timezone.localdate() + timedelta(days=3)
    response = client.post(url, {"paid_on": future.isoformat()})
    assert "La date de paiement ne peut pas être dans le futur." in response.text
    batch.refresh_from_db()
    assert batch.status == BatchStatus.EXPORTED

    page = client.post(url, {"paid_on": timezone.localdate().isoformat()}, follow=True).text
    assert f"Lot {batch.reference} marqué payé." in page
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PAID
    assert set(batch.payouts.values_list("status", flat=True)) == {PayoutStatus.PAID}
    assert reverse("settlement:batch_sepa", args=[batch.pk]) in page  # still downloadable


# --- Provider: payouts, statements, holds --------------------------------------------------


def test_a_provider_sees_only_its_payouts_and_statements(world, client_for):
    batch = computed(world)
    mine = Payout.objects.get(provider=world.alpha.organisation)
    theirs = Payout.objects.get(provider=world.beta.organisation)
    client = client_for(world.alpha)

    page = client.get(reverse("settlement:payout_list")).text
    assert batch.reference in page and "30,00\u00a0€" in page and "En cours de validation" in page
    assert "20,00\u00a0€" not in page
    assert reverse("settlement:statement_pdf", args=[mine.pk]) in page
    assert reverse("settlement:statement_pdf", args=[theirs.pk]) not in page

    pdf = client.get(reverse("settlement:statement_pdf", args=[mine.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    csv = client.get(reverse("settlement:statement_csv", args=[mine.pk]))
    assert csv["Content-Type"].startswith("text/csv")
    assert "30,00" in b"".join(csv.streaming_content).decode("utf-8-sig")

    for route in ("settlement:statement_pdf", "settlement:statement_csv"):
        assert client.get(reverse(route, args=[theirs.pk])).status_code == 404
    # Operators reach any statement.
    operator = client_for(world.operator)
    assert operator.get(reverse("settlement:statement_pdf", args=[theirs.pk])).status_code == 200


def test_a_statement_not_rendered_yet_is_en_preparation(world, client_for):
    computed(world, render=False)
    payout = Payout.objects.get(provider=world.alpha.organisation)
    client = client_for(world.alpha)
    assert "en préparation" in client.get(reverse("settlement:payout_list")).text
    response = client.get(reverse("settlement:statement_pdf", args=[payout.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("settlement:payout_list")
    assert "est en préparation" in response.text


def test_held_providers_are_shown_with_the_reason_to_operators_and_to_themselves(world, client_for):
    Accreditation.objects.filter(organisation=world.beta.organisation).update(
        bank_status=BankStatus.UNVERIFIED
    )
    Accreditation.objects.filter(organisation=world.alpha.organisation).update(
        valid_until=world.yesterday - timedelta(days=1)
    )
    batch = computed(world)
    assert set(HeldProvider.objects.values_list("reason", flat=True)) == {
        "bank_unverified",
        "not_accredited",
    }
    page = client_for(world.operator).get(detail_url(batch)).text
    assert "Coordonnées bancaires à vérifier" in page and "Qualification non valide" in page
    assert "Lieux retenus" in page and "50,00\u00a0€" in page  # all of it held

    beta_page = client_for(world.beta).get(reverse("settlement:payout_list")).text
    assert "Remboursement retenu" in beta_page
    assert "Coordonnées bancaires à vérifier" in beta_page and "20,00\u00a0€" in beta_page
    assert "Qualification non valide" not in beta_page  # another provider's hold


def test_operators_are_sent_from_the_payouts_page_to_the_batches(world, client_for):
    response = client_for(world.operator).get(reverse("settlement:payout_list"))
    assert response.status_code == 302 and response.url == reverse("settlement:batch_list")
    funder = MembershipFactory(organisation=OrganisationFactory(is_funder=True))
    assert client_for(funder).get(reverse("settlement:payout_list")).status_code == 403


# --- API ---------------------------------------------------------------------------------


def test_the_payouts_api_lists_the_callers_payouts_with_statement_links(world, api_for):
    computed(world, render=False)
    mine = Payout.objects.get(provider=world.alpha.organisation)
    api = api_for(world.alpha)
    body = api.get("/api/v1/payouts/").json()
    assert body["count"] == 1
    [item] = body["results"]
    assert set(item) == {
        "id",
        "batch",
        "period_end",
        "status",
        "amount_cents",
        "currency",
        "redemption_count",
        "statement_pdf",
        "statement_csv",
        "created_at",
    }
    assert item["id"] == mine.pk and item["amount_cents"] == 3000
    assert (item["status"], item["currency"], item["redemption_count"]) == ("pending", "EUR", 3)
    assert item["period_end"] == world.yesterday.isoformat()
    assert item["statement_pdf"] is None and item["statement_csv"] is None  # not rendered yet

    payout_statement_render(payout_id=mine.pk)
    [item] = api.get("/api/v1/payouts/").json()["results"]
    assert item["statement_pdf"] == f"http://testserver/remboursements/{mine.pk}/releve.pdf"
    assert item["statement_csv"] == f"http://testserver/remboursements/{mine.pk}/releve.csv"
    assert api.get(item["statement_pdf"]).status_code == 200  # the token opens it too
    assert api_for(world.beta).get(item["statement_pdf"]).status_code == 404
    api.credentials(HTTP_AUTHORIZATION="Token not-a-key")
    assert api.get(item["statement_pdf"]).status_code == 401

    assert api_for(world.operator).get("/api/v1/payouts/").json()["count"] == 2
    funder = MembershipFactory(organisation=OrganisationFactory(is_funder=True))
    refused = api_for(funder).get("/api/v1/payouts/")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"


def test_the_payouts_api_lists_the_newest_batch_first(world, api_for):
    first = computed(world, render=False)
    earlier = world.yesterday - timedelta(days=1)
    SettlementBatch.objects.filter(pk=first.pk).update(
        period_end=earlier, reference=f"REM-{earlier:%Y-%m-%d}"
    )
    first.refresh_from_db()
    cheques = handed_out_cheques(booklets=1, size=5, people_offset=50)
    site = Accreditation.objects.get(organisation=world.alpha.organisation).sites.get()
    site.services.add(cheques.service)
    cheques_redeem(
        actor=actor_for(world.alpha), codes=cheques.codes[:1], service=cheques.service, site=site
    )
    Redemption.objects.filter(payout__isnull=True).update(created_at=timezone.now() - timedelta(1))
    second = computed(world, render=False)
    results = api_for(world.alpha).get("/api/v1/payouts/").json()["results"]
    assert [r["batch"] for r in results] == [second.reference, first.reference]


# --- Demo --------------------------------------------------------------------------------


def test_the_demo_seeds_a_paid_batch_and_one_awaiting_approval_idempotently():
    from orgs.demo import seed_organisations
    from orgs.models import Organisation, ServiceCategory
    from redemption.demo import seed_settlement
    from vouchers.demo import seed_vouchers

    seed_organisations()
    seed_vouchers()
    assert seed_settlement()[0].startswith("Settlement skipped")  # no accreditation yet
    services = list(ServiceCategory.objects.all())
    for slug in ("cap-numerique", "cabane-du-web"):  # what orgs.demo.seed_accreditations does
        accredit(Organisation.objects.get(slug=slug), services)

    lines = seed_settlement()
    paid, pending = SettlementBatch.objects.order_by("period_end")
    assert paid.status == BatchStatus.PAID and pending.status == BatchStatus.PENDING_APPROVAL
    assert pending.period_end == previous_month_end()
    assert (paid.total_cents, pending.total_cents) == (10_000, 7_000)
    assert paid.created_by.email == "claire.martin@medias-cite.demo"
    assert paid.approved_by.email == "karim.benali@medias-cite.demo"
    assert pending.created_by.email == "claire.martin@medias-cite.demo"
    assert paid.created_at < paid.approved_at < paid.paid_at < timezone.now()
    assert Payout.objects.filter(statement_ready_at__isnull=True).count() == 0
    assert Payout.objects.count() == 4
    assert any("paid" in line for line in lines)

    seed_settlement()  # idempotent
    assert SettlementBatch.objects.count() == 2 and Redemption.objects.count() == 10
