"""Open the funders' accounts of an existing database: what was paid in and paid out so far.

Orders approved before the ledger existed get their ``paid_in`` and ``fee`` rows (dated at
approval), and payouts already paid their ``paid_to_providers`` rows per funder and programme
(dated when the batch was marked paid). A rejected payout needs none: paid then reversed nets
to zero. Idempotent (rows that exist are skipped); a fresh database has nothing to do.
"""

from django.db import migrations
from django.db.models import Sum

RECORDED_ORDER_STATUSES = ("approved", "issued", "printed")


def forwards(apps, schema_editor):
    Order = apps.get_model("vouchers", "Order")
    LedgerEntry = apps.get_model("vouchers", "LedgerEntry")
    Payout = apps.get_model("redemption", "Payout")
    RedemptionLine = apps.get_model("redemption", "RedemptionLine")

    recorded_orders = set(
        LedgerEntry.objects.filter(kind="paid_in").values_list("order_id", flat=True)
    )
    rows = []
    for order in Order.objects.filter(status__in=RECORDED_ORDER_STATUSES).order_by("pk"):
        if order.pk in recorded_orders:
            continue
        when = order.approved_at or order.created_at
        common = {
            "funder_id": order.funder_id,
            "programme_id": order.programme_id,
            "order_id": order.pk,
            "created_at": when,
        }
        rows.append(LedgerEntry(kind="paid_in", amount_cents=order.face_value_cents, **common))
        if order.fee_cents:
            rows.append(LedgerEntry(kind="fee", amount_cents=order.fee_cents, **common))

    recorded_payouts = set(
        LedgerEntry.objects.filter(payout__isnull=False).values_list("payout_id", flat=True)
    )
    for payout in Payout.objects.filter(status="paid").select_related("batch").order_by("pk"):
        if payout.pk in recorded_payouts:
            continue
        shares = (
            RedemptionLine.objects.filter(live=True, redemption__payout=payout)
            .values("cheque__booklet__funder_id", "cheque__booklet__programme_id")
            .annotate(total=Sum("value_cents"))
            .order_by("cheque__booklet__programme_id")
        )
        for share in shares:
            if share["total"]:
                rows.append(
                    LedgerEntry(
                        kind="paid_to_providers",
                        amount_cents=-share["total"],
                        funder_id=share["cheque__booklet__funder_id"],
                        programme_id=share["cheque__booklet__programme_id"],
                        payout_id=payout.pk,
                        created_at=payout.batch.paid_at or payout.batch.created_at,
                    )
                )
    LedgerEntry.objects.bulk_create(rows, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("vouchers", "0003_ledger_append_only_trigger"),
        ("redemption", "0002_settlement"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
