"""Forms of the vouchers app: they parse input; services decide."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Programme, UnusedValuePolicy, ValidityKind


class EurosField(forms.DecimalField):
    """Euros typed by a person (« 10 » or « 10,50 »), cleaned to integer cents."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 9)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", 0)
        super().__init__(localize=True, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, int):
            return f"{value / 100:.2f}".replace(".", ",")
        return super().prepare_value(value)

    def clean(self, value):
        euros = super().clean(value)
        return None if euros is None else int(euros * 100)


class PercentField(forms.DecimalField):
    """A percentage (« 4 » or « 4,5 ») cleaned to basis points."""

    def __init__(self, **kwargs):
        super().__init__(
            max_digits=5, decimal_places=2, min_value=0, max_value=100, localize=True, **kwargs
        )

    def prepare_value(self, value):
        if isinstance(value, int):
            return f"{value / 100:g}".replace(".", ",")
        return super().prepare_value(value)

    def clean(self, value):
        percent = super().clean(value)
        return None if percent is None else int(percent * 100)


class ProgrammeForm(forms.Form):
    name = forms.CharField(label=_("Nom du programme"), max_length=200)
    funder = forms.ModelChoiceField(label=_("Commanditaire"), queryset=None)
    cheque_value_cents = EurosField(label=_("Valeur d'un chèque (€)"), initial=1000)
    offers_booklet_of_5 = forms.BooleanField(
        label=_("Chéquiers de 5 chèques"), required=False, initial=True
    )
    offers_booklet_of_10 = forms.BooleanField(
        label=_("Chéquiers de 10 chèques"), required=False, initial=True
    )
    validity_kind = forms.ChoiceField(
        label=_("Validité"),
        choices=ValidityKind.choices,
        widget=forms.RadioSelect,
        initial=ValidityKind.FIXED_DATE,
    )
    valid_until = forms.DateField(
        label=_("Date de fin"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    tolerance_days = forms.IntegerField(
        label=_("Tolérance après la fin (jours)"), min_value=0, max_value=365, initial=0
    )
    validity_months = forms.IntegerField(
        label=_("Mois de validité après la remise"), min_value=1, max_value=60, required=False
    )
    categories = forms.ModelMultipleChoiceField(
        label=_("Services éligibles"), queryset=None, widget=forms.CheckboxSelectMultiple
    )
    departements = forms.CharField(
        label=_("Territoire (départements)"),
        required=False,
        help_text=_("Numéros séparés par des virgules, par exemple « 33, 40 ». Vide : partout."),
    )
    fee_rate_bp = PercentField(label=_("Frais de gestion (%)"), initial=400)
    unused_value_policy = forms.ChoiceField(
        label=_("Valeur non utilisée"), choices=UnusedValuePolicy.choices
    )
    max_booklets_per_beneficiary = forms.IntegerField(
        label=_("Chéquiers par bénéficiaire"), min_value=1, initial=1
    )
    limit_period_days = forms.IntegerField(
        label=_("Sur une période de (jours)"), min_value=1, initial=365
    )
    max_booklets_per_order = forms.IntegerField(
        label=_("Chéquiers par commande au plus"), min_value=1, max_value=100000, initial=10000
    )
    is_active = forms.BooleanField(label=_("Ouvert aux commandes"), required=False, initial=True)

    def __init__(self, *args, funders, categories, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["funder"].queryset = funders
        self.fields["categories"].queryset = categories

    def clean_departements(self):
        raw = self.cleaned_data.get("departements") or ""
        return [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]

    @staticmethod
    def initial_from(programme: Programme) -> dict:
        from .services.programmes import PROGRAMME_FIELDS

        initial = {k: getattr(programme, k) for k in PROGRAMME_FIELDS}
        initial["departements"] = ", ".join(programme.departements)
        initial["funder"] = programme.funder_id
        initial["categories"] = list(programme.categories.all())
        return initial


class ServiceCategoryForm(forms.Form):
    name = forms.CharField(label=_("Nom du service"), max_length=150)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    is_active = forms.BooleanField(label=_("Proposé aux programmes"), required=False, initial=True)


class OrderForm(forms.Form):
    programme = forms.ModelChoiceField(label=_("Programme"), queryset=None, empty_label=None)
    quantity_10 = forms.IntegerField(
        label=_("Chéquiers de 10 chèques"),
        min_value=0,
        required=False,
        initial=0,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    quantity_5 = forms.IntegerField(
        label=_("Chéquiers de 5 chèques"),
        min_value=0,
        required=False,
        initial=0,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    purchase_order_number = forms.CharField(
        label=_("Votre numéro de bon de commande"), max_length=60, required=False
    )
    print_text = forms.CharField(
        label=_("Texte imprimé sur les chéquiers"),
        max_length=200,
        required=False,
        help_text=_("Par exemple : « Offert par le Département de la Gironde »."),
    )
    logo = forms.FileField(
        label=_("Logo imprimé sur la couverture"),
        required=False,
        help_text=_("PNG ou JPEG, 2 Mo au plus."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg"}),
    )

    def __init__(self, *args, programmes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].queryset = programmes

    def lines(self) -> dict[int, int]:
        return {
            10: self.cleaned_data.get("quantity_10") or 0,
            5: self.cleaned_data.get("quantity_5") or 0,
        }


class ApproveOrderForm(forms.Form):
    payment_reference = forms.CharField(
        label=_("Référence du paiement ou du bon de commande"),
        max_length=100,
        error_messages={"required": _("Indiquez la référence du paiement ou du bon de commande.")},
    )
    payment_received_on = forms.DateField(
        label=_("Reçu le"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        initial=timezone.localdate,
    )


class RejectOrderForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif du refus"),
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Indiquez le motif du refus.")},
    )
