"""Forms of the security pages: they parse a code; services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class CodeForm(forms.Form):
    token = forms.CharField(
        label=_("Code de vérification"),
        max_length=16,
        help_text=_(
            "Le code à 6 chiffres affiché par votre application d'authentification, "
            "ou l'un de vos codes de secours."
        ),
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "spellcheck": "false",
                "autocapitalize": "off",
            }
        ),
        error_messages={"required": _("Saisissez le code.")},
    )


class SetupCodeForm(CodeForm):
    token = forms.CharField(
        label=_("Code affiché par l'application"),
        max_length=16,
        help_text=_("6 chiffres, renouvelés toutes les 30 secondes."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "spellcheck": "false"}
        ),
        error_messages={"required": _("Saisissez le code.")},
    )
