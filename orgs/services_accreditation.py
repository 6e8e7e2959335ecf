"""Provider accreditation: the application, its review, its validity and the bank details.

Every function is one transaction with its audit event; status changes are compare-and-set
(``UPDATE … WHERE status IN (…)``, row count checked) following ``ACCREDITATION_TRANSITIONS``.
The provider edits its application only while it is ``draft`` or ``changes_requested``: each edit
is itself a compare-and-set on that status, so an edit and a submission never interleave.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from aptic.errors import Conflict, NotFound, ValidationFailed

from .audit import Actor, audit_record
from .models import (
    ACCREDITATION_TRANSITIONS,
    Accreditation,
    AccreditationDocument,
    AccreditationSite,
    AccreditationStatus,
    BankStatus,
    DocumentKind,
    MemberRole,
    Membership,
    Organisation,
    Postcode,
    ServiceCategory,
)
from .notifications import email_on_commit
from .permissions import require
from .selectors import organisation_admin_emails
from .selectors_accreditation import BANK_UPDATABLE, PENDING, STEP_FIELDS, accreditation_missing
from .selectors_geo import departements_of_postcode
from .validators import clean_departement, clean_postcode, clean_siret

EDITABLE = (AccreditationStatus.DRAFT, AccreditationStatus.CHANGES_REQUESTED)
DOCUMENT_MAX_BYTES = 5 * 1024 * 1024
# Content type and file extension of each accepted document format, as found by content.
DOCUMENT_FORMATS = {
    "PDF": ("application/pdf", "pdf"),
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
}
MAX_VALIDITY_YEARS = 5
# French IBANs (FR…) are also used in the overseas départements and Monaco, whose banks' BICs
# carry their own country code.
_BIC_COUNTRIES = {
    "FR": {"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF", "MC"},
}
_PHONE = re.compile(r"^(?:0[1-9][0-9]{8}|\+[1-9][0-9]{7,14})$")


# --- Helpers -----------------------------------------------------------------------------------


class _FieldErrors:
    """Collect field errors so that a form shows all of them at once, then raise one error.

    The raised :class:`ValidationFailed` carries the first error's field and code, and every
    error in ``errors`` (``{field: {"code", "detail"}}``).
    """

    def __init__(self) -> None:
        self.errors: dict[str, ValidationFailed] = {}

    @contextmanager
    def collect(self) -> Iterator[None]:
        try:
            yield
        except ValidationFailed as exc:
            self.add(exc)

    def add(self, exc: ValidationFailed) -> None:
        self.errors.setdefault(exc.field or "", exc)

    def raise_if_any(self) -> None:
        if not self.errors:
            return
        first = next(iter(self.errors.values()))
        raise ValidationFailed(
            first.message,
            field=first.field,
            code=first.code,
            errors={
                field: {"code": exc.code, "detail": str(exc.message)}
                for field, exc in self.errors.items()
            },
        )


def _required(value: Any, field: str, message: str, max_length: int) -> str:
    value = " ".join(str(value or "").split())
    if not value:
        raise ValidationFailed(message, field=field, code="required")
    if len(value) > max_length:
        raise ValidationFailed(
            _("%(max)s caractères au plus.") % {"max": max_length}, field=field, code="too_long"
        )
    return value


def mask_iban(iban: str) -> str:
    """An IBAN for the audit log and e-mails: only its last four characters are shown."""
    iban = (iban or "").replace(" ", "")
    if len(iban) <= 4:
        return iban
    return "*" * (len(iban) - 4) + iban[-4:]


def clean_phone(value: str, field: str = "applicant_phone") -> str:
    """A French number, stored as people write it (05 56 12 34 56), or an international one
    (+…, compact)."""
    compact = re.sub(r"[\s.\-()]", "", value or "")
    if compact.startswith("0033"):
        compact = "+33" + compact[4:]
    if not compact:
        raise ValidationFailed(_("Indiquez un numéro de téléphone."), field=field, code="required")
    if not _PHONE.match(compact):
        raise ValidationFailed(
            _("Numéro de téléphone non valide (par exemple 05 56 00 00 00 ou +33 5 56 00 00 00)."),
            field=field,
            code="invalid_phone",
        )
    if compact.startswith("+33") and len(compact) == 12:
        compact = "0" + compact[3:]
    if compact.startswith("0"):  # written the French way: 05 56 12 34 56
        return " ".join(compact[i : i + 2] for i in range(0, 10, 2))
    return compact


def clean_bank_details(*, iban: str, bic: str, holder: str) -> tuple[str, str, str]:
    """The IBAN and BIC checked with schwifty (compact, upper case) and the holder's name.

    The IBAN must be of the SEPA zone (payouts are SEPA transfers) and the BIC of a bank of the
    IBAN's country. Every wrong field is reported at once (see :class:`_FieldErrors`).
    """
    errors = _FieldErrors()
    parsed_iban = parsed_bic = None
    try:
        parsed_iban = IBAN(iban or "")
    except SchwiftyException:
        errors.add(
            ValidationFailed(
                _("Cet IBAN n'est pas valide : vérifiez chaque caractère (FR76 …, 27 caractères)."),
                field="iban",
                code="invalid_iban",
            )
        )
    else:
        if not parsed_iban.in_sepa_zone:
            errors.add(
                ValidationFailed(
                    _("Cet IBAN n'est pas celui d'un compte de la zone SEPA."),
                    field="iban",
                    code="invalid_iban",
                )
            )
    try:
        parsed_bic = BIC((bic or "").replace(" ", ""))
    except SchwiftyException:
        errors.add(
            ValidationFailed(
                _("Ce BIC n'est pas valide (8 ou 11 caractères, par exemple AGRIFRPP)."),
                field="bic",
                code="invalid_bic",
            )
        )
    if parsed_iban is not None and parsed_bic is not None and "iban" not in errors.errors:
        countries = _BIC_COUNTRIES.get(parsed_iban.country_code, {parsed_iban.country_code})
        if parsed_bic.country_code not in countries:
            errors.add(
                ValidationFailed(
                    _("Ce BIC n'est pas celui d'une banque du pays de l'IBAN (%(country)s).")
                    % {"country": parsed_iban.country_code},
                    field="bic",
                    code="invalid_bic",
                )
            )
    with errors.collect():
        holder = _required(
            holder, "account_holder", _("Indiquez le titulaire du compte."), max_length=150
        )
    errors.raise_if_any()
    assert parsed_iban is not None and parsed_bic is not None
    return str(parsed_iban.compact), str(parsed_bic.compact), holder


def _bank_for_audit(values: dict[str, Any]) -> dict[str, Any]:
    return {key: mask_iban(value) if key == "iban" else value for key, value in values.items()}


def _own(actor: Actor, accreditation: Accreditation) -> None:
    """The actor is an admin of the provider whose application this is (else 403 / 404)."""
    require(actor.membership, "accreditation:apply")
    if actor.organisation is None or accreditation.organisation_id != actor.organisation.pk:
        raise NotFound(code="not_found")


def _locked_error(accreditation: Accreditation) -> Conflict:
    return Conflict(
        _(
            "Votre demande est « %(status)s » : elle ne peut plus être modifiée, sauf si "
            "Médias-Cité vous demande des compléments."
        )
        % {"status": accreditation.get_status_display()},
        code="accreditation_locked",
    )


def _touch_editable(accreditation: Accreditation, **changes: Any) -> None:
    """Compare-and-set: change the application only while it is editable.

    The UPDATE also locks the row until the transaction ends, so a submission waits for an
    edit in progress (and an edit after a submission finds the application locked).
    """
    updated = Accreditation.objects.filter(pk=accreditation.pk, status__in=EDITABLE).update(
        updated_at=timezone.now(), **changes
    )
    if updated != 1:
        accreditation.refresh_from_db()
        raise _locked_error(accreditation)
    accreditation.refresh_from_db()


def _transition(
    accreditation: Accreditation,
    target: str,
    *,
    sources: Iterable[str] | None = None,
    **changes: Any,
) -> str:
    """Compare-and-set the status to ``target`` from a state allowed to reach it.

    ``sources`` narrows the allowed states (approving is only from a pending application, while
    ``approved → approved`` is a renewal). Returns the previous status.
    """
    allowed = [s for s, targets in ACCREDITATION_TRANSITIONS.items() if target in targets]
    if sources is not None:
        allowed = [s for s in allowed if s in set(sources)]
    previous = (
        Accreditation.objects.filter(pk=accreditation.pk).values_list("status", flat=True).first()
    )
    updated = Accreditation.objects.filter(pk=accreditation.pk, status__in=allowed).update(
        status=target, updated_at=timezone.now(), **changes
    )
    if updated != 1:
        accreditation.refresh_from_db()
        raise Conflict(
            _("Cette demande est « %(status)s » : l'opération n'est plus possible.")
            % {"status": accreditation.get_status_display()},
            code="accreditation_state_conflict",
        )
    accreditation.refresh_from_db()
    return previous or ""


def _clean_valid_until(valid_until: date | None, *, today: date, after: date | None = None) -> date:
    if not isinstance(valid_until, date):
        raise ValidationFailed(
            _("Indiquez la date de fin de validité."), field="valid_until", code="required"
        )
    if valid_until <= today:
        raise ValidationFailed(
            _("La date de fin de validité doit être dans le futur."),
            field="valid_until",
            code="invalid_valid_until",
        )
    if after is not None and valid_until <= after:
        raise ValidationFailed(
            _("La nouvelle date de fin doit être après le %(date)s.")
            % {"date": after.strftime("%d/%m/%Y")},
            field="valid_until",
            code="invalid_valid_until",
        )
    if (valid_until - today).days > 366 * MAX_VALIDITY_YEARS:
        raise ValidationFailed(
            _("Une qualification vaut %(n)s ans au plus.") % {"n": MAX_VALIDITY_YEARS},
            field="valid_until",
            code="invalid_valid_until",
        )
    return valid_until


def _operator_admin_emails() -> list[str]:
    return list(
        Membership.objects.active()
        .filter(organisation__is_operator=True, role=MemberRole.ADMIN, user__is_active=True)
        .order_by("user__email")
        .values_list("user__email", flat=True)
        .distinct()
    )


def _notify_provider(accreditation: Accreditation, template: str, **context: Any) -> None:
    """E-mail the provider's admins (and the applicant) once the transaction commits."""
    recipients = set(organisation_admin_emails(organisation=accreditation.organisation))
    if accreditation.applicant_email:
        recipients.add(accreditation.applicant_email)
    if recipients:
        email_on_commit(
            to=sorted(recipients),
            template=template,
            organisation=accreditation.organisation,
            context={
                "accreditation": accreditation,
                "organisation": accreditation.organisation.name,
                **context,
            },
        )


def _notify_operators(accreditation: Accreditation, template: str, **context: Any) -> None:
    recipients = _operator_admin_emails()
    if recipients:
        # Addressed to the operator's staff, not the provider: logged for operators only.
        email_on_commit(
            to=recipients,
            template=template,
            organisation=None,
            context={
                "accreditation": accreditation,
                "organisation": accreditation.organisation.name,
                **context,
            },
        )


def _audit(
    actor: Actor, action: str, accreditation: Accreditation, data: dict[str, Any] | None = None
) -> None:
    audit_record(
        actor=actor,
        action=f"orgs.accreditation.{action}",
        target=accreditation,
        organisation=accreditation.organisation,
        data=data,
    )


# --- The application (provider admins) ---------------------------------------------------------


@transaction.atomic
def accreditation_get_or_start(*, actor: Actor) -> Accreditation:
    """The actor's organisation's application, created as a draft on first use.

    The draft is prefilled from the organisation (legal name, SIRET unless another application
    already uses it) and from the person starting it (name, e-mail).
    """
    require(actor.membership, "accreditation:apply")
    organisation = actor.organisation
    existing = Accreditation.objects.filter(organisation=organisation).first()
    if existing is not None:
        return existing
    siret = organisation.siret
    if Accreditation.objects.filter(siret=siret).exists():
        siret = ""
    user = actor.user
    fields = {
        "organisation": organisation,
        "legal_name": organisation.name,
        "applicant_name": user.full_name if user else "",
        "applicant_email": user.email if user else "",
    }
    try:
        with transaction.atomic():
            accreditation = Accreditation.objects.create(siret=siret, **fields)
    except IntegrityError:
        # Started at the same moment by another admin (one application per organisation), or
        # the SIRET was just taken by another organisation's application.
        existing = Accreditation.objects.filter(organisation=organisation).first()
        if existing is not None:
            return existing
        accreditation = Accreditation.objects.create(siret="", **fields)
    _audit(
        actor,
        "started",
        accreditation,
        {"after": {"legal_name": accreditation.legal_name, "siret": accreditation.siret}},
    )
    return accreditation


def _clean_applicant(data: dict[str, Any]) -> dict[str, Any]:
    errors = _FieldErrors()
    changes: dict[str, Any] = {}
    with errors.collect():
        changes["applicant_name"] = _required(
            data.get("applicant_name"), "applicant_name", _("Indiquez votre nom."), 150
        )
    with errors.collect():
        email = (data.get("applicant_email") or "").strip().lower()
        try:
            validate_email(email)
        except DjangoValidationError as exc:
            raise ValidationFailed(
                _("Saisissez une adresse e-mail valide."),
                field="applicant_email",
                code="invalid_email",
            ) from exc
        changes["applicant_email"] = email
    with errors.collect():
        changes["applicant_phone"] = clean_phone(data.get("applicant_phone", ""))
    errors.raise_if_any()
    return changes


def _siret_used_elsewhere(siret: str, accreditation: Accreditation) -> bool:
    return (
        Accreditation.objects.filter(siret=siret).exclude(pk=accreditation.pk).exists()
        or Organisation.objects.filter(siret=siret)
        .exclude(pk=accreditation.organisation_id)
        .exists()
    )


def _siret_used_error() -> ValidationFailed:
    return ValidationFailed(
        _(
            "Ce SIRET est déjà utilisé par une autre structure. Vérifiez le numéro, ou "
            "contactez Médias-Cité si votre établissement a déjà été inscrit."
        ),
        field="siret",
        code="siret_already_used",
    )


def _clean_organisation(data: dict[str, Any], accreditation: Accreditation) -> dict[str, Any]:
    errors = _FieldErrors()
    changes: dict[str, Any] = {}
    with errors.collect():
        changes["legal_name"] = _required(
            data.get("legal_name"), "legal_name", _("Indiquez la raison sociale."), 200
        )
    with errors.collect():
        siret = clean_siret(data.get("siret", ""))
        if _siret_used_elsewhere(siret, accreditation):
            raise _siret_used_error()
        changes["siret"] = siret
    with errors.collect():
        changes["legal_form"] = _required(
            data.get("legal_form"), "legal_form", _("Indiquez la forme juridique."), 100
        )
    errors.raise_if_any()
    return changes


def _clean_representative(data: dict[str, Any]) -> dict[str, Any]:
    errors = _FieldErrors()
    changes: dict[str, Any] = {}
    with errors.collect():
        changes["legal_rep_name"] = _required(
            data.get("legal_rep_name"),
            "legal_rep_name",
            _("Indiquez le nom du représentant légal."),
            150,
        )
    with errors.collect():
        changes["legal_rep_title"] = _required(
            data.get("legal_rep_title"),
            "legal_rep_title",
            _("Indiquez sa qualité (président, gérant, directrice…)."),
            100,
        )
    errors.raise_if_any()
    return changes


def _clean_charter(data: dict[str, Any], accreditation: Accreditation) -> dict[str, Any]:
    errors = _FieldErrors()
    if not data.get("charter"):
        errors.add(
            ValidationFailed(
                _("Acceptez la charte des lieux qualifiés."), field="charter", code="required"
            )
        )
    if not data.get("terms"):
        errors.add(
            ValidationFailed(
                _("Acceptez les conditions d'utilisation."), field="terms", code="required"
            )
        )
    errors.raise_if_any()
    now = timezone.now()
    # The first acceptance is the one that counts; saving the step again keeps it.
    return {
        "charter_accepted_at": accreditation.charter_accepted_at or now,
        "terms_accepted_at": accreditation.terms_accepted_at or now,
    }


def _bank_changes(accreditation: Accreditation, iban: str, bic: str, holder: str) -> dict:
    changes: dict[str, Any] = {"iban": iban, "bic": bic, "account_holder": holder}
    if (accreditation.iban, accreditation.bic, accreditation.account_holder) != (iban, bic, holder):
        # New bank details are unverified until an operator checks them against a RIB.
        changes.update(
            bank_status=BankStatus.UNVERIFIED, bank_verified_at=None, bank_verified_by=None
        )
    return changes


@transaction.atomic
def accreditation_save_step(
    *, actor: Actor, accreditation: Accreditation, step: str, data: dict[str, Any]
) -> Accreditation:
    """Save one step of the application (``applicant``, ``organisation``, ``representative``,
    ``bank``, ``charter``) while it is editable; bad input changes nothing.

    The SIRET is used once: a SIRET of another organisation or of another organisation's
    application is refused with ``siret_already_used`` (also enforced by the database).
    """
    _own(actor, accreditation)
    if step not in STEP_FIELDS:
        raise ValidationFailed(_("Étape inconnue."), code="unknown_step")
    accreditation.refresh_from_db()
    if accreditation.is_locked:
        raise _locked_error(accreditation)
    if step == "applicant":
        changes = _clean_applicant(data)
    elif step == "organisation":
        changes = _clean_organisation(data, accreditation)
    elif step == "representative":
        changes = _clean_representative(data)
    elif step == "bank":
        iban, bic, holder = clean_bank_details(
            iban=data.get("iban", ""), bic=data.get("bic", ""), holder=data.get("account_holder")
        )
        changes = _bank_changes(accreditation, iban, bic, holder)
    else:
        changes = _clean_charter(data, accreditation)
    before = {key: getattr(accreditation, key) for key in changes}
    try:
        with transaction.atomic():
            _touch_editable(accreditation, **changes)
    except IntegrityError as exc:  # the SIRET was taken meanwhile (accreditation_siret_used_once)
        raise _siret_used_error() from exc
    _audit(
        actor,
        "step_saved",
        accreditation,
        {
            "step": step,
            "before": _bank_for_audit(before),
            "after": _bank_for_audit({key: getattr(accreditation, key) for key in changes}),
        },
    )
    return accreditation


def _site_departement(postcode: str, departement: str) -> str:
    known = Postcode.objects.filter(code=postcode).first()
    expected = departements_of_postcode(postcode, known)
    if not (departement or "").strip():
        if len(expected) == 1:
            return next(iter(expected))
        raise ValidationFailed(_("Indiquez le département."), field="departement", code="required")
    departement = clean_departement(departement)
    if departement not in expected:
        raise ValidationFailed(
            _("Le code postal %(postcode)s n'est pas dans le département %(dep)s.")
            % {"postcode": postcode, "dep": departement},
            field="departement",
            code="departement_mismatch",
        )
    return departement


def _clean_services(services: Iterable[ServiceCategory | int]) -> list[ServiceCategory]:
    ids = {
        service.pk if isinstance(service, ServiceCategory) else int(service) for service in services
    }
    categories = list(ServiceCategory.objects.filter(pk__in=ids, is_active=True).order_by("name"))
    if len(categories) != len(ids):
        raise ValidationFailed(
            _("Un des services choisis n'est plus proposé au catalogue."),
            field="services",
            code="unknown_service",
        )
    return categories


@transaction.atomic
def accreditation_site_save(
    *,
    actor: Actor,
    accreditation: Accreditation,
    site: AccreditationSite | None = None,
    name: str,
    address: str,
    postcode: str,
    city: str,
    departement: str = "",
    services: Iterable[ServiceCategory | int],
    opening_hours: str = "",
) -> AccreditationSite:
    """Add a site (``site=None``) or change one, with its services from the catalogue.

    The département is derived from the postcode when left blank, and must match it otherwise.
    """
    _own(actor, accreditation)
    if site is not None and site.accreditation_id != accreditation.pk:
        raise NotFound(code="not_found")
    errors = _FieldErrors()
    fields: dict[str, Any] = {}
    with errors.collect():
        fields["name"] = _required(name, "name", _("Donnez un nom au lieu."), 150)
    with errors.collect():
        fields["address"] = _required(address, "address", _("Indiquez l'adresse."), 250)
    with errors.collect():
        fields["postcode"] = clean_postcode(postcode)
    with errors.collect():
        fields["city"] = _required(city, "city", _("Indiquez la commune."), 120)
    if "postcode" in fields:
        with errors.collect():
            fields["departement"] = _site_departement(fields["postcode"], departement)
    with errors.collect():
        categories = _clean_services(services)
    fields["opening_hours"] = " ".join((opening_hours or "").split())[:250]
    errors.raise_if_any()
    _touch_editable(accreditation)
    if site is None:
        site = AccreditationSite.objects.create(accreditation=accreditation, **fields)
        before: dict[str, Any] = {}
        action = "site_added"
    else:
        site.refresh_from_db()
        before = {key: getattr(site, key) for key in fields}
        before["services"] = sorted(site.services.values_list("name", flat=True))
        AccreditationSite.objects.filter(pk=site.pk).update(**fields)
        site.refresh_from_db()
        action = "site_changed"
    site.services.set(categories)
    _audit(
        actor,
        action,
        accreditation,
        {
            "site": site.pk,
            "before": before,
            "after": {**fields, "services": [c.name for c in categories]},
        },
    )
    return site


@transaction.atomic
def accreditation_site_remove(
    *, actor: Actor, accreditation: Accreditation, site: AccreditationSite
) -> None:
    """Remove a site from an application that is still editable."""
    _own(actor, accreditation)
    if site.accreditation_id != accreditation.pk:
        raise NotFound(code="not_found")
    _touch_editable(accreditation)
    label = str(site)
    try:
        with transaction.atomic():
            AccreditationSite.objects.filter(pk=site.pk).delete()
    except ProtectedError as exc:  # cheques were already redeemed there
        raise Conflict(
            _("Ce lieu a déjà encaissé des chèques : il ne peut pas être retiré."),
            code="site_in_use",
        ) from exc
    _audit(actor, "site_removed", accreditation, {"site": site.pk, "before": {"site": label}})


def _document_format(upload: UploadedFile) -> tuple[str, str]:
    """(content type, extension) found by reading the file, whatever its name says."""
    upload.seek(0)
    head = upload.read(5)
    upload.seek(0)
    if head == b"%PDF-":
        return DOCUMENT_FORMATS["PDF"]
    try:
        with Image.open(upload) as image:
            image.verify()
            kind = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        kind = None
    finally:
        upload.seek(0)
    if kind in ("PNG", "JPEG"):
        return DOCUMENT_FORMATS[kind]
    raise ValidationFailed(
        _("Ce fichier n'est ni un PDF ni une image PNG ou JPEG."),
        field="file",
        code="invalid_document_type",
    )


def clean_document(upload: UploadedFile | None) -> tuple[str, str]:
    """Check an upload by size and content; return its content type and real extension."""
    if upload is None:
        raise ValidationFailed(_("Choisissez un fichier."), field="file", code="required")
    if upload.size is None or upload.size == 0:
        raise ValidationFailed(_("Ce fichier est vide."), field="file", code="empty_file")
    if upload.size > DOCUMENT_MAX_BYTES:
        raise ValidationFailed(
            _("Ce fichier dépasse 5 Mo : envoyez une version plus légère."),
            field="file",
            code="file_too_large",
        )
    return _document_format(upload)


@transaction.atomic
def accreditation_document_add(
    *, actor: Actor, accreditation: Accreditation, kind: str, upload: UploadedFile
) -> AccreditationDocument:
    """Store a supporting document privately: a PDF, PNG or JPEG (by content) of at most 5 MB.

    Nothing is written to the storage unless every check passes; the stored name is random,
    the original name is kept for display.
    """
    _own(actor, accreditation)
    if kind not in DocumentKind.values:
        raise ValidationFailed(_("Type de pièce inconnu."), field="kind", code="invalid_kind")
    content_type, extension = clean_document(upload)
    _touch_editable(accreditation)
    original = os.path.basename((upload.name or "").replace("\\", "/")).strip()
    original = original[:200] or f"document.{extension}"
    document = AccreditationDocument(
        accreditation=accreditation,
        kind=kind,
        original_name=original,
        content_type=content_type,
        size=upload.size,
        uploaded_by=actor.user,
    )
    document.file.save(f"{uuid.uuid4().hex}.{extension}", upload, save=False)
    try:
        document.save()
        _audit(
            actor,
            "document_added",
            accreditation,
            {
                "document": document.pk,
                "after": {
                    "kind": kind,
                    "name": original,
                    "type": content_type,
                    "size": upload.size,
                },
            },
        )
    except Exception:
        document.file.storage.delete(document.file.name)
        raise
    return document


@transaction.atomic
def accreditation_document_remove(
    *, actor: Actor, accreditation: Accreditation, document: AccreditationDocument
) -> None:
    """Remove a document from an editable application; the file goes once the change commits."""
    _own(actor, accreditation)
    if document.accreditation_id != accreditation.pk:
        raise NotFound(code="not_found")
    _touch_editable(accreditation)
    storage, name = document.file.storage, document.file.name
    AccreditationDocument.objects.filter(pk=document.pk).delete()
    transaction.on_commit(lambda: storage.delete(name))
    _audit(
        actor,
        "document_removed",
        accreditation,
        {
            "document": document.pk,
            "before": {"kind": document.kind, "name": document.original_name},
        },
    )


@transaction.atomic
def accreditation_submit(*, actor: Actor, accreditation: Accreditation) -> Accreditation:
    """Send a complete application for review; it is locked from then on.

    An incomplete one is refused with ``incomplete``: ``missing`` lists the steps to finish and
    ``items`` says what each lacks. Operator admins are told by e-mail.
    """
    _own(actor, accreditation)
    now = timezone.now()
    previous = (
        Accreditation.objects.filter(pk=accreditation.pk).values_list("status", flat=True).first()
    )
    # Claim the application first: from here no edit can slip in before the check below
    # (edits are compare-and-set on the editable states). A refusal rolls the claim back.
    claimed = Accreditation.objects.filter(pk=accreditation.pk, status__in=EDITABLE).update(
        status=AccreditationStatus.SUBMITTED, submitted_at=now, updated_at=now
    )
    if claimed != 1:
        accreditation.refresh_from_db()
        raise _locked_error(accreditation)
    fresh = Accreditation.objects.select_related("organisation").get(pk=accreditation.pk)
    missing = accreditation_missing(fresh)
    if missing:
        raise ValidationFailed(
            _("Votre demande est incomplète : %(items)s")
            % {"items": " ".join(item.message for item in missing)},
            code="incomplete",
            missing=list(dict.fromkeys(item.step for item in missing)),
            items=[item.message for item in missing],
        )
    accreditation.refresh_from_db()
    _audit(
        actor,
        "submitted",
        accreditation,
        {"before": {"status": previous}, "after": {"status": accreditation.status}},
    )
    _notify_operators(accreditation, "accreditation_submitted")
    _notify_provider(accreditation, "accreditation_received")
    return accreditation


# --- Review (operator admins) ------------------------------------------------------------------


@transaction.atomic
def accreditation_start_review(*, actor: Actor, accreditation: Accreditation) -> Accreditation:
    """An operator takes a submitted application in hand."""
    require(actor.membership, "accreditation:review")
    previous = _transition(
        accreditation,
        AccreditationStatus.IN_REVIEW,
        sources=[AccreditationStatus.SUBMITTED],
        reviewed_by=actor.user,
    )
    _audit(
        actor,
        "review_started",
        accreditation,
        {"before": {"status": previous}, "after": {"status": accreditation.status}},
    )
    return accreditation


@transaction.atomic
def accreditation_approve(
    *, actor: Actor, accreditation: Accreditation, valid_until: date
) -> Accreditation:
    """Approve a pending application until ``valid_until`` (in the future).

    Its active sites become approved, and its bank details verified: the reviewer checked them
    against the RIB. The provider's admins are told by e-mail.
    """
    require(actor.membership, "accreditation:review")
    valid_until = _clean_valid_until(valid_until, today=timezone.localdate())
    now = timezone.now()
    previous = _transition(
        accreditation,
        AccreditationStatus.APPROVED,
        sources=PENDING,
        valid_until=valid_until,
        reviewed_at=now,
        reviewed_by=actor.user,
        bank_status=BankStatus.VERIFIED,
        bank_verified_at=now,
        bank_verified_by=actor.user,
    )
    sites = AccreditationSite.objects.filter(accreditation=accreditation, is_active=True).update(
        is_approved=True
    )
    _audit(
        actor,
        "approved",
        accreditation,
        {
            "before": {"status": previous},
            "after": {
                "status": accreditation.status,
                "valid_until": valid_until,
                "bank_status": accreditation.bank_status,
                "iban": mask_iban(accreditation.iban),
            },
            "sites_approved": sites,
        },
    )
    _notify_provider(accreditation, "accreditation_approved")
    return accreditation


def _comment(value: str, field: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(message, field=field, code="required")
    return value[:5000]


@transaction.atomic
def accreditation_request_changes(
    *, actor: Actor, accreditation: Accreditation, comment: str
) -> Accreditation:
    """Send a pending application back to the provider with what to complete; editable again."""
    require(actor.membership, "accreditation:review")
    comment = _comment(comment, "comment", _("Dites au lieu ce qu'il doit compléter."))
    previous = _transition(
        accreditation,
        AccreditationStatus.CHANGES_REQUESTED,
        sources=PENDING,
        review_comment=comment,
        reviewed_at=timezone.now(),
        reviewed_by=actor.user,
    )
    _audit(
        actor,
        "changes_requested",
        accreditation,
        {
            "before": {"status": previous},
            "after": {"status": accreditation.status},
            "comment": comment,
        },
    )
    _notify_provider(accreditation, "accreditation_changes_requested", comment=comment)
    return accreditation


@transaction.atomic
def accreditation_reject(
    *, actor: Actor, accreditation: Accreditation, reason: str
) -> Accreditation:
    """Refuse a pending application, with the reason given to the provider."""
    require(actor.membership, "accreditation:review")
    reason = _comment(reason, "reason", _("Indiquez le motif du refus."))
    previous = _transition(
        accreditation,
        AccreditationStatus.REJECTED,
        sources=PENDING,
        review_comment=reason,
        reviewed_at=timezone.now(),
        reviewed_by=actor.user,
    )
    _audit(
        actor,
        "rejected",
        accreditation,
        {
            "before": {"status": previous},
            "after": {"status": accreditation.status},
            "reason": reason,
        },
    )
    _notify_provider(accreditation, "accreditation_rejected", reason=reason)
    return accreditation


@transaction.atomic
def accreditation_suspend(
    *, actor: Actor, accreditation: Accreditation, reason: str
) -> Accreditation:
    """Suspend an approved accreditation: the provider can no longer redeem cheques."""
    require(actor.membership, "accreditation:review")
    reason = _comment(reason, "reason", _("Indiquez le motif de la suspension."))
    previous = _transition(
        accreditation,
        AccreditationStatus.SUSPENDED,
        sources=[AccreditationStatus.APPROVED],
        review_comment=reason,
        reviewed_at=timezone.now(),
        reviewed_by=actor.user,
    )
    _audit(
        actor,
        "suspended",
        accreditation,
        {
            "before": {"status": previous},
            "after": {"status": accreditation.status},
            "reason": reason,
        },
    )
    _notify_provider(accreditation, "accreditation_suspended", reason=reason)
    return accreditation


@transaction.atomic
def accreditation_reinstate(
    *, actor: Actor, accreditation: Accreditation, valid_until: date | None = None
) -> Accreditation:
    """Lift a suspension. When the validity ended meanwhile, a new end date is required."""
    require(actor.membership, "accreditation:review")
    today = timezone.localdate()
    accreditation.refresh_from_db()
    changes: dict[str, Any] = {"reviewed_at": timezone.now(), "reviewed_by": actor.user}
    if valid_until is not None:
        changes["valid_until"] = _clean_valid_until(valid_until, today=today)
    elif accreditation.valid_until is None or accreditation.valid_until < today:
        raise ValidationFailed(
            _(
                "La qualification a pris fin pendant la suspension : indiquez une nouvelle "
                "date de fin."
            ),
            field="valid_until",
            code="validity_over",
        )
    previous = _transition(
        accreditation,
        AccreditationStatus.APPROVED,
        sources=[AccreditationStatus.SUSPENDED],
        **changes,
    )
    _audit(
        actor,
        "reinstated",
        accreditation,
        {
            "before": {"status": previous},
            "after": {"status": accreditation.status, "valid_until": accreditation.valid_until},
        },
    )
    _notify_provider(accreditation, "accreditation_reinstated")
    return accreditation


@transaction.atomic
def accreditation_renew(
    *, actor: Actor, accreditation: Accreditation, valid_until: date
) -> Accreditation:
    """Extend an approved (or expired) accreditation to a later end date."""
    require(actor.membership, "accreditation:review")
    accreditation.refresh_from_db()
    before = {"status": accreditation.status, "valid_until": accreditation.valid_until}
    after = (
        accreditation.valid_until if accreditation.status == AccreditationStatus.APPROVED else None
    )
    valid_until = _clean_valid_until(valid_until, today=timezone.localdate(), after=after)
    _transition(
        accreditation,
        AccreditationStatus.APPROVED,
        sources=[AccreditationStatus.APPROVED, AccreditationStatus.EXPIRED],
        valid_until=valid_until,
        reviewed_at=timezone.now(),
        reviewed_by=actor.user,
    )
    _audit(
        actor,
        "renewed",
        accreditation,
        {"before": before, "after": {"status": accreditation.status, "valid_until": valid_until}},
    )
    _notify_provider(accreditation, "accreditation_renewed")
    return accreditation


@transaction.atomic
def accreditations_expire(*, today: date | None = None) -> int:
    """Approved accreditations past their end date become ``expired``: one bulk UPDATE.

    Idempotent: a second run finds nothing to do. Each expiry is audited and its provider told.
    """
    today = today or timezone.localdate()
    due = list(
        Accreditation.objects.select_for_update()
        .filter(status=AccreditationStatus.APPROVED, valid_until__lt=today)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not due:
        return 0
    expired = Accreditation.objects.filter(
        pk__in=due, status=AccreditationStatus.APPROVED, valid_until__lt=today
    ).update(status=AccreditationStatus.EXPIRED, updated_at=timezone.now())
    system = Actor.system()
    for accreditation in Accreditation.objects.filter(
        pk__in=due, status=AccreditationStatus.EXPIRED
    ).select_related("organisation"):
        _audit(
            system,
            "expired",
            accreditation,
            {
                "before": {"status": AccreditationStatus.APPROVED},
                "after": {"status": AccreditationStatus.EXPIRED},
                "valid_until": accreditation.valid_until,
            },
        )
        _notify_provider(accreditation, "accreditation_expired")
    return expired


# --- Bank details ------------------------------------------------------------------------------


@transaction.atomic
def accreditation_bank_update(
    *, actor: Actor, accreditation: Accreditation, iban: str, bic: str, holder: str
) -> Accreditation:
    """Change the bank details, also after approval (not while the review is under way).

    New details are ``unverified`` until an operator checks them: payouts are held meanwhile.
    The audit log keeps before/after with masked IBANs; the provider's admins are warned (a
    change of IBAN is what a fraudster would do) and, after approval, operators asked to verify.
    """
    _own(actor, accreditation)
    iban, bic, holder = clean_bank_details(iban=iban, bic=bic, holder=holder)
    accreditation.refresh_from_db()
    changes = _bank_changes(accreditation, iban, bic, holder)
    if "bank_status" not in changes:
        return accreditation  # nothing changed: keep the verification
    before = {
        "iban": accreditation.iban,
        "bic": accreditation.bic,
        "account_holder": accreditation.account_holder,
        "bank_status": accreditation.bank_status,
    }
    updated = Accreditation.objects.filter(pk=accreditation.pk, status__in=BANK_UPDATABLE).update(
        updated_at=timezone.now(), **changes
    )
    if updated != 1:
        accreditation.refresh_from_db()
        raise Conflict(
            _(
                "Votre demande est en cours d'examen : les coordonnées bancaires ne peuvent pas "
                "être modifiées pour le moment."
            ),
            code="accreditation_locked",
        )
    accreditation.refresh_from_db()
    after = {
        "iban": iban,
        "bic": bic,
        "account_holder": holder,
        "bank_status": accreditation.bank_status,
    }
    _audit(
        actor,
        "bank_changed",
        accreditation,
        {"before": _bank_for_audit(before), "after": _bank_for_audit(after)},
    )
    masked = mask_iban(iban)
    _notify_provider(accreditation, "accreditation_bank_changed", iban=masked)
    if accreditation.status not in EDITABLE:
        _notify_operators(accreditation, "accreditation_bank_to_verify", iban=masked)
    return accreditation


@transaction.atomic
def accreditation_bank_verify(
    *, actor: Actor, accreditation: Accreditation, iban: str | None = None
) -> Accreditation:
    """An operator confirms the bank details of an accreditation against its RIB.

    ``iban`` is the IBAN the operator checked (defaults to the one loaded): if the provider
    changed it meanwhile, nothing is verified.
    """
    require(actor.membership, "accreditation:review")
    checked = (iban or accreditation.iban or "").replace(" ", "").upper()
    now = timezone.now()
    updated = (
        Accreditation.objects.filter(
            pk=accreditation.pk,
            bank_status=BankStatus.UNVERIFIED,
            iban=checked,
            status__in=[
                AccreditationStatus.APPROVED,
                AccreditationStatus.SUSPENDED,
                AccreditationStatus.EXPIRED,
            ],
        )
        .exclude(iban="")
        .update(
            bank_status=BankStatus.VERIFIED,
            bank_verified_at=now,
            bank_verified_by=actor.user,
            updated_at=now,
        )
    )
    if updated != 1:
        accreditation.refresh_from_db()
        raise Conflict(
            _("Ces coordonnées bancaires ont changé ou sont déjà vérifiées : rechargez la page."),
            code="bank_state_conflict",
        )
    accreditation.refresh_from_db()
    _audit(
        actor,
        "bank_verified",
        accreditation,
        {
            "before": {"bank_status": BankStatus.UNVERIFIED},
            "after": {"bank_status": BankStatus.VERIFIED, "iban": mask_iban(checked)},
        },
    )
    _notify_provider(accreditation, "accreditation_bank_verified", iban=mask_iban(checked))
    return accreditation
