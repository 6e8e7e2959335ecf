"""Monthly figures behind the funders' and operators' dashboards, rebuilt from the source tables.

A funder's or the operator's dashboard sums figures over every cheque of one or all funders: with
a million cheques, aggregating the source tables on each page view costs seconds. ``Tally`` holds
those aggregates per month, programme and breakdown, rebuilt whole by ``insight_refresh`` (every
few minutes, and when a dashboard finds them stale), so a dashboard sums a few thousand rows.
Nothing else reads or writes these tables; they can be dropped and rebuilt at any time.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orgs.models import Organisation
from vouchers.models import Programme


class Measure(models.TextChoices):
    ISSUED = "issued", _("Émis")
    HANDED_OUT = "handed_out", _("Remis")
    REDEEMED = "redeemed", _("Encaissés")
    EXPIRED = "expired", _("Expirés")
    # Cheques of the booklets handed out in the month that have been redeemed since.
    HANDED_REDEEMED = "handed_redeemed", _("Encaissés parmi les remis")
    FAILED_SCANS = "failed_scans", _("Scans refusés")


class Dimension(models.TextChoices):
    NONE = "", _("Total")
    SERVICE = "service", _("Service")
    DEPARTEMENT = "departement", _("Département")
    POSTCODE = "postcode", _("Code postal")
    DISTRIBUTOR = "distributor", _("Structure relais")
    AGE_BRACKET = "age_bracket", _("Tranche d'âge")
    SITUATION = "situation", _("Situation")
    REASON = "reason", _("Motif")


class Tally(models.Model):
    """One figure of a month: a measure, for a programme, in one breakdown (or in total).

    ``redeemed`` rows exist once per breakdown (service, département, postcode, structure relais,
    age bracket, situation): every breakdown adds up to the month's total. ``organisation`` is
    the structure relais (hand-outs, redemptions by structure relais) or the organisation whose
    scans were refused.
    """

    month = models.DateField()
    measure = models.CharField(max_length=20, choices=Measure.choices)
    dimension = models.CharField(max_length=20, choices=Dimension.choices, blank=True)
    key = models.CharField(max_length=40, blank=True)
    funder = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    programme = models.ForeignKey(
        Programme, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="+", null=True, blank=True
    )
    quantity = models.BigIntegerField(default=0)
    amount_cents = models.BigIntegerField(default=0)
    booklets = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["funder", "measure", "month"], name="tally_funder_measure"),
            models.Index(fields=["measure", "month"], name="tally_measure_month"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(measure__in=Measure.values), name="tally_measure_valid"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=0, amount_cents__gte=0, booklets__gte=0),
                name="tally_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.measure} {self.dimension}={self.key}: {self.quantity}"


class Snapshot(models.Model):
    """The single row that says when the tallies were last rebuilt; locked while rebuilding."""

    refreshed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"tallies of {self.refreshed_at}"
