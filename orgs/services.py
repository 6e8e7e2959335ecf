"""Every write of the orgs app. Each function is one transaction with its audit event."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _

from aptic.errors import Conflict, NotFound, ValidationFailed

from .audit import Actor, audit_record
from .models import (
    ApiToken,
    Invitation,
    MemberRole,
    Membership,
    Organisation,
    OrgRole,
    User,
)
from .notifications import email_on_commit
from .permissions import require
from .tokens import API_KEY_PREFIX, digest, new_secret
from .validators import clean_departement, clean_postcode, clean_siret


def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        raise ValidationFailed(
            _("Saisissez une adresse e-mail valide."), field="email", code="invalid_email"
        ) from exc
    return email


def _clean_member_role(role: str) -> str:
    if role not in MemberRole.values:
        raise ValidationFailed(_("Rôle inconnu."), field="role", code="invalid_role")
    return role


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "organisation"
    slug, n = base, 2
    while Organisation.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def organisation_create(
    *,
    actor: Actor,
    name: str,
    roles: Iterable[str],
    siret: str,
    address: str,
    postcode: str,
    city: str,
    departement: str,
    admin_email: str,
) -> tuple[Organisation, Invitation]:
    """Create an organisation (operators only) and invite its first admin by e-mail."""
    require(actor.membership, "organisations:create")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Le nom est obligatoire."), field="name", code="required")
    roles = [r for r in roles if r in OrgRole.values]
    if not roles:
        raise ValidationFailed(
            _("Choisissez au moins un rôle."), field="roles", code="role_required"
        )
    siret = clean_siret(siret)
    if Organisation.objects.filter(siret=siret).exists():
        raise ValidationFailed(
            _("Une organisation avec ce SIRET existe déjà."), field="siret", code="duplicate_siret"
        )
    admin_email = _clean_email(admin_email)
    try:
        with transaction.atomic():
            organisation = Organisation.objects.create(
                name=name,
                slug=_unique_slug(name),
                siret=siret,
                address=(address or "").strip(),
                postcode=clean_postcode(postcode),
                city=(city or "").strip(),
                departement=clean_departement(departement),
                **Organisation.role_flags(roles),
            )
    except IntegrityError as exc:  # a concurrent creation with the same SIRET
        raise ValidationFailed(
            _("Une organisation avec ce SIRET existe déjà."), field="siret", code="duplicate_siret"
        ) from exc
    audit_record(
        actor=actor,
        action="orgs.organisation.created",
        target=organisation,
        data={"after": {"name": name, "roles": roles, "siret": siret}},
    )
    invitation = _invite(
        actor=actor, organisation=organisation, email=admin_email, role=MemberRole.ADMIN
    )
    return organisation, invitation


def _invite(*, actor: Actor, organisation: Organisation, email: str, role: str) -> Invitation:
    token = new_secret()
    invitation = Invitation.objects.create(
        organisation=organisation,
        email=email,
        role=role,
        token_hash=digest(token),
        invited_by=actor.user,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_VALIDITY_DAYS),
    )
    audit_record(
        actor=actor,
        action="orgs.invitation.created",
        target=invitation,
        organisation=organisation,
        data={"after": {"email": email, "role": role}},
    )
    email_on_commit(
        to=[email],
        template="invitation",
        organisation=organisation,
        secrets=("url",),
        context={
            "organisation": organisation.name,
            "role": MemberRole(role).label,
            "inviter": str(actor.user) if actor.user else "Aptic",
            "url": settings.SITE_URL + reverse("invitation_accept", args=[token]),
            "expires_at": invitation.expires_at,
        },
    )
    return invitation


@transaction.atomic
def invitation_create(
    *, actor: Actor, email: str, role: str, organisation: Organisation | None = None
) -> Invitation:
    """Invite someone into the actor's organisation (admins only; operators into any)."""
    require(actor.membership, "members:manage")
    organisation = organisation or actor.organisation
    if organisation.pk != actor.organisation.pk:
        require(actor.membership, "organisations:create")
    email = _clean_email(email)
    role = _clean_member_role(role)
    if Membership.objects.active().filter(organisation=organisation, user__email=email).exists():
        raise ValidationFailed(
            _("Cette personne est déjà membre de l'organisation."),
            field="email",
            code="already_member",
        )
    if Invitation.objects.pending().filter(organisation=organisation, email=email).exists():
        raise ValidationFailed(
            _(
                "Une invitation est déjà en attente pour cette adresse : annulez-la pour en "
                "envoyer une nouvelle."
            ),
            field="email",
            code="already_invited",
        )
    return _invite(actor=actor, organisation=organisation, email=email, role=role)


def invitation_get_by_token(*, token: str) -> Invitation:
    """The invitation behind a link, or ``invitation_invalid`` (unknown, used or revoked)."""
    invitation = (
        Invitation.objects.select_related("organisation")
        .filter(token_hash=digest(token or ""))
        .first()
    )
    if invitation is None or invitation.accepted_at or invitation.revoked_at:
        raise NotFound(
            _("Ce lien d'invitation n'est pas valide ou a déjà été utilisé."),
            code="invitation_invalid",
        )
    if invitation.is_expired:
        raise Conflict(
            _("Ce lien d'invitation a expiré. Demandez une nouvelle invitation."),
            code="invitation_expired",
        )
    return invitation


@transaction.atomic
def invitation_accept(
    *,
    token: str,
    user: User | None = None,
    full_name: str = "",
    password: str = "",
    ip: str | None = None,
) -> Membership:
    """Turn a valid invitation into a membership, creating the account when needed.

    ``user`` is the signed-in person, whose e-mail must match; otherwise an account is created
    for the invited address with ``full_name`` and ``password``. Used once: a second use fails.
    """
    invitation = invitation_get_by_token(token=token)
    # Compare-and-set: only one acceptance wins even if the link is opened twice at once.
    claimed = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(accepted_at=timezone.now())
    if claimed != 1:
        raise NotFound(
            _("Ce lien d'invitation n'est pas valide ou a déjà été utilisé."),
            code="invitation_invalid",
        )
    if user is not None and user.email.lower() != invitation.email.lower():
        raise ValidationFailed(
            _("Cette invitation a été envoyée à une autre adresse e-mail."),
            code="invitation_other_email",
        )
    if user is None:
        user = User.objects.filter(email__iexact=invitation.email).first()
        if user is not None:
            raise Conflict(
                _("Un compte existe déjà pour cette adresse : connectez-vous pour accepter."),
                code="login_required",
            )
        full_name = (full_name or "").strip()
        if not full_name:
            raise ValidationFailed(_("Indiquez votre nom."), field="full_name", code="required")
        candidate = User(email=invitation.email, full_name=full_name)
        try:
            validate_password(password, candidate)
        except DjangoValidationError as exc:
            raise ValidationFailed(
                " ".join(exc.messages), field="password", code="weak_password"
            ) from exc
        user = User.objects.create_user(invitation.email, password, full_name=full_name)
    if Membership.objects.active().filter(user=user, organisation=invitation.organisation).exists():
        raise Conflict(_("Vous êtes déjà membre de cette organisation."), code="already_member")
    membership = Membership.objects.create(
        user=user, organisation=invitation.organisation, role=invitation.role
    )
    Invitation.objects.filter(pk=invitation.pk).update(accepted_by=user)
    audit_record(
        actor=Actor(user=user, membership=membership, ip=ip),
        action="orgs.invitation.accepted",
        target=membership,
        data={"after": {"email": user.email, "role": membership.role}},
    )
    return membership


@transaction.atomic
def invitation_revoke(*, actor: Actor, invitation: Invitation) -> Invitation:
    require(actor.membership, "members:manage")
    updated = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    if updated != 1:
        raise Conflict(_("Cette invitation n'est plus en attente."), code="invitation_not_pending")
    invitation.refresh_from_db()
    audit_record(
        actor=actor,
        action="orgs.invitation.revoked",
        target=invitation,
        organisation=invitation.organisation,
        data={"before": {"email": invitation.email}},
    )
    return invitation


def _lock_admins(organisation: Organisation) -> list[int]:
    # Lock the organisation's live memberships in a stable order so that two admins removing
    # each other at once cannot leave the organisation with no admin.
    return list(
        Membership.objects.select_for_update()
        .filter(organisation=organisation, removed_at__isnull=True)
        .order_by("pk")
        .filter(role=MemberRole.ADMIN)
        .values_list("pk", flat=True)
    )


@transaction.atomic
def membership_change_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    """Change a member's role; the organisation always keeps at least one admin."""
    require(actor.membership, "members:manage")
    role = _clean_member_role(role)
    admins = _lock_admins(membership.organisation)
    membership.refresh_from_db()
    if not membership.is_active:
        raise Conflict(_("Ce membre a été retiré."), code="member_removed")
    if membership.role == role:
        return membership
    if membership.role == MemberRole.ADMIN and admins == [membership.pk]:
        raise Conflict(
            _("L'organisation doit garder au moins un administrateur."), code="last_admin"
        )
    before = membership.role
    Membership.objects.filter(pk=membership.pk).update(role=role)
    membership.refresh_from_db()
    audit_record(
        actor=actor,
        action="orgs.membership.role_changed",
        target=membership,
        organisation=membership.organisation,
        data={"before": {"role": before}, "after": {"role": role}},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: Actor, membership: Membership) -> Membership:
    """Remove a member: the membership ends and its API tokens are revoked."""
    require(actor.membership, "members:manage")
    if actor.membership is not None and membership.pk == actor.membership.pk:
        raise Conflict(
            _("Vous ne pouvez pas vous retirer vous-même : demandez-le à un autre administrateur."),
            code="cannot_remove_self",
        )
    admins = _lock_admins(membership.organisation)
    membership.refresh_from_db()
    if not membership.is_active:
        raise Conflict(_("Ce membre a déjà été retiré."), code="member_removed")
    if membership.role == MemberRole.ADMIN and admins == [membership.pk]:
        raise Conflict(
            _("L'organisation doit garder au moins un administrateur."), code="last_admin"
        )
    now = timezone.now()
    Membership.objects.filter(pk=membership.pk).update(removed_at=now)
    revoked = ApiToken.objects.filter(membership=membership, revoked_at__isnull=True).update(
        revoked_at=now
    )
    membership.refresh_from_db()
    audit_record(
        actor=actor,
        action="orgs.membership.removed",
        target=membership,
        organisation=membership.organisation,
        data={
            "before": {"email": membership.user.email, "role": membership.role},
            "tokens_revoked": revoked,
        },
    )
    return membership


@transaction.atomic
def api_token_create(*, actor: Actor, membership: Membership, name: str) -> tuple[ApiToken, str]:
    """Create a token for a member of the actor's organisation; returns it with its key.

    The key is returned only here: the database keeps its SHA-256 digest.
    """
    if not actor.is_system:
        require(actor.membership, "tokens:manage")
        if membership.organisation_id != actor.organisation.pk:
            raise NotFound(code="not_found")
    if not membership.is_active:
        raise NotFound(code="not_found")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("Donnez un nom au jeton."), field="name", code="required")
    if len(name) > 100:
        raise ValidationFailed(_("Nom trop long (100 caractères au plus)."), field="name")
    key = new_secret(API_KEY_PREFIX)
    token = ApiToken.objects.create(
        membership=membership,
        name=name,
        prefix=key[:8],
        key_hash=digest(key),
        created_by=actor.user,
    )
    audit_record(
        actor=actor,
        action="orgs.api_token.created",
        target=token,
        data={"after": {"name": name, "member": membership.user.email}},
    )
    return token, key


@transaction.atomic
def api_token_revoke(*, actor: Actor, token: ApiToken) -> ApiToken:
    require(actor.membership, "tokens:manage")
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated != 1:
        raise Conflict(_("Ce jeton est déjà révoqué."), code="token_revoked")
    token.refresh_from_db()
    audit_record(actor=actor, action="orgs.api_token.revoked", target=token)
    return token


@transaction.atomic
def user_set_password(*, user: User, password: str, ip: str | None = None, reason: str) -> User:
    """Set a new password (reset by e-mail link or change), with its audit event.

    Log-in lock-outs on the address are lifted: the new password is the one to try.
    """
    user.set_password(password)
    user.save(update_fields=["password"])
    # Whoever holds the e-mail box proved who they are: lift the log-in lock-outs on this address.
    lifted, _by_model = AccessAttempt.objects.filter(username=user.email).delete()
    audit_record(
        actor=Actor(user=user, ip=ip),
        action=f"orgs.user.password_{reason}",
        target=user,
        data={"lockouts_lifted": lifted} if lifted else None,
    )
    return user


@transaction.atomic
def user_language_set(*, actor: Actor, language: str) -> bool:
    """Remember the language a person chose, for the e-mails they will receive.

    Returns False (and writes nothing) when it is unknown or already theirs.
    """
    user = actor.user
    if user is None or language not in dict(settings.LANGUAGES):
        return False
    updated = User.objects.filter(pk=user.pk).exclude(language=language).update(language=language)
    if not updated:
        return False
    user.language = language
    audit_record(
        actor=actor, action="orgs.user.language_set", target=user, data={"after": language}
    )
    return True
