"""Payout statements (« relevé de remboursement »): PDF and CSV, rendered in their own task."""

from __future__ import annotations

import csv
import io

from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from orgs.audit import Actor, audit_record
from orgs.notifications import email_on_commit
from orgs.selectors import organisation_admin_emails
from vouchers.codes import mask

from ..models import Payout, Redemption

CSV_HEADER = ["Date", "Chèque", "Valeur (€)", "Service", "Lieu", "Encaissement", "Lot"]


def statement_rows(payout: Payout) -> list[dict]:
    """One row per cheque of the payout, codes masked."""
    redemptions = (
        Redemption.objects.filter(payout=payout)
        .select_related("service", "site")
        .prefetch_related("lines__cheque")
        .order_by("created_at", "pk")
    )
    return [
        {
            "date": timezone.localtime(redemption.created_at),
            "code": mask(line.cheque.code),
            "value_cents": line.value_cents,
            "service": redemption.service.name,
            "site": redemption.site.name if redemption.site else "",
            "redemption": redemption.pk,
        }
        for redemption in redemptions
        for line in redemption.lines.all()
    ]


def statement_csv(payout: Payout, rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(
            [
                row["date"].strftime("%d/%m/%Y %H:%M"),
                row["code"],
                f"{row['value_cents'] / 100:.2f}".replace(".", ","),
                row["service"],
                row["site"],
                row["redemption"],
                payout.batch.reference,
            ]
        )
    writer.writerow(["Total", "", f"{payout.amount_cents / 100:.2f}".replace(".", ",")])
    return ("\ufeff" + buffer.getvalue()).encode()


def payout_statement_render(*, payout_id: int) -> Payout:
    """Render (or re-render, same content) the PDF and CSV statement and tell the provider."""
    from weasyprint import HTML

    payout = Payout.objects.select_related("batch", "provider").get(pk=payout_id)
    rows = statement_rows(payout)
    html = render_to_string(
        "redemption/statements/statement.html", {"payout": payout, "rows": rows}
    )
    pdf = HTML(string=html).write_pdf()
    stem = f"releve-{payout.batch.reference}-{payout.provider.slug}"
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        first_time = payout.statement_ready_at is None
        payout.statement_pdf.save(f"{stem}.pdf", ContentFile(pdf), save=False)
        payout.statement_csv.save(
            f"{stem}.csv", ContentFile(statement_csv(payout, rows)), save=False
        )
        payout.statement_ready_at = timezone.now()
        payout.save(update_fields=["statement_pdf", "statement_csv", "statement_ready_at"])
        if first_time:
            audit_record(
                actor=Actor.system(),
                action="redemption.statement.ready",
                target=payout,
                organisation=payout.provider,
            )
            emails = organisation_admin_emails(organisation=payout.provider)
            if emails:
                email_on_commit(
                    to=emails,
                    template="statement_ready",
                    organisation=payout.provider,
                    context={"payout": payout, "batch": payout.batch.reference},
                )
    return payout
