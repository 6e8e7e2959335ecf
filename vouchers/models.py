"""Programmes, orders, booklets and cheques: data and the invariants the database enforces."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orgs.models import Organisation, ServiceCategory

if TYPE_CHECKING:
    from orgs.models import Membership

BOOKLET_SIZES = (5, 10)


class ValidityKind(models.TextChoices):
    FIXED_DATE = "fixed_date", _("Date de fin fixe")
    MONTHS_FROM_HANDOVER = "months", _("Nombre de mois après la remise")


class UnusedValuePolicy(models.TextChoices):
    CREDIT_NOTE = "credit_note", _("Avoir au commanditaire")
    REFUND = "refund", _("Remboursement au commanditaire")
    CARRY_OVER = "carry_over", _("Report sur le programme suivant")


class ProgrammeQuerySet(models.QuerySet["Programme"]):
    def visible_to(self, membership: Membership) -> ProgrammeQuerySet:
        organisation = membership.organisation
        if organisation.is_operator:
            return self.all()
        if organisation.is_funder:
            return self.filter(funder=organisation)
        return self.none()


class Programme(models.Model):
    """A funder's scheme, e.g. « Chèque APTIC Gironde 2027 »."""

    name = models.CharField(_("nom"), max_length=200)
    funder = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="programmes",
        verbose_name=_("commanditaire"),
    )
    cheque_value_cents = models.PositiveIntegerField(
        _("valeur d'un chèque (centimes)"), default=1000
    )
    offers_booklet_of_5 = models.BooleanField(_("chéquiers de 5 chèques"), default=True)
    offers_booklet_of_10 = models.BooleanField(_("chéquiers de 10 chèques"), default=True)
    validity_kind = models.CharField(
        _("validité"), max_length=12, choices=ValidityKind.choices, default=ValidityKind.FIXED_DATE
    )
    valid_until = models.DateField(_("date de fin"), null=True, blank=True)
    tolerance_days = models.PositiveIntegerField(_("tolérance après la fin (jours)"), default=0)
    validity_months = models.PositiveIntegerField(_("mois de validité"), null=True, blank=True)
    categories = models.ManyToManyField(
        ServiceCategory, related_name="programmes", verbose_name=_("services éligibles")
    )
    departements = models.JSONField(
        _("territoire (départements)"),
        default=list,
        blank=True,
        help_text=_("Vide : tout le territoire."),
    )
    fee_rate_bp = models.PositiveIntegerField(
        _("frais de gestion (points de base)"),
        default=400,
        help_text=_("400 = 4 %"),
    )
    unused_value_policy = models.CharField(
        _("valeur non utilisée"),
        max_length=12,
        choices=UnusedValuePolicy.choices,
        default=UnusedValuePolicy.CREDIT_NOTE,
    )
    max_booklets_per_beneficiary = models.PositiveIntegerField(
        _("chéquiers par bénéficiaire et par période"), default=1
    )
    limit_period_days = models.PositiveIntegerField(_("période de la limite (jours)"), default=365)
    max_booklets_per_order = models.PositiveIntegerField(
        _("chéquiers par commande au plus"), default=10000
    )
    is_active = models.BooleanField(_("ouvert aux commandes"), default=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ProgrammeQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "name"]
        verbose_name = _("programme")
        constraints = [
            models.CheckConstraint(
                condition=Q(offers_booklet_of_5=True) | Q(offers_booklet_of_10=True),
                name="programme_offers_a_size",
            ),
            models.CheckConstraint(
                condition=Q(cheque_value_cents__gt=0), name="programme_value_positive"
            ),
            models.CheckConstraint(
                condition=Q(fee_rate_bp__lte=10000), name="programme_fee_rate_at_most_100pc"
            ),
            models.CheckConstraint(
                condition=(
                    Q(validity_kind=ValidityKind.FIXED_DATE, valid_until__isnull=False)
                    | Q(validity_kind=ValidityKind.MONTHS_FROM_HANDOVER, validity_months__gt=0)
                ),
                name="programme_validity_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def booklet_sizes(self) -> list[int]:
        return [size for size in BOOKLET_SIZES if getattr(self, f"offers_booklet_of_{size}")]

    @property
    def last_valid_day(self):
        """For a fixed end date: the end date plus the tolerance. None for month-based validity."""
        if self.validity_kind != ValidityKind.FIXED_DATE or self.valid_until is None:
            return None
        return self.valid_until + timedelta(days=self.tolerance_days)


class OrderStatus(models.TextChoices):
    DRAFT = "draft", _("Brouillon")
    SUBMITTED = "submitted", _("Envoyée")
    APPROVED = "approved", _("Validée")
    ISSUED = "issued", _("Chéquiers émis")
    PRINTED = "printed", _("Prête à imprimer")
    CANCELLED = "cancelled", _("Annulée")
    REJECTED = "rejected", _("Refusée")


# The allowed transitions, written once. Services change status with a compare-and-set on these.
ORDER_TRANSITIONS: dict[str, tuple[str, ...]] = {
    OrderStatus.DRAFT: (OrderStatus.SUBMITTED, OrderStatus.CANCELLED),
    OrderStatus.SUBMITTED: (OrderStatus.APPROVED, OrderStatus.REJECTED, OrderStatus.CANCELLED),
    OrderStatus.APPROVED: (OrderStatus.ISSUED,),
    OrderStatus.ISSUED: (OrderStatus.PRINTED,),
    OrderStatus.PRINTED: (),
    OrderStatus.CANCELLED: (),
    OrderStatus.REJECTED: (),
}


class OrderQuerySet(models.QuerySet["Order"]):
    def visible_to(self, membership: Membership) -> OrderQuerySet:
        organisation = membership.organisation
        if organisation.is_operator:
            return self.all()
        if organisation.is_funder:
            return self.filter(funder=organisation)
        return self.none()


class Order(models.Model):
    reference = models.CharField(_("référence"), max_length=20, unique=True)
    funder = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="orders",
        verbose_name=_("commanditaire"),
    )
    programme = models.ForeignKey(
        Programme, on_delete=models.PROTECT, related_name="orders", verbose_name=_("programme")
    )
    status = models.CharField(
        _("état"), max_length=12, choices=OrderStatus.choices, default=OrderStatus.DRAFT
    )
    purchase_order_number = models.CharField(
        _("numéro de bon de commande"), max_length=60, blank=True
    )
    print_text = models.CharField(_("texte imprimé sur les chéquiers"), max_length=200, blank=True)
    logo = models.ImageField(_("logo"), upload_to="logos/%Y/", blank=True)
    face_value_cents = models.PositiveBigIntegerField(_("valeur faciale"), default=0)
    fee_cents = models.PositiveBigIntegerField(_("frais de gestion"), default=0)
    total_cents = models.PositiveBigIntegerField(_("total"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    payment_reference = models.CharField(_("référence du paiement"), max_length=100, blank=True)
    payment_received_on = models.DateField(_("paiement reçu le"), null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.TextField(_("motif du refus"), blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    printed_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("commande")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=OrderStatus.values), name="order_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(total_cents=models.F("face_value_cents") + models.F("fee_cents")),
                name="order_total_is_face_value_plus_fee",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def booklet_count(self) -> int:
        return sum(line.quantity for line in self.lines.all())

    @property
    def cheque_count(self) -> int:
        return sum(line.quantity * line.booklet_size for line in self.lines.all())


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    booklet_size = models.PositiveSmallIntegerField(_("chèques par chéquier"))
    quantity = models.PositiveIntegerField(_("nombre de chéquiers"))

    class Meta:
        ordering = ["booklet_size"]
        constraints = [
            models.UniqueConstraint(fields=["order", "booklet_size"], name="one_line_per_size"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
            models.CheckConstraint(
                condition=Q(booklet_size__in=BOOKLET_SIZES), name="line_size_offered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.booklet_size}"


class YearlyCounter(models.Model):
    """Gap-free numbering per year (order references, booklet numbers), taken under a row lock."""

    name = models.CharField(max_length=30)
    year = models.PositiveIntegerField()
    value = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "year"], name="one_counter_per_name_and_year")
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.year}: {self.value}"


class BookletStatus(models.TextChoices):
    IN_STOCK = "in_stock", _("En stock")
    ALLOCATED = "allocated", _("Confié à une structure relais")
    ASSIGNED = "assigned", _("Remis à un bénéficiaire")
    BLOCKED = "blocked", _("Bloqué")


class BookletQuerySet(models.QuerySet["Booklet"]):
    def visible_to(self, membership: Membership) -> BookletQuerySet:
        organisation = membership.organisation
        if organisation.is_operator:
            return self.all()
        return self.filter(Q(funder=organisation) | Q(holder=organisation))


class Booklet(models.Model):
    number = models.CharField(_("numéro"), max_length=20, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="booklets")
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="booklets")
    funder = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="+")
    holder = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="held_booklets", null=True, blank=True
    )
    size = models.PositiveSmallIntegerField(_("chèques"))
    status = models.CharField(
        _("état"), max_length=12, choices=BookletStatus.choices, default=BookletStatus.IN_STOCK
    )
    print_position = models.PositiveIntegerField(help_text="order of the booklet in the print run")
    created_at = models.DateTimeField(default=timezone.now)
    allocated_at = models.DateTimeField(null=True, blank=True)
    beneficiary = models.ForeignKey(
        "Beneficiary", on_delete=models.PROTECT, related_name="booklets", null=True, blank=True
    )
    assigned_at = models.DateTimeField(_("remis le"), null=True, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    blocked_at = models.DateTimeField(null=True, blank=True)
    blocked_reason = models.CharField(_("motif du blocage"), max_length=200, blank=True)
    replaces = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        related_name="replacement",
        null=True,
        blank=True,
        verbose_name=_("remplace le chéquier"),
    )

    objects = BookletQuerySet.as_manager()

    class Meta:
        ordering = ["number"]
        verbose_name = _("chéquier")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=BookletStatus.values), name="booklet_status_valid"
            ),
            # Ordered booklets hold 5 or 10 cheques; a replacement holds what was left unspent.
            models.CheckConstraint(
                condition=Q(size__gte=1, size__lte=max(BOOKLET_SIZES)), name="booklet_size_valid"
            ),
            models.UniqueConstraint(
                fields=["order", "print_position"], name="one_booklet_per_print_position"
            ),
            models.CheckConstraint(
                condition=~Q(status=BookletStatus.ASSIGNED)
                | Q(beneficiary__isnull=False, assigned_at__isnull=False),
                name="assigned_booklet_has_beneficiary",
            ),
            models.CheckConstraint(
                condition=~Q(status=BookletStatus.ALLOCATED) | Q(holder__isnull=False),
                name="allocated_booklet_has_holder",
            ),
        ]
        indexes = [models.Index(fields=["holder", "status"], name="booklet_holder_status")]

    def __str__(self) -> str:
        return self.number

    @property
    def value_cents(self) -> int:
        return self.size * self.programme.cheque_value_cents


class AgeBracket(models.TextChoices):
    UNDER_26 = "16-25", _("16 à 25 ans")
    FROM_26 = "26-44", _("26 à 44 ans")
    FROM_45 = "45-59", _("45 à 59 ans")
    FROM_60 = "60-74", _("60 à 74 ans")
    FROM_75 = "75+", _("75 ans et plus")


class Gender(models.TextChoices):
    FEMALE = "female", _("Femme")
    MALE = "male", _("Homme")
    OTHER = "other", _("Autre")


class Situation(models.TextChoices):
    JOB_SEEKER = "job_seeker", _("Demandeur d'emploi")
    RSA = "rsa", _("Bénéficiaire du RSA")
    SENIOR = "senior", _("Retraité")
    DISABILITY = "disability", _("En situation de handicap")
    STUDENT = "student", _("Étudiant ou en formation")
    EMPLOYED = "employed", _("En emploi")
    OTHER = "other", _("Autre")


class BeneficiaryQuerySet(models.QuerySet["Beneficiary"]):
    def visible_to(self, membership: Membership) -> BeneficiaryQuerySet:
        organisation = membership.organisation
        if organisation.is_operator:
            return self.all()
        return self.filter(distributor=organisation)


class Beneficiary(models.Model):
    """A person who received a booklet, pseudonymous: no name, no birth date is stored.

    ``dedup_key`` is an HMAC (server secret) of the normalised names and birth date, so the
    programme limit holds across distributors without keeping who the person is.
    """

    reference = models.CharField(_("référence"), max_length=16, unique=True)
    distributor = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="beneficiaries"
    )
    age_bracket = models.CharField(_("tranche d'âge"), max_length=5, choices=AgeBracket.choices)
    postcode = models.CharField(_("code postal"), max_length=5)
    gender = models.CharField(_("genre"), max_length=6, choices=Gender.choices, blank=True)
    situation = models.CharField(
        _("situation"), max_length=12, choices=Situation.choices, blank=True
    )
    dedup_key = models.CharField(max_length=64, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = BeneficiaryQuerySet.as_manager()

    class Meta:
        verbose_name = _("bénéficiaire")
        constraints = [
            models.CheckConstraint(
                condition=Q(postcode__regex=r"^[0-9]{5}$"), name="beneficiary_postcode_5_digits"
            ),
            models.CheckConstraint(
                condition=Q(age_bracket__in=AgeBracket.values), name="beneficiary_age_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class BeneficiaryLimitLock(models.Model):
    """One row per programme and person, locked while a hand-over checks the programme limit."""

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="+")
    dedup_key = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "dedup_key"], name="one_limit_lock_per_person"
            )
        ]

    def __str__(self) -> str:
        return f"{self.programme_id}:{self.dedup_key[:8]}"


class MovementKind(models.TextChoices):
    ALLOCATION = "allocation", _("Attribution")
    RETURN = "return", _("Retour au commanditaire")


class BookletMovementQuerySet(models.QuerySet["BookletMovement"]):
    def visible_to(self, membership: Membership) -> BookletMovementQuerySet:
        organisation = membership.organisation
        if organisation.is_operator:
            return self.all()
        return self.filter(Q(from_organisation=organisation) | Q(to_organisation=organisation))


class BookletMovement(models.Model):
    """Booklets handed from one organisation to another: who, what, when."""

    kind = models.CharField(max_length=12, choices=MovementKind.choices)
    from_organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="movements_out"
    )
    to_organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="movements_in"
    )
    booklets = models.ManyToManyField("Booklet", related_name="movements")
    booklet_count = models.PositiveIntegerField()
    value_cents = models.PositiveBigIntegerField()
    first_number = models.CharField(max_length=20)
    last_number = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = BookletMovementQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(booklet_count__gt=0), name="movement_moves_something"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.first_number}…{self.last_number}"


class ChequeStatus(models.TextChoices):
    ACTIVE = "active", _("Valide")
    REDEEMED = "redeemed", _("Encaissé")
    BLOCKED = "blocked", _("Bloqué")
    EXPIRED = "expired", _("Expiré")
    VOIDED = "voided", _("Annulé")


class ChequeQuerySet(models.QuerySet["Cheque"]):
    def visible_to(self, membership: Membership) -> ChequeQuerySet:
        organisation = membership.organisation
        if organisation.is_operator:
            return self.all()
        return self.filter(Q(booklet__funder=organisation) | Q(booklet__holder=organisation))


class Cheque(models.Model):
    booklet = models.ForeignKey(Booklet, on_delete=models.PROTECT, related_name="cheques")
    position = models.PositiveSmallIntegerField(_("position"))
    code = models.CharField(_("code"), max_length=13, unique=True)
    value_cents = models.PositiveIntegerField(_("valeur"))
    expires_on = models.DateField(_("valable jusqu'au"), null=True, blank=True)
    status = models.CharField(
        _("état"), max_length=10, choices=ChequeStatus.choices, default=ChequeStatus.ACTIVE
    )
    blocked_at = models.DateTimeField(null=True, blank=True)
    blocked_reason = models.CharField(_("motif du blocage"), max_length=200, blank=True)

    objects = ChequeQuerySet.as_manager()

    class Meta:
        ordering = ["booklet_id", "position"]
        verbose_name = _("chèque")
        constraints = [
            models.UniqueConstraint(fields=["booklet", "position"], name="one_cheque_per_position"),
            models.CheckConstraint(
                condition=Q(status__in=ChequeStatus.values), name="cheque_status_valid"
            ),
            models.CheckConstraint(condition=Q(value_cents__gt=0), name="cheque_value_positive"),
            models.CheckConstraint(
                condition=Q(code__regex=r"^[0-9A-HJKMNP-TV-Z]{13}$"), name="cheque_code_format"
            ),
        ]

    def __str__(self) -> str:
        from .codes import display

        return display(self.code)


class PrintRunStatus(models.TextChoices):
    RUNNING = "running", _("En cours")
    DONE = "done", _("Terminé")
    FAILED = "failed", _("Échec")


class PrintRun(models.Model):
    """The print-ready files of one order, rendered in chunks by Celery tasks."""

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="print_run")
    status = models.CharField(
        max_length=10, choices=PrintRunStatus.choices, default=PrintRunStatus.RUNNING
    )
    chunks_total = models.PositiveIntegerField()
    chunks_done = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="print/", blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(chunks_done__lte=models.F("chunks_total")), name="print_chunks_bounded"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order} ({self.chunks_done}/{self.chunks_total})"

    @property
    def percent(self) -> int:
        return 100 if not self.chunks_total else round(100 * self.chunks_done / self.chunks_total)


class PrintChunk(models.Model):
    """One chunk of a print run: booklets [first_position, last_position] of the order."""

    run = models.ForeignKey(PrintRun, on_delete=models.PROTECT, related_name="chunks")
    index = models.PositiveIntegerField()
    first_position = models.PositiveIntegerField()
    last_position = models.PositiveIntegerField()
    file = models.FileField(upload_to="print/chunks/", blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="one_chunk_per_index"),
        ]

    def __str__(self) -> str:
        return f"{self.run.order} part {self.index}"


# =============================================================================================
# Funders' accounts: an append-only ledger per funder and programme, and credit notes.
# (Settlement, part 5.) Services: vouchers/services/ledger.py; reads: vouchers/selectors/ledger.py.
# =============================================================================================


def credit_note_storage():
    """Credit notes are stored privately, served only through a permission-checked view."""
    from orgs.models import private_storage

    return private_storage()


class LedgerAppendOnlyError(Exception):
    """Raised on any attempt to change or delete a ledger row: corrections are new rows."""


class LedgerKind(models.TextChoices):
    PAID_IN = "paid_in", _("Versé par le commanditaire")
    FEE = "fee", _("Frais de gestion")
    PAID_TO_PROVIDERS = "paid_to_providers", _("Remboursé aux lieux qualifiés")
    CREDITED = "credited", _("Valeur non utilisée rendue")


class LedgerEntryQuerySet(models.QuerySet["LedgerEntry"]):
    def update(self, **kwargs):
        raise LedgerAppendOnlyError("Ledger entries cannot be changed.")

    def delete(self):
        raise LedgerAppendOnlyError("Ledger entries cannot be deleted.")

    def visible_to(self, membership: Membership) -> LedgerEntryQuerySet:
        organisation = membership.organisation
        if organisation.is_operator:
            return self.all()
        if organisation.is_funder:
            return self.filter(funder=organisation)
        return self.none()


class LedgerEntry(models.Model):
    """One movement of a funder's money for a programme, in signed cents. Never changed.

    ``fee`` rows record the operator's fee paid on top of the face value: they are part of the
    funder's statement but not of the money the operator holds for the funder (``held`` is the
    sum of every other kind). Append-only: no update or delete path in the ORM, and on
    PostgreSQL a trigger refuses UPDATE and DELETE (migration 0003).
    """

    funder = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="+", verbose_name=_("commanditaire")
    )
    programme = models.ForeignKey(
        Programme, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(_("nature"), max_length=20, choices=LedgerKind.choices)
    amount_cents = models.BigIntegerField(_("montant"))
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="ledger_entries", null=True, blank=True
    )
    # A string reference: the ledger records settlement, but vouchers code never imports it.
    payout = models.ForeignKey(
        "redemption.Payout",
        on_delete=models.PROTECT,
        related_name="ledger_entries",
        null=True,
        blank=True,
    )
    credit_note = models.ForeignKey(
        "CreditNote",
        on_delete=models.PROTECT,
        related_name="ledger_entries",
        null=True,
        blank=True,
    )

    objects = LedgerEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("écriture du compte")
        verbose_name_plural = _("écritures du compte")
        indexes = [
            models.Index(fields=["funder", "programme", "created_at"], name="ledger_account_time")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=LedgerKind.values), name="ledger_kind_valid"
            ),
            # Each kind has its sign and the document it comes from.
            models.CheckConstraint(
                condition=~Q(kind__in=[LedgerKind.PAID_IN, LedgerKind.FEE])
                | Q(amount_cents__gt=0, order__isnull=False),
                name="ledger_order_entries_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind=LedgerKind.PAID_TO_PROVIDERS)
                | (~Q(amount_cents=0) & Q(payout__isnull=False)),
                name="ledger_payout_entries_reference_a_payout",
            ),
            models.CheckConstraint(
                condition=~Q(kind=LedgerKind.CREDITED)
                | Q(amount_cents__lt=0, credit_note__isnull=False),
                name="ledger_credit_entries_negative",
            ),
            # Paid in once per order; a payout paid (and reversed) at most once per account.
            models.UniqueConstraint(
                fields=["order", "kind"],
                condition=Q(kind__in=[LedgerKind.PAID_IN, LedgerKind.FEE]),
                name="ledger_order_recorded_once",
            ),
            models.UniqueConstraint(
                fields=["payout", "programme"],
                condition=Q(kind=LedgerKind.PAID_TO_PROVIDERS, amount_cents__lt=0),
                name="ledger_payout_paid_once",
            ),
            models.UniqueConstraint(
                fields=["payout", "programme"],
                condition=Q(kind=LedgerKind.PAID_TO_PROVIDERS, amount_cents__gt=0),
                name="ledger_payout_reversed_once",
            ),
            models.UniqueConstraint(
                fields=["credit_note"],
                condition=Q(kind=LedgerKind.CREDITED),
                name="ledger_credit_note_recorded_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d} {self.kind} {self.amount_cents} c"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerAppendOnlyError("Ledger entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerAppendOnlyError("Ledger entries cannot be deleted.")


class CreditNoteQuerySet(models.QuerySet["CreditNote"]):
    def visible_to(self, membership: Membership) -> CreditNoteQuerySet:
        organisation = membership.organisation
        if organisation.is_operator:
            return self.all()
        if organisation.is_funder:
            return self.filter(funder=organisation)
        return self.none()


class CreditNote(models.Model):
    """« Avoir »: the value a funder paid for and nobody used, once per programme, at its end."""

    number = models.CharField(_("numéro"), max_length=20, unique=True)
    funder = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="+", verbose_name=_("commanditaire")
    )
    programme = models.OneToOneField(
        Programme, on_delete=models.PROTECT, related_name="credit_note"
    )
    amount_cents = models.PositiveBigIntegerField(_("montant"))
    issued_at = models.DateTimeField(_("émis le"), default=timezone.now)
    pdf = models.FileField(storage=credit_note_storage, upload_to="credit_notes/%Y/", blank=True)
    breakdown = models.JSONField(default=dict, blank=True)

    objects = CreditNoteQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("avoir")

    def __str__(self) -> str:
        return self.number


class CreditedChequeQuerySet(models.QuerySet["CreditedCheque"]):
    def update(self, **kwargs):
        raise LedgerAppendOnlyError("Credited cheques cannot be changed.")

    def delete(self):
        raise LedgerAppendOnlyError("Credited cheques cannot be deleted.")


class CreditedCheque(models.Model):
    """A cheque whose unused value a credit note gave back: at most once per cheque.

    The account's breakdown leaves these out, so it still balances after the credit, and a
    later change to the same cheque (e.g. a replacement) shows up as an imbalance.
    Append-only, like the ledger (trigger in migration 0003).
    """

    credit_note = models.ForeignKey(CreditNote, on_delete=models.PROTECT, related_name="cheques")
    cheque = models.OneToOneField(Cheque, on_delete=models.PROTECT, related_name="credited")
    value_cents = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=ChequeStatus.choices)

    objects = CreditedChequeQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(value_cents__gt=0), name="credited_cheque_value_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.credit_note_id}:{self.cheque_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise LedgerAppendOnlyError("Credited cheques cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise LedgerAppendOnlyError("Credited cheques cannot be deleted.")
