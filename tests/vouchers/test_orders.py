"""A funder orders booklets, the operator approves or rejects; bad input changes nothing."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html import unescape

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from aptic.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from orgs.audit import Actor
from orgs.models import AuditEvent, MemberRole
from tests.factories import MembershipFactory, ProgrammeFactory
from vouchers import codes
from vouchers.models import Booklet, Cheque, Order, OrderStatus
from vouchers.services.issuance import order_issue
from vouchers.services.orders import (
    order_approve,
    order_cancel,
    order_create,
    order_reject,
    order_submit,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def programme(funder_admin):
    return ProgrammeFactory(funder=funder_admin.organisation, max_booklets_per_order=500)


@pytest.fixture
def funder(funder_admin):
    return Actor(user=funder_admin.user, membership=funder_admin)


@pytest.fixture
def operator(operator_admin):
    return Actor(user=operator_admin.user, membership=operator_admin)


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "navy").save(buffer, format="PNG")
    return SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")


def test_an_order_shows_face_value_fee_and_total_and_gets_a_yearly_reference(funder, programme):
    order = order_create(
        actor=funder,
        programme=programme,
        lines={10: 3, 5: 2},
        purchase_order_number="BC-1",
        logo=_png(),
    )
    year = timezone.localdate().year
    assert order.reference == f"CMD-{year}-000001"
    assert order.face_value_cents == (30 + 10) * 1000
    assert order.fee_cents == 1600  # 4 % of 400 €
    assert order.total_cents == 41600
    assert order.status == OrderStatus.DRAFT
    assert order.logo.name.endswith(".png")
    second = order_create(actor=funder, programme=programme, lines={5: 1})
    assert second.reference == f"CMD-{year}-000002"


def test_the_fee_is_rounded_half_up_to_the_cent(funder, programme):
    programme.fee_rate_bp = 333  # 3,33 %
    programme.save()
    order = order_create(actor=funder, programme=programme, lines={5: 3})  # 150 €
    assert order.fee_cents == 500  # 4,995 € → 5,00 €


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        ({10: 0, 5: 0}, "empty_order"),
        ({10: -2}, "invalid_quantity"),
        ({7: 1}, "size_not_offered"),
        ({10: "trois"}, "invalid_quantity"),
        ({10: 501}, "over_order_limit"),
    ],
)
def test_bad_quantities_are_refused_and_nothing_is_created(funder, programme, lines, code):
    with pytest.raises(ValidationFailed) as refused:
        order_create(actor=funder, programme=programme, lines=lines)
    assert refused.value.code == code
    assert Order.objects.count() == 0
    assert not AuditEvent.objects.filter(action__startswith="vouchers.order").exists()


def test_a_size_the_programme_does_not_offer_is_refused(funder, programme):
    programme.offers_booklet_of_5 = False
    programme.save()
    with pytest.raises(ValidationFailed, match="5 chèques"):
        order_create(actor=funder, programme=programme, lines={5: 1})


@pytest.mark.parametrize(
    ("upload", "code"),
    [
        (SimpleUploadedFile("logo.png", b"%PDF-1.4 not an image", "image/png"), "invalid_image"),
        (SimpleUploadedFile("logo.gif", b"GIF89a" + b"\0" * 20, "image/gif"), "invalid_image"),
        (
            SimpleUploadedFile("big.png", b"\0" * (2 * 1024 * 1024 + 1), "image/png"),
            "file_too_large",
        ),
    ],
)
def test_a_logo_that_is_not_a_small_png_or_jpeg_is_refused(funder, programme, upload, code):
    with pytest.raises(ValidationFailed) as refused:
        order_create(actor=funder, programme=programme, lines={5: 1}, logo=upload)
    assert refused.value.code == code
    assert Order.objects.count() == 0


def test_another_funders_programme_cannot_be_ordered(funder):
    elsewhere = ProgrammeFactory()
    with pytest.raises(NotFound):
        order_create(actor=funder, programme=elsewhere, lines={5: 1})
    assert Order.objects.count() == 0


def test_an_agent_of_a_distributor_cannot_order(programme, distributor_admin):
    actor = Actor(user=distributor_admin.user, membership=distributor_admin)
    with pytest.raises(NotAllowed):
        order_create(actor=actor, programme=programme, lines={5: 1})


def test_the_funder_is_emailed_at_each_step(
    funder, operator, programme, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        order = order_create(actor=funder, programme=programme, lines={5: 1})
    with django_capture_on_commit_callbacks(execute=True):
        order_submit(actor=funder, order=order)
    assert "envoyée" in mail.outbox[-1].subject
    with django_capture_on_commit_callbacks(execute=True):
        order_reject(actor=operator, order=order, reason="Bon de commande illisible")
    assert "refusée" in mail.outbox[-1].subject
    assert "Bon de commande illisible" in mail.outbox[-1].body
    assert mail.outbox[-1].to == [funder.user.email]


def test_cancel_while_not_approved_and_not_after(funder, operator, programme):
    draft = order_create(actor=funder, programme=programme, lines={5: 1})
    order_cancel(actor=funder, order=draft)
    assert draft.status == OrderStatus.CANCELLED
    with pytest.raises(Conflict):
        order_submit(actor=funder, order=draft)

    approved = order_create(actor=funder, programme=programme, lines={5: 1})
    order_submit(actor=funder, order=approved)
    order_approve(
        actor=operator,
        order=approved,
        payment_reference="VIR-1",
        payment_received_on=timezone.localdate(),
    )
    with pytest.raises(Conflict):
        order_cancel(actor=funder, order=approved)
    assert Order.objects.get(pk=approved.pk).status == OrderStatus.APPROVED


def test_only_an_operator_admin_approves_and_payment_is_recorded(
    funder, operator, operator_admin, programme
):
    order = order_create(actor=funder, programme=programme, lines={5: 1})
    order_submit(actor=funder, order=order)
    agent = MembershipFactory(organisation=operator_admin.organisation, role=MemberRole.AGENT)
    with pytest.raises(NotAllowed):
        order_approve(
            actor=Actor(user=agent.user, membership=agent),
            order=order,
            payment_reference="VIR-1",
            payment_received_on=timezone.localdate(),
        )
    with pytest.raises(NotAllowed):
        order_approve(
            actor=funder,
            order=order,
            payment_reference="VIR-1",
            payment_received_on=timezone.localdate(),
        )
    with pytest.raises(ValidationFailed):
        order_approve(
            actor=operator,
            order=order,
            payment_reference=" ",
            payment_received_on=timezone.localdate(),
        )
    order_approve(
        actor=operator,
        order=order,
        payment_reference="VIR-1",
        payment_received_on=timezone.localdate(),
    )
    order.refresh_from_db()
    assert (order.status, order.payment_reference, order.approved_by) == (
        OrderStatus.APPROVED,
        "VIR-1",
        operator.user,
    )
    event = AuditEvent.objects.get(action="vouchers.order.approved")
    assert event.organisation == order.funder
    with pytest.raises(Conflict):  # a second click
        order_approve(
            actor=operator,
            order=order,
            payment_reference="VIR-2",
            payment_received_on=timezone.localdate(),
        )


def _approved(funder, operator, programme, lines):
    order = order_create(actor=funder, programme=programme, lines=lines)
    order_submit(actor=funder, order=order)
    order_approve(
        actor=operator,
        order=order,
        payment_reference="VIR",
        payment_received_on=timezone.localdate(),
    )
    return order


def test_issuance_creates_numbered_booklets_and_checked_codes_once(funder, operator, programme):
    order = _approved(funder, operator, programme, {10: 3, 5: 2})
    assert order_issue(order_id=order.pk) is True
    assert order_issue(order_id=order.pk) is False  # a retried task issues nothing more
    booklets = list(Booklet.objects.filter(order=order).order_by("print_position"))
    year = timezone.localdate().year % 100
    assert [b.number for b in booklets] == [f"AP{year:02d}-{n:07d}" for n in range(1, 6)]
    assert [b.size for b in booklets] == [5, 5, 10, 10, 10]
    cheques = Cheque.objects.filter(booklet__order=order)
    assert cheques.count() == 40
    assert all(codes.is_valid(c.code) for c in cheques)
    assert {c.expires_on for c in cheques} == {programme.last_valid_day}
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ISSUED
    assert AuditEvent.objects.filter(action="vouchers.order.issued").count() == 1


def test_an_unapproved_order_is_not_issued(funder, programme):
    order = order_create(actor=funder, programme=programme, lines={5: 1})
    assert order_issue(order_id=order.pk) is False
    assert not Booklet.objects.exists()


def test_a_code_collision_is_retried_with_fresh_codes(funder, operator, programme, monkeypatch):
    first = _approved(funder, operator, programme, {5: 1})
    order_issue(order_id=first.pk)
    taken = Cheque.objects.first().code
    real = codes.new_codes
    calls = []

    def colliding(count):
        calls.append(count)
        drawn = real(count)
        return [taken, *drawn[1:]] if len(calls) == 1 else drawn

    monkeypatch.setattr(codes, "new_codes", colliding)
    second = _approved(funder, operator, programme, {5: 2})
    assert order_issue(order_id=second.pk) is True
    assert len(calls) == 2
    assert Cheque.objects.filter(booklet__order=second).count() == 10
    assert Cheque.objects.filter(code=taken).count() == 1


# --- Through the browser's pages ----------------------------------------------------------


def test_the_order_form_creates_a_draft_then_the_funder_submits(
    client_for, funder_admin, programme
):
    client = client_for(funder_admin)
    page = client.get(reverse("vouchers:order_create"))
    assert page.status_code == 200
    response = client.post(
        reverse("vouchers:order_create"),
        {"programme": programme.pk, "quantity_10": "2", "quantity_5": "0", "print_text": "Offert"},
    )
    order = Order.objects.get()
    assert response["Location"] == reverse("vouchers:order_detail", args=[order.pk])
    detail = client.get(response["Location"]).content.decode()
    assert "208,00\u00a0€" in detail  # 200 € + 4 %
    client.post(reverse("vouchers:order_submit", args=[order.pk]))
    assert Order.objects.get().status == OrderStatus.SUBMITTED


def test_the_order_form_shows_field_errors_in_french(client_for, funder_admin, programme):
    client = client_for(funder_admin)
    response = client.post(
        reverse("vouchers:order_create"),
        {"programme": programme.pk, "quantity_10": "-1", "quantity_5": "0"},
    )
    assert response.status_code == 200
    assert "supérieure ou égale à 0" in response.content.decode()
    response = client.post(
        reverse("vouchers:order_create"),
        {"programme": programme.pk, "quantity_10": "0", "quantity_5": "0"},
    )
    assert "Commandez au moins un chéquier." in response.content.decode()
    assert Order.objects.count() == 0


def test_the_live_quote_shows_the_total(client_for, funder_admin, programme):
    client = client_for(funder_admin)
    response = client.post(
        reverse("vouchers:order_quote"), {"programme": programme.pk, "quantity_10": "1"}
    )
    assert "104,00\u00a0€" in response.content.decode()


def test_the_operator_approves_from_the_order_page(client_for, funder, operator_admin, programme):
    order = order_create(actor=funder, programme=programme, lines={5: 1})
    order_submit(actor=funder, order=order)
    client = client_for(operator_admin)
    queue = client.get(reverse("vouchers:order_queue")).content.decode()
    assert order.reference in queue
    client.post(
        reverse("vouchers:order_approve", args=[order.pk]),
        {"payment_reference": "VIR-77", "payment_received_on": timezone.localdate().isoformat()},
    )
    assert Order.objects.get(pk=order.pk).status in (OrderStatus.APPROVED, OrderStatus.ISSUED)


def test_a_funder_cannot_approve_its_own_order(client_for, funder, funder_admin, programme):
    order = order_create(actor=funder, programme=programme, lines={5: 1})
    order_submit(actor=funder, order=order)
    response = client_for(funder_admin).post(
        reverse("vouchers:order_approve", args=[order.pk]),
        {"payment_reference": "x", "payment_received_on": timezone.localdate().isoformat()},
    )
    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SUBMITTED


def test_an_order_of_an_ended_programme_cannot_be_approved(funder, operator, programme):
    order = order_create(actor=funder, programme=programme, lines={5: 1})
    order_submit(actor=funder, order=order)
    type(programme).objects.filter(pk=programme.pk).update(
        valid_until=timezone.localdate() - timedelta(days=40), tolerance_days=0
    )
    order.refresh_from_db()
    with pytest.raises(Conflict) as refused:
        order_approve(
            actor=operator,
            order=order,
            payment_reference="VIR",
            payment_received_on=timezone.localdate(),
        )
    assert refused.value.code == "programme_ended"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SUBMITTED


# --- A refused approval or rejection keeps what was typed ---------------------------------------


def _submitted(funder, programme) -> Order:
    order = order_create(actor=funder, programme=programme, lines={5: 1})
    return order_submit(actor=funder, order=order)


def _field_html(html: str, name: str) -> str:
    """The rendered ``<input>`` or ``<textarea>`` of the field ``name``."""
    tag = re.search(rf'<textarea[^>]*name="{name}"[^>]*>.*?</textarea>', html, re.S) or re.search(
        rf'<input[^>]*name="{name}"[^>]*>', html
    )
    assert tag, f"no field {name}"
    return tag.group(0)


def _assert_error_on_field(html: str, name: str, message: str) -> None:
    field = _field_html(html, name)
    assert 'aria-invalid="true"' in field
    assert f'aria-describedby="id_{name}_error"' in field
    error_list = re.search(rf'<ul class="errorlist" id="id_{name}_error">(.*?)</ul>', html, re.S)
    assert error_list and message in unescape(error_list.group(1))


def test_an_approval_without_payment_reference_shows_the_error_next_to_the_field(
    client_for, funder, operator_admin, programme
):
    order = _submitted(funder, programme)
    received = timezone.localdate() - timedelta(days=2)
    response = client_for(operator_admin).post(
        reverse("vouchers:order_approve", args=[order.pk]),
        {"payment_reference": "  ", "payment_received_on": received.isoformat()},
    )

    assert response.status_code == 400
    html = response.content.decode()
    _assert_error_on_field(
        html, "payment_reference", "Indiquez la référence du paiement ou du bon de commande."
    )
    assert f'value="{received.isoformat()}"' in _field_html(html, "payment_received_on")
    reason = _field_html(html, "reason")  # the other form is left as it was
    assert "aria-invalid" not in reason and 'id="id_reason_error"' not in html
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SUBMITTED
    assert not AuditEvent.objects.filter(action="vouchers.order.approved").exists()


def test_a_payment_received_in_the_future_is_refused_on_its_field(
    client_for, funder, operator_admin, programme
):
    order = _submitted(funder, programme)
    tomorrow = timezone.localdate() + timedelta(days=1)
    response = client_for(operator_admin).post(
        reverse("vouchers:order_approve", args=[order.pk]),
        {"payment_reference": "VIR-77", "payment_received_on": tomorrow.isoformat()},
    )

    assert response.status_code == 400
    html = response.content.decode()
    _assert_error_on_field(
        html, "payment_received_on", "La date de réception ne peut pas être dans le futur."
    )
    assert 'value="VIR-77"' in _field_html(html, "payment_reference")
    assert "aria-invalid" not in _field_html(html, "payment_reference")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SUBMITTED
    assert not AuditEvent.objects.filter(action="vouchers.order.approved").exists()


def test_a_rejection_without_reason_shows_the_error_next_to_the_field(
    client_for, funder, operator_admin, programme
):
    order = _submitted(funder, programme)
    response = client_for(operator_admin).post(
        reverse("vouchers:order_reject", args=[order.pk]), {"reason": ""}
    )

    assert response.status_code == 400
    html = response.content.decode()
    _assert_error_on_field(html, "reason", "Indiquez le motif du refus.")
    assert "aria-invalid" not in _field_html(html, "payment_reference")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SUBMITTED
    assert not AuditEvent.objects.filter(action="vouchers.order.rejected").exists()


def test_a_rejection_with_a_reason_is_recorded(client_for, funder, operator_admin, programme):
    order = _submitted(funder, programme)
    response = client_for(operator_admin).post(
        reverse("vouchers:order_reject", args=[order.pk]), {"reason": "Paiement introuvable"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("vouchers:order_detail", args=[order.pk])
    rejected = Order.objects.get(pk=order.pk)
    assert rejected.status == OrderStatus.REJECTED
    assert rejected.rejection_reason == "Paiement introuvable"


def test_an_approval_refused_for_the_whole_order_is_told_in_a_message(
    client_for, funder, operator_admin, programme
):
    order = _submitted(funder, programme)
    type(programme).objects.filter(pk=programme.pk).update(
        valid_until=timezone.localdate() - timedelta(days=40), tolerance_days=0
    )
    client = client_for(operator_admin)
    response = client.post(
        reverse("vouchers:order_approve", args=[order.pk]),
        {"payment_reference": "VIR-77", "payment_received_on": timezone.localdate().isoformat()},
    )
    assert response.status_code == 302
    assert "est terminé" in unescape(client.get(response["Location"]).content.decode())
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SUBMITTED
