"""Forms of the settlement screens: they parse input; the settlement services decide."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .services.settlement import previous_month_end


def _date_field(label: str, initial, help_text: str = "") -> forms.DateField:
    return forms.DateField(
        label=label,
        initial=initial,
        help_text=help_text,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "required": _("Indiquez une date."),
            "invalid": _("Saisissez une date valide."),
        },
    )


class BatchCreateForm(forms.Form):
    period_end = _date_field(
        _("Encaissements jusqu'au"),
        initial=previous_month_end,
        help_text=_(
            "Le lot reprend tous les encaissements non encore remboursés jusqu'à cette date "
            "incluse (d'habitude le dernier jour du mois précédent)."
        ),
    )


class BatchExportForm(forms.Form):
    execution_date = _date_field(
        _("Date d'exécution du virement"),
        initial=lambda: timezone.localdate() + timedelta(days=1),
    )


class BatchPaidForm(forms.Form):
    paid_on = _date_field(_("Virement reçu par les lieux le"), initial=timezone.localdate)

    def clean_paid_on(self):
        paid_on = self.cleaned_data["paid_on"]
        if paid_on > timezone.localdate():
            raise forms.ValidationError(_("La date de paiement ne peut pas être dans le futur."))
        return paid_on


class PayoutRejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif du rejet bancaire"),
        max_length=200,
        strip=True,
        error_messages={"required": _("Indiquez le motif du rejet.")},
        widget=forms.TextInput(attrs={"placeholder": _("ex. : compte clos (AC04)")}),
    )
