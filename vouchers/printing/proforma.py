"""The pro-forma (quote) PDF of an order: what the funder pays before its booklets are issued.

Issued by the operator (Médias-Cité), addressed to the funder, with the order reference, one
line per booklet size (quantity x unit price), the face value, the operator's fee with its rate
and the total, in French formatting. It is not an invoice and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation

from orgs.models import Organisation
from orgs.templatetags.ui import percent_from_bp

from .design import FIXED_CREATED

if TYPE_CHECKING:
    from datetime import date

    from vouchers.models import Order

OPERATOR_NAME = "Médias-Cité"


@dataclass(frozen=True)
class ProformaLine:
    booklet_size: int
    quantity: int
    unit_cents: int  # one booklet: size x cheque value

    @property
    def cheques(self) -> int:
        return self.booklet_size * self.quantity

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_cents


def proforma_context(order: Order, *, issued_on: date | None = None) -> dict:
    programme = order.programme
    lines = [
        ProformaLine(
            booklet_size=line.booklet_size,
            quantity=line.quantity,
            unit_cents=line.booklet_size * programme.cheque_value_cents,
        )
        for line in order.lines.order_by("booklet_size")
    ]
    operator = Organisation.objects.filter(is_operator=True).order_by("pk").first()
    return {
        "order": order,
        "programme": programme,
        "funder": order.funder,
        "operator": operator,
        "operator_name": operator.name if operator else OPERATOR_NAME,
        "lines": lines,
        "cheques": sum(line.cheques for line in lines),
        "booklets": sum(line.quantity for line in lines),
        "fee_rate": percent_from_bp(programme.fee_rate_bp),
        "issued_on": issued_on or timezone.localdate(),
        "site_host": settings.SITE_URL.split("://", 1)[-1],
    }


def render_proforma(order: Order, *, issued_on: date | None = None) -> bytes:
    """The pro-forma of ``order`` as PDF bytes (WeasyPrint, French, fixed metadata)."""
    from weasyprint import HTML

    with translation.override(settings.LANGUAGE_CODE):
        html = render_to_string(
            "vouchers/print/proforma.html", proforma_context(order, issued_on=issued_on)
        )
    document = HTML(string=html, base_url=str(settings.BASE_DIR)).render()
    document.metadata.created = FIXED_CREATED
    document.metadata.modified = FIXED_CREATED
    document.metadata.generator = "Aptic"
    return document.write_pdf()
