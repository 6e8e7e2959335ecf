"""Organisations, people, their memberships, API tokens, invitations and the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
