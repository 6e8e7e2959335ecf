"""Organisations, people, their memberships, API tokens, invitations and the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from collections.abc import Iterable


class OrgRole(models.TextChoices):
    """What an organisation does in the scheme; one organisation may hold several."""

    FUNDER = "funder", _("Commanditaire")
    DISTRIBUTOR = "distributor", _("Structure relais")
    PROVIDER = "provider", _("Lieu qualifié")
    OPERATOR = "operator", _("Opérateur")


class MemberRole(models.TextChoices):
    ADMIN = "admin", _("Administrateur")
    AGENT = "agent", _("Agent")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an e-mail address; acts through a membership."""

    email = models.EmailField(_("adresse e-mail"), unique=True)
    full_name = models.CharField(_("nom complet"), max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # The language the person last chose (footer); their e-mails are written in it. Empty: the
    # site's default language.
    language = models.CharField(
        _("langue"), max_length=8, blank=True, default="", choices=settings.LANGUAGES
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("utilisateur")
        verbose_name_plural = _("utilisateurs")

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name.split(" ")[0] if self.full_name else self.email


class OrganisationQuerySet(models.QuerySet["Organisation"]):
    def visible_to(self, membership: Membership) -> OrganisationQuerySet:
        if membership.organisation.is_operator:
            return self.all()
        return self.filter(pk=membership.organisation_id)

    def with_role(self, role: str) -> OrganisationQuerySet:
        return self.filter(**{f"is_{role}": True})


class Organisation(models.Model):
    name = models.CharField(_("nom"), max_length=200)
    slug = models.SlugField(_("identifiant court"), max_length=80, unique=True)
    is_funder = models.BooleanField(_("commanditaire"), default=False)
    is_distributor = models.BooleanField(_("structure relais"), default=False)
    is_provider = models.BooleanField(_("lieu qualifié"), default=False)
    is_operator = models.BooleanField(_("opérateur"), default=False)
    siret = models.CharField(_("SIRET"), max_length=14, unique=True)
    address = models.CharField(_("adresse"), max_length=250)
    postcode = models.CharField(_("code postal"), max_length=5)
    city = models.CharField(_("commune"), max_length=120)
    departement = models.CharField(_("département"), max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        constraints = [
            models.CheckConstraint(
                condition=Q(is_funder=True)
                | Q(is_distributor=True)
                | Q(is_provider=True)
                | Q(is_operator=True),
                name="organisation_has_a_role",
            ),
            models.CheckConstraint(
                condition=Q(siret__regex=r"^[0-9]{14}$"), name="siret_14_digits"
            ),
            models.CheckConstraint(
                condition=Q(postcode__regex=r"^[0-9]{5}$"), name="postcode_5_digits"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def roles(self) -> list[str]:
        return [role.value for role in OrgRole if getattr(self, f"is_{role.value}")]

    def has_role(self, role: str) -> bool:
        return bool(getattr(self, f"is_{role}", False))

    def role_labels(self) -> list[str]:
        return [str(OrgRole(role).label) for role in self.roles]

    @staticmethod
    def role_flags(roles: Iterable[str]) -> dict[str, bool]:
        chosen = set(roles)
        return {f"is_{role.value}": role.value in chosen for role in OrgRole}


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> MembershipQuerySet:
        return self.filter(removed_at__isnull=True)

    def visible_to(self, membership: Membership) -> MembershipQuerySet:
        """Members of the caller's own organisation (operators see every organisation's)."""
        if membership.organisation.is_operator:
            return self.all()
        return self.filter(organisation_id=membership.organisation_id)


class Membership(models.Model):
    """A user acting for an organisation. Removal is recorded, not deleted, to keep history."""

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="memberships")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(_("rôle"), max_length=10, choices=MemberRole.choices)
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["organisation__name", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organisation"],
                condition=Q(removed_at__isnull=True),
                name="one_live_membership_per_user_and_organisation",
            ),
            models.CheckConstraint(
                condition=Q(role__in=MemberRole.values), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.organisation} ({self.get_role_display()})"

    @property
    def is_admin(self) -> bool:
        return self.role == MemberRole.ADMIN

    @property
    def is_active(self) -> bool:
        return self.removed_at is None

    def has_perm(self, key: str) -> bool:
        from .permissions import membership_has_permission

        return membership_has_permission(self, key)


class InvitationQuerySet(models.QuerySet["Invitation"]):
    def pending(self) -> InvitationQuerySet:
        return self.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )


class Invitation(models.Model):
    """A link sent by e-mail to join an organisation; the token is stored hashed."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="invitations"
    )
    email = models.EmailField(_("adresse e-mail"))
    role = models.CharField(_("rôle"), max_length=10, choices=MemberRole.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="invitations_sent", null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=MemberRole.values), name="invitation_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_not_both_accepted_and_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organisation}"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and not self.is_expired


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def visible_to(self, membership: Membership) -> ApiTokenQuerySet:
        return self.filter(membership__organisation_id=membership.organisation_id)


class ApiToken(models.Model):
    """A named key for scanning apps and integrations, bound to one membership.

    Only a SHA-256 digest of the key is stored; the key itself is shown once at creation.
    """

    membership = models.ForeignKey(Membership, on_delete=models.PROTECT, related_name="tokens")
    name = models.CharField(_("nom"), max_length=100)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    # Null when created from the command line (`manage.py create_api_token`).
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AppendOnlyError(Exception):
    """The audit log is append-only: rows can be added, never changed or removed."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events cannot be changed.")

    def delete(self):
        raise AppendOnlyError("Audit events cannot be deleted.")

    def visible_to(self, membership: Membership) -> AuditEventQuerySet:
        """Operators see everything; an organisation admin sees its own organisation's events."""
        if membership.organisation.is_operator:
            return self.all()
        if membership.is_admin:
            return self.filter(organisation_id=membership.organisation_id)
        return self.none()


class AuditEvent(models.Model):
    """One recorded change: who, acting for which organisation, did what to which object.

    Append-only: no update or delete path in the ORM or the admin, and on PostgreSQL a trigger
    refuses UPDATE and DELETE (migration 0002).
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=250, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organisation", "-created_at"], name="audit_org_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target_label}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit events cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events cannot be deleted.")


class Postcode(models.Model):
    """A French postcode and its approximate centre (see ``orgs.geo``)."""

    code = models.CharField(max_length=5, primary_key=True)
    latitude = models.FloatField()
    longitude = models.FloatField()
    departement = models.CharField(max_length=3, db_index=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def point(self) -> tuple[float, float]:
        return (self.latitude, self.longitude)


class ServiceCategory(models.Model):
    """An entry of the operator-managed catalogue of training services."""

    name = models.CharField(_("nom"), max_length=150, unique=True)
    slug = models.SlugField(_("identifiant"), max_length=80, unique=True)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("proposé"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("catégorie de service")
        verbose_name_plural = _("catalogue des services")

    def __str__(self) -> str:
        return self.name


class AccreditationStatus(models.TextChoices):
    DRAFT = "draft", _("Brouillon")
    SUBMITTED = "submitted", _("Envoyée")
    IN_REVIEW = "in_review", _("En cours d'examen")
    APPROVED = "approved", _("Qualifié")
    CHANGES_REQUESTED = "changes_requested", _("Compléments demandés")
    REJECTED = "rejected", _("Refusée")
    SUSPENDED = "suspended", _("Suspendue")
    EXPIRED = "expired", _("Expirée")


ACCREDITATION_TRANSITIONS: dict[str, tuple[str, ...]] = {
    AccreditationStatus.DRAFT: (AccreditationStatus.SUBMITTED,),
    AccreditationStatus.SUBMITTED: (
        AccreditationStatus.IN_REVIEW,
        AccreditationStatus.APPROVED,
        AccreditationStatus.CHANGES_REQUESTED,
        AccreditationStatus.REJECTED,
    ),
    AccreditationStatus.IN_REVIEW: (
        AccreditationStatus.APPROVED,
        AccreditationStatus.CHANGES_REQUESTED,
        AccreditationStatus.REJECTED,
    ),
    AccreditationStatus.CHANGES_REQUESTED: (AccreditationStatus.SUBMITTED,),
    AccreditationStatus.APPROVED: (
        AccreditationStatus.SUSPENDED,
        AccreditationStatus.EXPIRED,
        AccreditationStatus.APPROVED,  # renewal: a new validity end date
    ),
    AccreditationStatus.SUSPENDED: (AccreditationStatus.APPROVED, AccreditationStatus.EXPIRED),
    AccreditationStatus.EXPIRED: (AccreditationStatus.APPROVED,),
    AccreditationStatus.REJECTED: (),
}


class BankStatus(models.TextChoices):
    UNVERIFIED = "unverified", _("À vérifier")
    VERIFIED = "verified", _("Vérifié")


class AccreditationQuerySet(models.QuerySet["Accreditation"]):
    def visible_to(self, membership: Membership) -> AccreditationQuerySet:
        if membership.organisation.is_operator:
            return self.all()
        return self.filter(organisation_id=membership.organisation_id)

    def valid_on(self, day) -> AccreditationQuerySet:
        return self.filter(status=AccreditationStatus.APPROVED, valid_until__gte=day)


class Accreditation(models.Model):
    """A provider's application to redeem cheques, its review and its validity."""

    organisation = models.OneToOneField(
        Organisation, on_delete=models.PROTECT, related_name="accreditation"
    )
    status = models.CharField(
        _("état"),
        max_length=20,
        choices=AccreditationStatus.choices,
        default=AccreditationStatus.DRAFT,
    )
    applicant_name = models.CharField(_("votre nom"), max_length=150, blank=True)
    applicant_email = models.EmailField(_("votre e-mail"), blank=True)
    applicant_phone = models.CharField(_("votre téléphone"), max_length=30, blank=True)
    legal_name = models.CharField(_("raison sociale"), max_length=200, blank=True)
    siret = models.CharField(_("SIRET"), max_length=14, blank=True)
    legal_form = models.CharField(_("forme juridique"), max_length=100, blank=True)
    legal_rep_name = models.CharField(_("représentant légal"), max_length=150, blank=True)
    legal_rep_title = models.CharField(_("qualité"), max_length=100, blank=True)
    iban = models.CharField(_("IBAN"), max_length=34, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    account_holder = models.CharField(_("titulaire du compte"), max_length=150, blank=True)
    bank_status = models.CharField(
        max_length=12, choices=BankStatus.choices, default=BankStatus.UNVERIFIED
    )
    bank_verified_at = models.DateTimeField(null=True, blank=True)
    bank_verified_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    charter_accepted_at = models.DateTimeField(null=True, blank=True)
    terms_accepted_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    review_comment = models.TextField(_("commentaire de l'examen"), blank=True)
    valid_until = models.DateField(_("qualifié jusqu'au"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = AccreditationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        verbose_name = _("qualification")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=AccreditationStatus.values),
                name="accreditation_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status=AccreditationStatus.APPROVED) | Q(valid_until__isnull=False),
                name="approved_accreditation_has_end_date",
            ),
            models.UniqueConstraint(
                fields=["siret"], condition=~Q(siret=""), name="accreditation_siret_used_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation} ({self.get_status_display()})"

    @property
    def is_locked(self) -> bool:
        """Submitted applications cannot be edited until changes are requested."""
        return self.status not in (AccreditationStatus.DRAFT, AccreditationStatus.CHANGES_REQUESTED)

    def is_valid_on(self, day) -> bool:
        return (
            self.status == AccreditationStatus.APPROVED
            and self.valid_until is not None
            and self.valid_until >= day
        )


class AccreditationSite(models.Model):
    """One address and its service offer; each site is accredited on its own."""

    accreditation = models.ForeignKey(Accreditation, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(_("nom du lieu"), max_length=150)
    address = models.CharField(_("adresse"), max_length=250)
    postcode = models.CharField(_("code postal"), max_length=5)
    city = models.CharField(_("commune"), max_length=120)
    departement = models.CharField(_("département"), max_length=3)
    services = models.ManyToManyField(
        ServiceCategory, related_name="sites", verbose_name=_("services proposés")
    )
    opening_hours = models.CharField(_("horaires"), max_length=250, blank=True)
    is_approved = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(postcode__regex=r"^[0-9]{5}$"), name="site_postcode_5_digits"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}, {self.postcode} {self.city}"


class DocumentKind(models.TextChoices):
    KBIS = "kbis", _("Extrait Kbis ou avis de situation SIRENE")
    INSURANCE = "insurance", _("Attestation d'assurance")
    BANK = "bank", _("Relevé d'identité bancaire")
    OTHER = "other", _("Autre pièce")


def private_storage():
    """The storage of supporting documents (settings.STORAGES["private"])."""
    from django.core.files.storage import storages

    return storages["private"]


class AccreditationDocument(models.Model):
    """A supporting document, stored privately: served only through a checked view."""

    accreditation = models.ForeignKey(
        Accreditation, on_delete=models.PROTECT, related_name="documents"
    )
    kind = models.CharField(_("type"), max_length=12, choices=DocumentKind.choices)
    file = models.FileField(storage=private_storage, upload_to="accreditation/%Y/")
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=60)
    size = models.PositiveIntegerField()
    uploaded_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+", null=True)

    class Meta:
        ordering = ["uploaded_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.original_name}"


class NotificationStatus(models.TextChoices):
    QUEUED = "queued", _("En attente d'envoi")
    SENT = "sent", _("Envoyé")
    FAILED = "failed", _("Échec d'envoi")


class NotificationQuerySet(models.QuerySet["Notification"]):
    def delete(self):
        raise AppendOnlyError("Notifications cannot be deleted.")

    def visible_to(self, membership: Membership) -> NotificationQuerySet:
        """Operators see every message; any member sees those sent for their organisation."""
        if membership.organisation.is_operator:
            return self.all()
        return self.filter(organisation_id=membership.organisation_id)


class Notification(models.Model):
    """One e-mail to one recipient, logged in the transaction of the change that caused it.

    Append-only: what was sent is never rewritten (on PostgreSQL a trigger refuses DELETE and any
    UPDATE other than the delivery status, migration 0005); only ``status``, ``sent_at`` and
    ``error`` move, once, from ``queued`` to ``sent`` or ``failed``. Secrets (invitation and
    password-reset links) are masked in the logged body.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recipient = models.EmailField(_("destinataire"))
    language = models.CharField(_("langue"), max_length=8)
    template = models.CharField(_("modèle"), max_length=100, db_index=True)
    subject = models.CharField(_("objet"), max_length=300)
    body = models.TextField(_("message"))
    status = models.CharField(
        _("état"),
        max_length=10,
        choices=NotificationStatus.choices,
        default=NotificationStatus.QUEUED,
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organisation", "-created_at"], name="notif_org_time")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "sent", "failed"]), name="notif_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False) | ~Q(status="sent"),
                name="notif_sent_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recipient}: {self.subject}"

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Notifications cannot be deleted.")
