"""Redemptions at the provider's counter, failed scans, and (later) settlement."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orgs.models import AccreditationSite, Organisation, ServiceCategory, private_storage
from vouchers.models import Cheque

if TYPE_CHECKING:
    from orgs.models import Membership


class Reason(models.TextChoices):
    """The shared vocabulary of a cheque check (UI and API)."""

    OK = "ok", _("Chèque valide")
    UNKNOWN_CHEQUE = "unknown_cheque", _("Chèque inconnu")
    INVALID_CODE = "invalid_code", _("Code mal saisi (vérifiez les caractères)")
    ALREADY_REDEEMED = "already_redeemed", _("Chèque déjà encaissé")
    EXPIRED = "expired", _("Chèque expiré")
    BLOCKED = "blocked", _("Chèque bloqué (perte ou vol)")
    VOIDED = "voided", _("Chèque annulé")
    NOT_ELIGIBLE = "not_eligible", _("Chèque non utilisable ici")


class RedemptionStatus(models.TextChoices):
    ACTIVE = "active", _("Encaissé")
    CANCELLED = "cancelled", _("Annulé")


class RedemptionQuerySet(models.QuerySet["Redemption"]):
    def visible_to(self, membership: Membership) -> RedemptionQuerySet:
        """A redemption: its provider, the funders of its cheques; operators: all."""
        organisation = membership.organisation
        if organisation.is_operator:
            return self.all()
        funded = RedemptionLine.objects.filter(cheque__booklet__funder=organisation).values(
            "redemption_id"
        )
        return self.filter(Q(provider=organisation) | Q(pk__in=funded))


class Redemption(models.Model):
    """One or several cheques taken at once for one service, all or nothing."""

    provider = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="redemptions")
    site = models.ForeignKey(
        AccreditationSite, on_delete=models.PROTECT, related_name="redemptions", null=True
    )
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    service = models.ForeignKey(ServiceCategory, on_delete=models.PROTECT, related_name="+")
    amount_cents = models.PositiveIntegerField()
    cheque_count = models.PositiveSmallIntegerField()
    status = models.CharField(
        max_length=10, choices=RedemptionStatus.choices, default=RedemptionStatus.ACTIVE
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    # One column: a redemption is in at most one payout, by construction.
    payout = models.ForeignKey(
        "Payout", on_delete=models.PROTECT, related_name="redemptions", null=True, blank=True
    )

    objects = RedemptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="one_redemption_per_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(amount_cents__gt=0), name="redemption_amount_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=RedemptionStatus.values), name="redemption_status_valid"
            ),
            # A cancelled redemption is never paid.
            models.CheckConstraint(
                condition=Q(payout__isnull=True) | Q(status=RedemptionStatus.ACTIVE),
                name="only_active_redemptions_are_paid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["provider", "created_at"],
                condition=Q(payout__isnull=True, status="active"),
                name="redemption_unsettled",
            )
        ]

    def __str__(self) -> str:
        return f"R{self.pk} {self.provider} {self.amount_cents} c"


class RedemptionLine(models.Model):
    """A cheque in a redemption. ``live`` mirrors the redemption: a cancelled one frees it."""

    redemption = models.ForeignKey(Redemption, on_delete=models.PROTECT, related_name="lines")
    cheque = models.ForeignKey(Cheque, on_delete=models.PROTECT, related_name="redemption_lines")
    value_cents = models.PositiveIntegerField()
    live = models.BooleanField(default=True)

    class Meta:
        constraints = [
            # At most one live redemption per cheque, whatever the code path.
            models.UniqueConstraint(
                fields=["cheque"], condition=Q(live=True), name="one_live_redemption_per_cheque"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.redemption_id}:{self.cheque_id}"


class ScanAttemptQuerySet(models.QuerySet["ScanAttempt"]):
    def visible_to(self, membership: Membership) -> ScanAttemptQuerySet:
        if membership.organisation.is_operator:
            return self.all()
        return self.filter(organisation=membership.organisation)


class ScanAttempt(models.Model):
    """A failed check or redemption, kept as a fraud signal."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    code = models.CharField(max_length=40)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    kind = models.CharField(max_length=10, default="check")  # check | redeem | public
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = ScanAttemptQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organisation", "created_at"], name="scan_org_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.code} {self.reason}"


class RedemptionKeyLock(models.Model):
    """A row per provider and Idempotency-Key, locked so a concurrent replay waits for the first."""

    provider = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "key"], name="one_key_lock_per_provider")
        ]

    def __str__(self) -> str:
        return f"{self.provider_id}:{self.key}"


class LockoutQuerySet(models.QuerySet["Lockout"]):
    def active(self) -> LockoutQuerySet:
        return self.filter(until__gt=timezone.now())


class Lockout(models.Model):
    """An organisation barred from redeeming for a while after too many failed scans."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    started_at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField()
    failures = models.PositiveIntegerField()

    objects = LockoutQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.organisation} until {self.until:%H:%M}"


class BatchStatus(models.TextChoices):
    COMPUTING = "computing", _("En calcul")
    PENDING_APPROVAL = "pending_approval", _("À approuver")
    APPROVED = "approved", _("Approuvé")
    EXPORTED = "exported", _("Virement exporté")
    PAID = "paid", _("Payé")


BATCH_TRANSITIONS: dict[str, tuple[str, ...]] = {
    BatchStatus.COMPUTING: (BatchStatus.PENDING_APPROVAL,),
    BatchStatus.PENDING_APPROVAL: (BatchStatus.APPROVED,),
    BatchStatus.APPROVED: (BatchStatus.EXPORTED,),
    BatchStatus.EXPORTED: (BatchStatus.PAID,),
    BatchStatus.PAID: (),
}


class SettlementBatch(models.Model):
    """The reimbursement of the redemptions up to a date: one payout per payable provider."""

    reference = models.CharField(_("référence"), max_length=20, unique=True)
    period_end = models.DateField(_("encaissements jusqu'au"), unique=True)
    status = models.CharField(
        _("état"), max_length=20, choices=BatchStatus.choices, default=BatchStatus.COMPUTING
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    computed_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # Files with bank details: private storage, served only through checked views.
    sepa_file = models.FileField(storage=private_storage, upload_to="sepa/", blank=True)
    sepa_message_id = models.CharField(max_length=35, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)
    execution_date = models.DateField(_("date d'exécution"), null=True, blank=True)
    paid_on = models.DateField(_("payé le"), null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    total_cents = models.PositiveBigIntegerField(default=0)
    payout_count = models.PositiveIntegerField(default=0)
    redemption_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-period_end"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=BatchStatus.values), name="batch_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(
                    status__in=[BatchStatus.APPROVED, BatchStatus.EXPORTED, BatchStatus.PAID]
                )
                | (Q(approved_by__isnull=False) & ~Q(approved_by=models.F("created_by"))),
                name="batch_approved_by_another_operator",
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class PayoutStatus(models.TextChoices):
    PENDING = "pending", _("À payer")
    PAID = "paid", _("Payé")
    REJECTED = "rejected", _("Rejeté par la banque")


class PayoutQuerySet(models.QuerySet["Payout"]):
    def visible_to(self, membership: Membership) -> PayoutQuerySet:
        if membership.organisation.is_operator:
            return self.all()
        return self.filter(provider=membership.organisation)


class Payout(models.Model):
    """What one provider is paid in a batch, with the bank details as they were at computation."""

    batch = models.ForeignKey(SettlementBatch, on_delete=models.PROTECT, related_name="payouts")
    provider = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="payouts")
    created_at = models.DateTimeField(default=timezone.now)
    amount_cents = models.PositiveBigIntegerField(default=0)
    redemption_count = models.PositiveIntegerField(default=0)
    iban = models.CharField(max_length=34)
    bic = models.CharField(max_length=11)
    account_holder = models.CharField(max_length=150)
    end_to_end_id = models.CharField(max_length=35, unique=True)
    status = models.CharField(
        max_length=10, choices=PayoutStatus.choices, default=PayoutStatus.PENDING
    )
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=200, blank=True)
    statement_pdf = models.FileField(storage=private_storage, upload_to="statements/", blank=True)
    statement_csv = models.FileField(storage=private_storage, upload_to="statements/", blank=True)
    statement_ready_at = models.DateTimeField(null=True, blank=True)

    objects = PayoutQuerySet.as_manager()

    class Meta:
        ordering = ["batch", "provider__name"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "provider"], name="one_payout_per_provider"),
            models.CheckConstraint(condition=Q(amount_cents__gte=0), name="payout_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.batch} {self.provider}"


class HeldProvider(models.Model):
    """A provider left out of a batch (bank details unverified, not accredited), with why."""

    batch = models.ForeignKey(SettlementBatch, on_delete=models.PROTECT, related_name="held")
    provider = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=30)
    amount_cents = models.PositiveBigIntegerField()
    redemption_count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "provider"], name="one_hold_per_provider")
        ]

    def __str__(self) -> str:
        return f"{self.batch} {self.provider}: {self.reason}"
