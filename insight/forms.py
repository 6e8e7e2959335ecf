"""The dashboards' filters (GET): programme, period in whole months, funder for operators."""

from __future__ import annotations

import re
from datetime import date

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .selectors import Period

MAX_MONTHS = 60
DEFAULT_MONTHS = 12
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class MonthField(forms.CharField):
    """A month typed as « AAAA-MM » (what ``<input type="month">`` sends): its first day."""

    widget = forms.TextInput(
        attrs={"type": "month", "pattern": r"\d{4}-\d{2}", "placeholder": "AAAA-MM"}
    )
    default_error_messages = {
        "invalid": _("Indiquez un mois sous la forme AAAA-MM, par exemple 2026-01."),
    }

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        match = _MONTH.match(value.strip())
        if not match:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        year, month = int(match.group(1)), int(match.group(2))
        if not (2000 <= year <= 2100 and 1 <= month <= 12):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return date(year, month, 1)


class DashboardFilterForm(forms.Form):
    programme = forms.ModelChoiceField(
        label=_("Programme"),
        queryset=None,
        required=False,
        empty_label=_("Tous"),
        error_messages={"invalid_choice": _("Ce programme n'existe pas ou ne vous concerne pas.")},
    )
    du = MonthField(label=_("Du mois"), required=False)
    au = MonthField(label=_("au mois"), required=False)

    def __init__(self, *args, programmes, funders=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].queryset = programmes
        if funders is not None:
            self.fields["commanditaire"] = forms.ModelChoiceField(
                label=_("Commanditaire"),
                queryset=funders,
                required=False,
                empty_label=_("Tous"),
                error_messages={"invalid_choice": _("Ce commanditaire n'existe pas.")},
            )
            # Shown first: the funder narrows the programmes.
            self.order_fields(["commanditaire", "programme", "du", "au"])

    def clean(self):
        data = super().clean()
        today = timezone.localdate().replace(day=1)
        end = data.get("au") or today
        start = data.get("du")
        if start is None:
            year, month = divmod(end.year * 12 + end.month - 1 - (DEFAULT_MONTHS - 1), 12)
            start = date(year, month + 1, 1)
        if "du" in self.errors or "au" in self.errors:
            return data
        if start > end:
            self.add_error("au", _("Le mois de fin doit suivre le mois de début."))
        elif (end.year - start.year) * 12 + end.month - start.month + 1 > MAX_MONTHS:
            self.add_error(
                "du", _("La période ne peut pas dépasser %(n)s mois.") % {"n": MAX_MONTHS}
            )
        funder, programme = data.get("commanditaire"), data.get("programme")
        if funder is not None and programme is not None and programme.funder_id != funder.pk:
            self.add_error("programme", _("Ce programme n'est pas financé par ce commanditaire."))
        data["period"] = Period(start=start, end=end)
        return data
