"""Columns of the redemption lists' CSV and XLSX exports (redemptions, payouts, batches and
their payouts). The rows come from the same querysets as the pages."""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext_lazy as _

from aptic.exports import Column, field_choices

from .models import Payout, Redemption, SettlementBatch

REDEMPTION_COLUMNS = [
    Column(_("N°"), "pk", "int"),
    Column(_("Date"), "created_at", "datetime"),
    Column(_("Lieu"), "site.name"),
    Column(_("Service"), "service.name"),
    Column(_("Agent"), lambda redemption: redemption.agent.get_full_name()),
    Column(_("Chèques"), "cheque_count", "int"),
    Column(_("Montant"), "amount_cents", "money"),
    Column(_("État"), "status", choices=field_choices(Redemption, "status")),
    Column(_("Annulé le"), "cancelled_at", "datetime"),
]

PAYOUT_COLUMNS = [
    Column(_("Lot"), "batch.reference"),
    Column(_("Encaissements jusqu'au"), "batch.period_end", "date"),
    Column(_("Encaissements"), "redemption_count", "int"),
    Column(_("Montant"), "amount_cents", "money"),
    Column(_("État"), "status", choices=field_choices(Payout, "status")),
    Column(_("Date d'exécution"), "batch.execution_date", "date"),
    Column(_("Payé le"), lambda payout: payout.batch.paid_on or payout.batch.paid_at, "date"),
    Column(_("Motif du rejet"), "rejection_reason"),
]

BATCH_COLUMNS = [
    Column(_("Lot"), "reference"),
    Column(_("Encaissements jusqu'au"), "period_end", "date"),
    Column(_("État"), "status", choices=field_choices(SettlementBatch, "status")),
    Column(_("Virements"), "payout_count", "int"),
    Column(_("Encaissements"), "redemption_count", "int"),
    Column(_("Montant"), "total_cents", "money"),
    Column(_("Date d'exécution"), "execution_date", "date"),
    Column(_("Payé le"), "paid_on", "date"),
]


def batch_payout_columns(*, iban: Callable[[str], str]) -> list[Column]:
    """A batch's payouts for operators; ``iban`` masks the account number as the page does."""
    return [
        Column(_("Lieu qualifié"), "provider.name"),
        Column(_("Titulaire du compte"), "account_holder"),
        Column(_("Montant"), "amount_cents", "money"),
        Column(_("Encaissements"), "redemption_count", "int"),
        Column(_("IBAN"), lambda payout: iban(payout.iban)),
        Column(_("Référence de bout en bout"), "end_to_end_id"),
        Column(_("État"), "status", choices=field_choices(Payout, "status")),
        Column(_("Motif du rejet"), "rejection_reason"),
    ]
