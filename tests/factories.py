"""Factories for the test suite: one place, typed, valid by default."""

from __future__ import annotations

from datetime import date

import factory
from stdnum import luhn

from orgs.models import MemberRole, Membership, Organisation, User


def valid_siret(n: int) -> str:
    """A valid, made-up SIRET: a Luhn-valid SIREN, then a Luhn-valid whole."""
    siren = luhn.calc_check_digit(f"8{n // 10000:07d}")
    siren = f"8{n // 10000:07d}" + siren
    establishment = f"{n % 10000:04d}"
    return siren + establishment + luhn.calc_check_digit(siren + establishment)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.org")
    full_name = factory.Sequence(lambda n: f"Personne {n}")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"organisation-{n}")
    siret = factory.Sequence(valid_siret)
    address = "1 rue de la République"
    postcode = "33000"
    city = "Bordeaux"
    departement = "33"
    is_funder = True


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)
    role = MemberRole.ADMIN


class ServiceCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "orgs.ServiceCategory"

    name = factory.Sequence(lambda n: f"Service {n}")
    slug = factory.Sequence(lambda n: f"service-{n}")


class ProgrammeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "vouchers.Programme"
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Programme {n}")
    funder = factory.SubFactory(OrganisationFactory, is_funder=True)
    validity_kind = "fixed_date"
    valid_until = factory.LazyFunction(lambda: date.today().replace(month=12, day=31))
    tolerance_days = 30
    departements = factory.LazyFunction(lambda: ["33"])

    @factory.post_generation
    def categories(obj, create, extracted, **kwargs):
        if create:
            obj.categories.set(extracted or [ServiceCategoryFactory()])


def accredited_provider(
    name: str,
    postcode: str = "33000",
    city: str = "Bordeaux",
    departement: str = "33",
    services=(),
    *,
    address: str = "3 place de la Mairie",
    valid_until: date | None = None,
    **organisation_fields,
) -> Organisation:
    """A provider organisation with an approved, valid accreditation and one approved site.

    The site has the organisation's name and address; ``services`` are catalogue entries or
    their names (created when missing).
    """
    from datetime import timedelta

    from django.utils.text import slugify

    from orgs.models import Accreditation, AccreditationSite, AccreditationStatus, ServiceCategory

    organisation = OrganisationFactory(
        name=name,
        address=address,
        postcode=postcode,
        city=city,
        departement=departement,
        is_funder=False,
        is_provider=True,
        **organisation_fields,
    )
    accreditation = Accreditation.objects.create(
        organisation=organisation,
        status=AccreditationStatus.APPROVED,
        legal_name=name,
        siret=organisation.siret,
        valid_until=valid_until or date.today() + timedelta(days=730),
        bank_status="verified",
        iban="FR7630006000011234567890189",
        bic="AGRIFRPP",
        account_holder=name,
    )
    site = AccreditationSite.objects.create(
        accreditation=accreditation,
        name=name,
        address=address,
        postcode=postcode,
        city=city,
        departement=departement,
        is_approved=True,
    )
    site.services.set(
        service
        if isinstance(service, ServiceCategory)
        else ServiceCategory.objects.get_or_create(
            name=service, defaults={"slug": slugify(service)[:80]}
        )[0]
        for service in services
    )
    return organisation
