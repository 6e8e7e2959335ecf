"""A world for redemption tests: an accredited provider, handed-out booklets, their codes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from orgs.models import (
    Accreditation,
    AccreditationSite,
    AccreditationStatus,
    BankStatus,
    MemberRole,
    Membership,
    ServiceCategory,
)
from tests.factories import MembershipFactory, OrganisationFactory, ProgrammeFactory
from tests.vouchers.helpers import actor_for, funder_membership, issued_order
from vouchers.models import Booklet, Cheque, Programme
from vouchers.services.distribution import Person, booklet_assign, booklets_allocate


def accredited_provider_member(
    *,
    services: list[ServiceCategory],
    departement: str = "33",
    role: str = MemberRole.AGENT,
    valid_until: date | None = None,
) -> tuple[Membership, AccreditationSite]:
    organisation = OrganisationFactory(is_funder=False, is_provider=True)
    site = accredit(organisation, services, departement=departement, valid_until=valid_until)
    return MembershipFactory(organisation=organisation, role=role), site


@dataclass
class World:
    programme: Programme
    service: ServiceCategory
    codes: list[str]
    booklets: list[Booklet]


def handed_out_cheques(*, booklets: int = 1, size: int = 10, people_offset: int = 0) -> World:
    """Booklets issued, allocated and handed out (one per person): their cheques are active."""
    funder = funder_membership(is_distributor=True)
    programme = ProgrammeFactory(
        funder=funder.organisation, max_booklets_per_beneficiary=1, departements=["33"]
    )
    service = programme.categories.get()
    issued_order(lines={size: booklets}, funder=funder, programme=programme)
    booklets_allocate(
        actor=actor_for(funder),
        distributor=funder.organisation,
        programme=programme,
        count=booklets,
    )
    handed = []
    for index, booklet in enumerate(Booklet.objects.filter(programme=programme).order_by("pk")):
        booklet_assign(
            actor=actor_for(funder),
            booklet=booklet,
            person=Person("Personne", f"N{people_offset + index}", date(1970, 1, 1)),
            age_bracket="60-74",
            postcode="33000",
        )
        handed.append(booklet)
    codes = list(
        Cheque.objects.filter(booklet__programme=programme)
        .order_by("booklet_id", "position")
        .values_list("code", flat=True)
    )
    return World(programme=programme, service=service, codes=codes, booklets=handed)


def accredit(
    organisation,
    services: list[ServiceCategory],
    *,
    departement: str = "33",
    valid_until: date | None = None,
) -> AccreditationSite:
    """Give an existing organisation an approved accreditation and one approved site."""
    accreditation = Accreditation.objects.create(
        organisation=organisation,
        status=AccreditationStatus.APPROVED,
        valid_until=valid_until or timezone.localdate() + timedelta(days=365),
        siret=organisation.siret,
        iban="FR7630006000011234567890189",
        bic="AGRIFRPP",
        account_holder=organisation.name,
        bank_status=BankStatus.VERIFIED,
    )
    site = AccreditationSite.objects.create(
        accreditation=accreditation,
        name=f"Atelier {organisation.name}",
        address="1 rue",
        postcode="33000",
        city="Bordeaux",
        departement=departement,
        is_approved=True,
    )
    site.services.set(services)
    return site


def tenancy_redemption_kwargs(owner: Membership) -> dict:
    """URL kwargs of a redemption made by the owner's organisation (for the tenancy walk)."""
    from redemption.services.redeem import cheques_redeem

    world = handed_out_cheques(booklets=1, size=5, people_offset=900)
    site = accredit(owner.organisation, [world.service])
    redemption = cheques_redeem(
        actor=actor_for(owner), codes=world.codes[:1], service=world.service, site=site
    )
    return {"pk": redemption.pk}
