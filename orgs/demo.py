"""Demo organisations and people for `manage.py seed_demo` (idempotent: safe to run again)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from stdnum import luhn

from .audit import Actor, audit_record
from .models import MemberRole, Membership, Organisation, User

DEMO_PASSWORD = "aptic-demo-2026"
# Operators sign in with a second factor. The demo operators share this public authenticator key
# (base32 MFYHI2LDFVSGK3LPFV2G65DQFUZDAMRW) so that anyone trying the demo can get in.
DEMO_TOTP_KEY_HEX = "61707469632d64656d6f2d746f74702d32303236"
DEMO_TOTP_KEY_BASE32 = "MFYHI2LDFVSGK3LPFV2G65DQFUZDAMRW"


def demo_siret(seed: int) -> str:
    """A valid, made-up SIRET: a Luhn-valid SIREN, then a Luhn-valid whole."""
    siren = luhn.calc_check_digit(f"9{seed // 10000:07d}")
    siren = f"9{seed // 10000:07d}" + siren
    establishment = f"{seed % 10000:04d}"
    return siren + establishment + luhn.calc_check_digit(siren + establishment)


@dataclass(frozen=True)
class DemoOrg:
    slug: str
    name: str
    roles: tuple[str, ...]
    address: str
    postcode: str
    city: str
    departement: str


ORGANISATIONS = [
    DemoOrg(
        "medias-cite", "Médias-Cité", ("operator",), "2 rue Pierre Semard", "33130", "Bègles", "33"
    ),
    DemoOrg(
        "gironde",
        "Département de la Gironde",
        ("funder", "distributor"),
        "1 esplanade Charles de Gaulle",
        "33000",
        "Bordeaux",
        "33",
    ),
    DemoOrg(
        "ville-bordeaux",
        "Ville de Bordeaux",
        ("funder",),
        "Place Pey-Berland",
        "33000",
        "Bordeaux",
        "33",
    ),
    DemoOrg(
        "ccas-bordeaux",
        "CCAS de Bordeaux",
        ("distributor",),
        "4 rue Claude Bonnier",
        "33000",
        "Bordeaux",
        "33",
    ),
    DemoOrg(
        "france-services-begles",
        "France services Bègles",
        ("distributor",),
        "77 rue Calixte Camelle",
        "33130",
        "Bègles",
        "33",
    ),
    DemoOrg(
        "cap-numerique",
        "Cap Numérique Mérignac",
        ("provider",),
        "12 avenue de la Marne",
        "33700",
        "Mérignac",
        "33",
    ),
    DemoOrg(
        "cabane-du-web",
        "La Cabane du Web",
        ("provider",),
        "25 cours Victor Hugo",
        "33000",
        "Bordeaux",
        "33",
    ),
    DemoOrg(
        "epn-pessac",
        "Espace public numérique de Pessac",
        ("provider",),
        "21 rue de la Paix",
        "33600",
        "Pessac",
        "33",
    ),
]

# (e-mail, full name, organisation slug, role)
PEOPLE = [
    ("claire.martin@medias-cite.demo", "Claire Martin", "medias-cite", MemberRole.ADMIN),
    ("karim.benali@medias-cite.demo", "Karim Benali", "medias-cite", MemberRole.ADMIN),
    ("helene.dupuy@gironde.demo", "Hélène Dupuy", "gironde", MemberRole.ADMIN),
    ("marc.roux@bordeaux.demo", "Marc Roux", "ville-bordeaux", MemberRole.ADMIN),
    ("nadia.said@ccas-bordeaux.demo", "Nadia Saïd", "ccas-bordeaux", MemberRole.ADMIN),
    ("julien.petit@ccas-bordeaux.demo", "Julien Petit", "ccas-bordeaux", MemberRole.AGENT),
    ("ines.moreau@fs-begles.demo", "Inès Moreau", "france-services-begles", MemberRole.ADMIN),
    ("paul.garcia@cap-numerique.demo", "Paul Garcia", "cap-numerique", MemberRole.ADMIN),
    ("lea.fontaine@cap-numerique.demo", "Léa Fontaine", "cap-numerique", MemberRole.AGENT),
    ("omar.diallo@cabane-du-web.demo", "Omar Diallo", "cabane-du-web", MemberRole.ADMIN),
    ("anne.leroy@epn-pessac.demo", "Anne Leroy", "epn-pessac", MemberRole.ADMIN),
    # One person in two organisations: agent at the CCAS and admin at France services.
    ("sophie.laurent@demo.aptic.fr", "Sophie Laurent", "ccas-bordeaux", MemberRole.AGENT),
    ("sophie.laurent@demo.aptic.fr", "Sophie Laurent", "france-services-begles", MemberRole.ADMIN),
]


@transaction.atomic
def seed_organisations() -> list[tuple[str, str, str, str]]:
    """Create (or find) the demo organisations and people; return the logins to print."""
    organisations: dict[str, Organisation] = {}
    created_any = False
    for index, demo in enumerate(ORGANISATIONS, start=1):
        organisation, created = Organisation.objects.get_or_create(
            slug=demo.slug,
            defaults={
                "name": demo.name,
                "siret": demo_siret(index * 10000 + 1),
                "address": demo.address,
                "postcode": demo.postcode,
                "city": demo.city,
                "departement": demo.departement,
                **Organisation.role_flags(demo.roles),
            },
        )
        organisations[demo.slug] = organisation
        created_any |= created
    logins = []
    for email, full_name, slug, role in PEOPLE:
        user = User.objects.filter(email=email).first()
        if user is None:
            user = User.objects.create_user(email, DEMO_PASSWORD, full_name=full_name)
            created_any = True
        organisation = organisations[slug]
        _membership, created = Membership.objects.active().get_or_create(
            user=user, organisation=organisation, defaults={"role": role}
        )
        created_any |= created
        logins.append((email, DEMO_PASSWORD, organisation.name, MemberRole(role).label))
        if organisation.is_operator:
            created_any |= _demo_authenticator(user)
    if created_any:
        audit_record(
            actor=Actor.system(),
            action="orgs.demo.seeded",
            organisation=organisations["medias-cite"],
            data={"organisations": len(organisations), "people": len(PEOPLE)},
        )
    return logins


def _demo_authenticator(user: User) -> bool:
    """Give a demo operator the public demo authenticator key; True when it was created."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    _device, created = TOTPDevice.objects.get_or_create(
        user=user,
        confirmed=True,
        defaults={"name": "Démo", "key": DEMO_TOTP_KEY_HEX},
    )
    return created


# --- Accreditation ---------------------------------------------------------------------------

# Catalogue entries by name (the catalogue itself is created by vouchers.demo).
_SMARTPHONE = "Prendre en main un smartphone ou une tablette"
_PROCEDURES = "Démarches administratives en ligne"
_EMAIL = "Utiliser la messagerie électronique"
_JOBS = "Rechercher un emploi en ligne"
_SECURITY = "Sécurité et vie privée en ligne"
_PARENTING = "Parentalité numérique"


@dataclass(frozen=True)
class DemoSite:
    name: str
    address: str
    postcode: str
    city: str
    services: tuple[str, ...]
    opening_hours: str


@dataclass(frozen=True)
class DemoAccreditation:
    slug: str
    admin_email: str
    phone: str
    legal_form: str
    legal_rep_name: str
    legal_rep_title: str
    iban: str  # valid test IBANs, checked with schwifty like any other
    bic: str
    sites: tuple[DemoSite, ...]
    approve: bool


ACCREDITATIONS = [
    DemoAccreditation(
        "cap-numerique",
        "paul.garcia@cap-numerique.demo",
        "05 56 12 34 56",
        "Association loi 1901",
        "Martine Lacoste",
        "Présidente",
        "FR7630006000011234567890189",
        "AGRIFRPP",
        (
            DemoSite(
                "Cap Numérique Mérignac",
                "12 avenue de la Marne",
                "33700",
                "Mérignac",
                (_SMARTPHONE, _PROCEDURES, _EMAIL),
                "Du mardi au samedi, de 9 h à 12 h 30 et de 14 h à 18 h",
            ),
            DemoSite(
                "Cap Numérique — antenne d'Arlac",
                "8 place Jean Jaurès",
                "33700",
                "Mérignac",
                (_SMARTPHONE, _PROCEDURES, _JOBS),
                "Le mercredi et le vendredi, de 14 h à 18 h",
            ),
        ),
        approve=True,
    ),
    DemoAccreditation(
        "cabane-du-web",
        "omar.diallo@cabane-du-web.demo",
        "05 57 98 76 54",
        "SCIC",
        "Omar Diallo",
        "Gérant",
        "FR1420041010050500013M02606",
        "PSSTFRPP",
        (
            DemoSite(
                "La Cabane du Web",
                "25 cours Victor Hugo",
                "33000",
                "Bordeaux",
                (_EMAIL, _SECURITY, _JOBS, _PARENTING),
                "Du lundi au vendredi, de 10 h à 19 h",
            ),
        ),
        approve=True,
    ),
    DemoAccreditation(
        "epn-pessac",
        "anne.leroy@epn-pessac.demo",
        "05 56 45 67 89",
        "Commune",
        "Jean-Marc Duprat",
        "Maire adjoint délégué au numérique",
        "FR7630004000031234567890143",
        "BNPAFRPP",
        (
            DemoSite(
                "Espace public numérique de Pessac",
                "21 rue de la Paix",
                "33600",
                "Pessac",
                (_SMARTPHONE, _PROCEDURES),
                "Du mardi au samedi, de 10 h à 17 h",
            ),
        ),
        approve=False,
    ),
]


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing one line of ASCII text (demo and test uploads)."""
    line = text.encode("ascii", "replace").replace(b"\\", b"\\\\")
    line = line.replace(b"(", b"\\(").replace(b")", b"\\)")
    stream = b"BT /F1 16 Tf 72 770 Td (" + line + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _member_actor(email: str, slug: str) -> Actor:
    membership = (
        Membership.objects.active()
        .select_related("organisation", "user")
        .get(user__email=email, organisation__slug=slug)
    )
    return Actor(user=membership.user, membership=membership)


@transaction.atomic
def seed_accreditations() -> list[str]:
    """Accreditations of the demo providers (idempotent): Cap Numérique Mérignac and La Cabane
    du Web approved for two years with verified bank details, the EPN of Pessac submitted and
    waiting for review. Needs the catalogue (vouchers.demo); returns lines to print."""
    from datetime import timedelta

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from . import services_accreditation as services
    from .models import Accreditation, DocumentKind, ServiceCategory

    catalogue = {c.name: c for c in ServiceCategory.objects.filter(is_active=True)}
    if not catalogue:
        return ["Accreditations skipped: the service catalogue is empty."]
    operator = _member_actor("claire.martin@medias-cite.demo", "medias-cite")
    lines = []
    for demo in ACCREDITATIONS:
        organisation = Organisation.objects.get(slug=demo.slug)
        if Accreditation.objects.filter(organisation=organisation).exists():
            continue
        actor = _member_actor(demo.admin_email, demo.slug)
        accreditation = services.accreditation_get_or_start(actor=actor)
        steps = {
            "applicant": {
                "applicant_name": actor.user.full_name,
                "applicant_email": actor.user.email,
                "applicant_phone": demo.phone,
            },
            "organisation": {
                "legal_name": organisation.name,
                "siret": organisation.siret,
                "legal_form": demo.legal_form,
            },
            "representative": {
                "legal_rep_name": demo.legal_rep_name,
                "legal_rep_title": demo.legal_rep_title,
            },
            "bank": {"iban": demo.iban, "bic": demo.bic, "account_holder": organisation.name},
            "charter": {"charter": True, "terms": True},
        }
        for step, data in steps.items():
            services.accreditation_save_step(
                actor=actor, accreditation=accreditation, step=step, data=data
            )
        for site in demo.sites:
            offered = [catalogue[name] for name in site.services if name in catalogue]
            services.accreditation_site_save(
                actor=actor,
                accreditation=accreditation,
                name=site.name,
                address=site.address,
                postcode=site.postcode,
                city=site.city,
                departement="33",
                services=offered or list(catalogue.values())[:3],
                opening_hours=site.opening_hours,
            )
        services.accreditation_document_add(
            actor=actor,
            accreditation=accreditation,
            kind=DocumentKind.KBIS,
            upload=SimpleUploadedFile(
                "avis-situation-sirene.pdf",
                minimal_pdf(f"Avis de situation SIRENE - SIRET {organisation.siret}"),
                content_type="application/pdf",
            ),
        )
        services.accreditation_submit(actor=actor, accreditation=accreditation)
        if demo.approve:
            services.accreditation_start_review(actor=operator, accreditation=accreditation)
            services.accreditation_approve(
                actor=operator,
                accreditation=accreditation,
                valid_until=timezone.localdate() + timedelta(days=730),
            )
        lines.append(f"Accreditation of {organisation.name}: {accreditation.get_status_display()}")
    return lines
