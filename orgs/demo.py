"""Demo organisations and people for `manage.py seed_demo` (idempotent: safe to run again)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from stdnum import luhn

from .audit import Actor, audit_record
from .models import MemberRole, Membership, Organisation, User

DEMO_PASSWORD = "aptic-demo-2026"


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
    if created_any:
        audit_record(
            actor=Actor.system(),
            action="orgs.demo.seeded",
            organisation=organisations["medias-cite"],
            data={"organisations": len(organisations), "people": len(PEOPLE)},
        )
    return logins
