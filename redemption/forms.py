"""The counter's choices: where the agent works and which service the cheques pay for."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from orgs.models import AccreditationSite, Membership, ServiceCategory

from . import selectors

# The selects sit above the scan field but belong to the redeem form (HTML ``form`` attribute);
# the scan form sends them with each check (``hx-include="[data-scan-context]"``).
CONTEXT_ATTRS = {"form": "redeem-form", "data-scan-context": ""}


class ServiceSelect(forms.Select):
    """A select whose options say at which sites each service is offered (``data-sites``)."""

    offered_at: dict[int, list[int]]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.offered_at = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        pk = getattr(value, "value", value)
        if pk in self.offered_at:
            option["attrs"]["data-sites"] = " ".join(str(s) for s in self.offered_at[pk])
        return option


class CounterForm(forms.Form):
    """Site and service of a redemption; preselected when the provider has only one of each."""

    site = forms.ModelChoiceField(
        label=_("Lieu"),
        queryset=AccreditationSite.objects.none(),
        empty_label=_("Choisissez le lieu"),
        error_messages={"required": _("Choisissez le lieu où vous encaissez.")},
        widget=forms.Select(attrs=CONTEXT_ATTRS),
    )
    service = forms.ModelChoiceField(
        label=_("Service rendu"),
        queryset=ServiceCategory.objects.none(),
        empty_label=_("Choisissez le service"),
        error_messages={"required": _("Choisissez le service rendu.")},
        widget=ServiceSelect(attrs=CONTEXT_ATTRS),
    )

    def __init__(self, *args, membership: Membership, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sites = list(selectors.provider_sites(membership=membership))
        services = list(selectors.provider_services(membership=membership))
        self.fields["site"].queryset = selectors.provider_sites(membership=membership)
        self.fields["service"].queryset = selectors.provider_services(membership=membership)
        offered: dict[int, list[int]] = {}
        for site in self.sites:
            for service in site.services.all():
                offered.setdefault(service.pk, []).append(site.pk)
        self.fields["service"].widget.offered_at = offered
        if len(self.sites) == 1:
            self.fields["site"].empty_label = None
            self.fields["site"].initial = self.sites[0].pk
        if len(services) == 1:
            self.fields["service"].empty_label = None
            self.fields["service"].initial = services[0].pk
        self.has_choices = bool(self.sites and services)
