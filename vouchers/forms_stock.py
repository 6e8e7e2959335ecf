"""Forms of distribution: allocation, return, blocking, and the list filters. They parse input;
the services in ``vouchers.services.distribution`` decide."""

from __future__ import annotations

import re

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import BOOKLET_SIZES, BookletStatus

MAX_NUMBERS = 2000
_SEPARATORS = re.compile(r"[\s,;]+")
# « AP27-0000123 », also typed « ap27-123 » or « AP270000123 ».
_BOOKLET_NUMBER = re.compile(r"^AP(\d{2})-?(\d{1,7})$")
SIZE_CHOICES = [(10, _("10 chèques")), (5, _("5 chèques"))]
assert {size for size, _label in SIZE_CHOICES} == set(BOOKLET_SIZES)


def clean_booklet_number(raw: str) -> str:
    """The canonical booklet number (``AP27-0000123``); other text is kept, upper-cased."""
    text = (raw or "").strip().upper().replace(" ", "")
    match = _BOOKLET_NUMBER.match(text)
    if not match:
        return text
    return f"AP{match.group(1)}-{int(match.group(2)):07d}"


class BookletNumberField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 20)
        super().__init__(**kwargs)

    def clean(self, value):
        number = clean_booklet_number(super().clean(value))
        if number and not _BOOKLET_NUMBER.match(number):
            raise forms.ValidationError(
                _("Numéro de chéquier invalide (format AP27-0000123)."), code="invalid"
            )
        return number


class AllocationForm(forms.Form):
    BY_COUNT = "count"
    BY_RANGE = "range"

    distributor = forms.ModelChoiceField(
        label=_("Structure relais"), queryset=None, empty_label=_("Choisissez…")
    )
    programme = forms.ModelChoiceField(label=_("Programme"), queryset=None, empty_label=None)
    mode = forms.ChoiceField(
        label=_("Quels chéquiers ?"),
        choices=[
            (BY_COUNT, _("Les prochains chéquiers en stock")),
            (BY_RANGE, _("Une plage de numéros")),
        ],
        widget=forms.RadioSelect,
        initial=BY_COUNT,
    )
    count = forms.IntegerField(
        label=_("Nombre de chéquiers"),
        min_value=1,
        max_value=100000,
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    size = forms.TypedChoiceField(
        label=_("Chéquiers de"), choices=SIZE_CHOICES, coerce=int, required=False
    )
    first_number = BookletNumberField(label=_("Premier numéro"), required=False)
    last_number = BookletNumberField(label=_("Dernier numéro"), required=False)

    def __init__(self, *args, distributors, programmes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["distributor"].queryset = distributors
        self.fields["programme"].queryset = programmes
        example = f"AP{timezone.localdate().year % 100:02d}-0000001"
        for name in ("first_number", "last_number"):
            self.fields[name].widget.attrs["placeholder"] = example

    def clean(self):
        data = super().clean()
        if data.get("mode") == self.BY_RANGE:
            for name in ("first_number", "last_number"):
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, _("Indiquez le numéro."))
            first, last = data.get("first_number"), data.get("last_number")
            if first and last and first > last:
                self.add_error("last_number", _("Le dernier numéro doit suivre le premier."))
        else:
            if not data.get("count") and "count" not in self.errors:
                self.add_error("count", _("Indiquez le nombre de chéquiers."))
            if not data.get("size"):
                self.add_error("size", _("Choisissez la taille des chéquiers."))
        return data

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        arguments = {"distributor": data["distributor"], "programme": data["programme"]}
        if data["mode"] == self.BY_RANGE:
            # A range is taken as typed: every booklet in it must be in stock.
            arguments.update(first_number=data["first_number"], last_number=data["last_number"])
        else:
            arguments.update(count=data["count"], size=data["size"])
        return arguments


class ReturnForm(forms.Form):
    numbers = forms.CharField(
        label=_("Numéros des chéquiers"),
        help_text=_("Un numéro par ligne, ou séparés par des virgules."),
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "AP27-0000001\nAP27-0000002"}),
    )

    def clean_numbers(self) -> list[str]:
        parts = [p for p in _SEPARATORS.split(self.cleaned_data["numbers"]) if p]
        if not parts:
            raise forms.ValidationError(_("Indiquez au moins un numéro."), code="required")
        if len(parts) > MAX_NUMBERS:
            raise forms.ValidationError(
                _("%(max)s numéros au plus à la fois.") % {"max": MAX_NUMBERS}, code="too_many"
            )
        numbers = [clean_booklet_number(p) for p in parts]
        wrong = [p for p, n in zip(parts, numbers, strict=True) if not _BOOKLET_NUMBER.match(n)]
        if wrong:
            raise forms.ValidationError(
                _("Numéro(s) invalide(s) : %(numbers)s.") % {"numbers": ", ".join(wrong[:10])},
                code="invalid",
            )
        return list(dict.fromkeys(numbers))


class BlockForm(forms.Form):
    reason = forms.CharField(
        label=_("Motif"),
        max_length=200,
        help_text=_("Par exemple : perte déclarée par le bénéficiaire, vol, chéquier abîmé."),
    )


class BlockChequesForm(BlockForm):
    cheques = forms.ModelMultipleChoiceField(
        label=_("Chèques à bloquer"), queryset=None, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, cheques, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cheques"].queryset = cheques
        self.fields["cheques"].error_messages["required"] = _("Cochez au moins un chèque.")


class BookletFilterForm(forms.Form):
    """The filters of the booklet list (GET); an invalid value is simply ignored."""

    SORTS = [("recent", _("Numéros récents d'abord")), ("number", _("Par numéro"))]

    q = forms.CharField(label=_("Numéro"), required=False, max_length=20)
    programme = forms.ModelChoiceField(
        label=_("Programme"), queryset=None, required=False, empty_label=_("Tous")
    )
    etat = forms.ChoiceField(
        label=_("État"), choices=[("", _("Tous")), *BookletStatus.choices], required=False
    )
    taille = forms.TypedChoiceField(
        label=_("Taille"),
        choices=[("", _("Toutes")), *SIZE_CHOICES],
        coerce=int,
        empty_value=None,
        required=False,
    )
    structure = forms.ModelChoiceField(
        label=_("Structure relais"), queryset=None, required=False, empty_label=_("Toutes")
    )
    # Sorting is a link on the « Numéro » column; the field keeps it while filtering.
    tri = forms.ChoiceField(
        label=_("Ordre"), choices=SORTS, required=False, widget=forms.HiddenInput
    )

    def __init__(self, *args, programmes, holders, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].queryset = programmes
        if holders is None:
            del self.fields["structure"]
        else:
            self.fields["structure"].queryset = holders

    def filters(self) -> dict:
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {
            "programme": data.get("programme"),
            "status": data.get("etat") or "",
            "size": data.get("taille"),
            "holder": data.get("structure"),
            "search": data.get("q") or "",
            "order": "number" if data.get("tri") == "number" else "recent",
        }


class FollowUpFilterForm(forms.Form):
    programme = forms.ModelChoiceField(
        label=_("Programme"), queryset=None, required=False, empty_label=_("Tous")
    )
    du = forms.DateField(
        label=_("Remis du"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    au = forms.DateField(
        label=_("au"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args, programmes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].queryset = programmes

    def clean(self):
        data = super().clean()
        since, until = data.get("du"), data.get("au")
        if since and until and since > until:
            self.add_error("au", _("La fin de la période doit suivre son début."))
        return data

    def filters(self) -> dict:
        if not self.is_valid():
            return {"programme": None, "since": None, "until": None}
        data = self.cleaned_data
        return {
            "programme": data.get("programme"),
            "since": data.get("du"),
            "until": data.get("au"),
        }


class HandOutFilterForm(forms.Form):
    """The filters of the hand-outs list (GET). An invalid value is a field error: the list
    then shows nothing rather than rows the caller did not ask for."""

    programme = forms.ModelChoiceField(
        label=_("Programme"), queryset=None, required=False, empty_label=_("Tous")
    )
    du = forms.DateField(
        label=_("Remis du"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    au = forms.DateField(
        label=_("au"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    agent = forms.ModelChoiceField(
        label=_("Agent"), queryset=None, required=False, empty_label=_("Tous")
    )
    structure = forms.ModelChoiceField(
        label=_("Structure relais"), queryset=None, required=False, empty_label=_("Toutes")
    )

    def __init__(self, *args, programmes, agents, distributors, **kwargs):
        """``agents`` or ``distributors`` is None when the caller does not filter by it."""
        super().__init__(*args, **kwargs)
        self.fields["programme"].queryset = programmes
        for name, choices in (("agent", agents), ("structure", distributors)):
            if choices is None:
                del self.fields[name]
            else:
                self.fields[name].queryset = choices

    def clean(self):
        data = super().clean()
        since, until = data.get("du"), data.get("au")
        if since and until and since > until:
            self.add_error("au", _("La fin de la période doit suivre son début."))
        return data

    def filters(self) -> dict:
        """The selector's keyword arguments; call only once the form is valid."""
        data = self.cleaned_data
        return {
            "programme": data.get("programme"),
            "since": data.get("du"),
            "until": data.get("au"),
            "agent": data.get("agent"),
            "distributor": data.get("structure"),
        }
