"""Forms of the hand-over counter: the booklet number, and who receives the booklet.

The person's names and birth date only feed the per-person limit check (an HMAC computed by the
service); the form never puts them anywhere else.
"""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from orgs.selectors_geo import postcode_exists

from .models import AgeBracket, Gender, Situation
from .selectors.counter import booklet_number_normalise

_FIVE_DIGITS = re.compile(r"^[0-9]{5}$")
# What the names and birth date are for, shown on the form and tested against.
PERSON_NOTICE = _(
    "Le nom, le prénom et la date de naissance servent uniquement à vérifier la limite de "
    "chéquiers par personne. Ils ne sont pas enregistrés."
)
NAME_ATTRS = {
    "autocomplete": "off",
    "autocapitalize": "words",
    "spellcheck": "false",
    "data-1p-ignore": "",  # keep password managers from offering to save them
    "data-lpignore": "true",
}


class BookletNumberForm(forms.Form):
    """The single field of the counter: typed, scanned with a handheld scanner or the camera."""

    number = forms.CharField(
        label=_("Numéro du chéquier"),
        max_length=40,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "enterkeyhint": "search",
                "placeholder": "AP26-0001234",
                "class": "counter-scan-input",
                "aria-describedby": "counter-scan-help",
                "data-scan-field": "",
            }
        ),
    )

    def clean_number(self) -> str:
        typed = self.cleaned_data["number"]
        number = booklet_number_normalise(typed)
        if number is None and "/c/" in typed:
            raise forms.ValidationError(
                _(
                    "C'est le QR code d'un chèque. Scannez celui de la couverture du chéquier, "
                    "près du numéro."
                ),
                code="cheque_not_booklet",
            )
        if number is None:
            raise forms.ValidationError(
                _("« %(typed)s » n'est pas un numéro de chéquier (par exemple AP26-0001234)."),
                code="invalid_number",
                params={"typed": typed.strip()},
            )
        return number


class BeneficiaryForm(forms.Form):
    """Who receives the booklet: a pseudonymous profile, plus what the limit check needs."""

    age_bracket = forms.ChoiceField(
        label=_("Tranche d'âge"), choices=AgeBracket.choices, widget=forms.RadioSelect
    )
    postcode = forms.CharField(
        label=_("Code postal du domicile"),
        max_length=10,
        help_text=_("Pour indiquer les lieux proches de chez la personne."),
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": "[0-9]{5}"}
        ),
    )
    gender = forms.ChoiceField(
        label=_("Genre (facultatif)"),
        choices=[("", _("Non précisé")), *Gender.choices],
        required=False,
    )
    situation = forms.ChoiceField(
        label=_("Situation (facultatif)"),
        choices=[("", _("Non précisée")), *Situation.choices],
        required=False,
    )
    last_name = forms.CharField(
        label=_("Nom"), max_length=150, widget=forms.TextInput(attrs=NAME_ATTRS)
    )
    first_name = forms.CharField(
        label=_("Prénom"), max_length=150, widget=forms.TextInput(attrs=NAME_ATTRS)
    )
    birth_date = forms.DateField(
        label=_("Date de naissance"),
        widget=forms.DateInput(attrs={"type": "date", "autocomplete": "off"}, format="%Y-%m-%d"),
    )

    PERSON_FIELDS = ("last_name", "first_name", "birth_date")
    PROFILE_FIELDS = ("age_bracket", "postcode", "gender", "situation")

    def __init__(self, *args, with_override: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["birth_date"].error_messages["invalid"] = _(
            "Date de naissance invalide (jj/mm/aaaa)."
        )
        if with_override:
            self.fields["override_reason"] = forms.CharField(
                label=_("Motif de dérogation"),
                max_length=500,
                required=False,
                help_text=_(
                    "Pour remettre quand même ce chéquier, au-delà de la limite du programme. "
                    "Le motif est inscrit au journal : n'y écrivez pas le nom de la personne."
                ),
                # The counter's script moves the focus here when the field appears.
                widget=forms.Textarea(attrs={"rows": 2, "data-scan-focus": ""}),
            )

    def clean_postcode(self) -> str:
        postcode = "".join(self.cleaned_data["postcode"].split())
        if not _FIVE_DIGITS.match(postcode):
            raise forms.ValidationError(
                _("Le code postal doit comporter 5 chiffres."), code="invalid_postcode"
            )
        # The receipt lists the accredited places nearest to it: it must be a real one.
        if not postcode_exists(postcode):
            raise forms.ValidationError(
                _("Le code postal %(cp)s n'existe pas : vérifiez-le avec la personne."),
                code="unknown_postcode",
                params={"cp": postcode},
            )
        return postcode

    @property
    def profile_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.PROFILE_FIELDS]

    @property
    def person_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.PERSON_FIELDS]

    @property
    def override_field(self) -> forms.BoundField | None:
        return self["override_reason"] if "override_reason" in self.fields else None
