"""The directory's search form: every field optional, each checked with a French message."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from aptic.errors import ValidationFailed
from orgs.selectors_geo import postcode_exists
from orgs.validators import clean_departement, clean_postcode

from .selectors import directory_services


class DirectorySearchForm(forms.Form):
    cp = forms.CharField(
        label=_("Code postal"),
        required=False,
        max_length=10,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "postal-code", "size": 8}
        ),
    )
    departement = forms.CharField(
        label=_("Département"),
        required=False,
        max_length=5,
        help_text=_("Par exemple 33, 2A ou 974."),
        widget=forms.TextInput(attrs={"size": 5}),
    )
    service = forms.ChoiceField(label=_("Service"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].choices = [("", _("Tous les services"))] + [
            (s.slug, s.name) for s in directory_services()
        ]

    def clean_cp(self) -> str:
        value = self.cleaned_data["cp"].strip()
        if not value:
            return ""
        try:
            value = clean_postcode(value)
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message) from exc
        if not postcode_exists(value):
            raise forms.ValidationError(
                _("Le code postal %(cp)s n'existe pas. Vérifiez-le, ou cherchez par département.")
                % {"cp": value}
            )
        return value

    def clean_departement(self) -> str:
        value = self.cleaned_data["departement"].strip()
        if not value:
            return ""
        try:
            return clean_departement(value)
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message) from exc
