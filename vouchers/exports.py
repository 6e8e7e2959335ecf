"""Columns of the vouchers lists' CSV and XLSX exports (orders, booklets, hand-outs, movements,
follow-up, the funder's account). The rows come from the same selectors as the pages."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from aptic.exports import Column, field_choices

from .models import Beneficiary, Booklet, BookletMovement, LedgerEntry, Order


def _order_lines(order) -> str:
    return ", ".join(f"{line.quantity} \u00d7 {line.booklet_size}" for line in order.lines.all())


def _full_name(user) -> str:
    return user.get_full_name() if user else ""


def _sizes(programme) -> str:
    return " / ".join(str(size) for size in programme.booklet_sizes)


PROGRAMME_COLUMNS = [
    Column(_("Programme"), "name"),
    Column(_("Services"), lambda p: " · ".join(c.name for c in p.categories.all())),
    Column(_("Commanditaire"), "funder.name"),
    Column(_("Chèque"), "cheque_value_cents", "money"),
    Column(_("Chéquiers"), _sizes),
    Column(_("Valable jusqu'au"), "valid_until", "date"),
    Column(_("Tolérance (jours)"), "tolerance_days", "int"),
    Column(_("Validité (mois après la remise)"), "validity_months", "int"),
    Column(_("Territoire"), lambda p: ", ".join(p.departements or [])),
    Column(_("Frais (pb)"), "fee_rate_bp", "int"),
    Column(_("Ouvert"), lambda p: _("oui") if p.is_active else _("non")),
]


def order_columns(*, with_funder: bool) -> list[Column]:
    return [
        Column(_("Référence"), "reference"),
        *([Column(_("Commanditaire"), "funder.name")] if with_funder else []),
        Column(_("Programme"), "programme.name"),
        Column(_("Chéquiers"), _order_lines),
        Column(_("Bon de commande"), "purchase_order_number"),
        Column(_("Valeur faciale"), "face_value_cents", "money"),
        Column(_("Frais de gestion"), "fee_cents", "money"),
        Column(_("Total"), "total_cents", "money"),
        Column(_("État"), "status", choices=field_choices(Order, "status")),
        Column(_("Créée le"), "created_at", "datetime"),
        Column(_("Envoyée le"), "submitted_at", "datetime"),
        Column(_("Validée le"), "approved_at", "datetime"),
    ]


def booklet_columns(*, with_holder: bool) -> list[Column]:
    return [
        Column(_("Numéro"), "number"),
        Column(_("Programme"), "programme.name"),
        Column(_("Chèques"), "size", "int"),
        Column(_("Valeur"), "value_cents", "money"),
        Column(_("État"), "status", choices=field_choices(Booklet, "status")),
        *([Column(_("Structure relais"), "holder.name")] if with_holder else []),
        Column(_("Remis le"), "assigned_at", "datetime"),
    ]


def _replacement_number(booklet) -> str:
    # Read from select_related; without a replacement the reverse one-to-one raises an
    # AttributeError subclass (no query).
    replacement = getattr(booklet, "replacement", None)
    return replacement.number if replacement else ""


# Only the beneficiary's pseudonymous profile: no name is stored, and the dedup key (an HMAC of
# the names and birth date) never leaves the database.
HANDOUT_COLUMNS = [
    Column(_("Remis le"), "assigned_at", "datetime"),
    Column(_("Numéro"), "number"),
    Column(_("Programme"), "programme.name"),
    Column(_("Chèques"), "size", "int"),
    Column(_("Valeur"), "value_cents", "money"),
    Column(_("Agent"), lambda booklet: _full_name(booklet.assigned_by)),
    Column(_("Structure relais"), "holder.name"),
    Column(_("Bénéficiaire"), "beneficiary.reference"),
    Column(
        _("Tranche d'âge"),
        "beneficiary.age_bracket",
        choices=field_choices(Beneficiary, "age_bracket"),
    ),
    Column(_("Genre"), "beneficiary.gender", choices=field_choices(Beneficiary, "gender")),
    Column(
        _("Situation"), "beneficiary.situation", choices=field_choices(Beneficiary, "situation")
    ),
    Column(_("Code postal"), "beneficiary.postcode"),
    Column(_("État"), "status", choices=field_choices(Booklet, "status")),
    Column(_("Remplacé par"), _replacement_number),
]


MOVEMENT_COLUMNS = [
    Column(_("Date"), "created_at", "datetime"),
    Column(_("Mouvement"), "kind", choices=field_choices(BookletMovement, "kind")),
    Column(_("De"), "from_organisation.name"),
    Column(_("Vers"), "to_organisation.name"),
    Column(_("Chéquiers"), "booklet_count", "int"),
    Column(_("Valeur"), "value_cents", "money"),
    Column(_("Premier numéro"), "first_number"),
    Column(_("Dernier numéro"), "last_number"),
    Column(_("Par"), lambda movement: _full_name(movement.actor)),
]


def follow_up_columns(*, view: str) -> list[Column]:
    first = _("Structure relais") if view == "structures" else _("Agent")
    return [
        Column(first, "label"),
        Column(_("En stock"), "in_stock", "int"),
        Column(_("Confiés, pas encore remis"), "allocated", "int"),
        Column(_("Remis"), "handed_out", "int"),
        Column(_("Entamés"), "started", "int"),
        Column(_("Bloqués"), "blocked", "int"),
    ]


def _ledger_reference(entry) -> str:
    if entry.order_id:
        return entry.order.reference
    if entry.payout_id:
        return entry.payout.batch.reference
    if entry.credit_note_id:
        return entry.credit_note.number
    return ""


BALANCE_COLUMNS = [
    Column(_("Commanditaire"), "funder_name"),
    Column(_("Versé"), "paid_in_cents", "money"),
    Column(_("Frais de gestion"), "fee_cents", "money"),
    Column(_("Remboursé aux lieux"), "paid_out_cents", "money"),
    Column(_("Rendu (avoirs)"), "returned_cents", "money"),
    Column(_("Détenu"), "held_cents", "money"),
]

LEDGER_COLUMNS = [
    Column(_("Date"), "created_at", "datetime"),
    Column(_("Programme"), "programme.name"),
    Column(_("Nature"), "kind", choices=field_choices(LedgerEntry, "kind")),
    Column(_("Pièce"), _ledger_reference),
    Column(_("Montant"), "amount_cents", "money"),
]
