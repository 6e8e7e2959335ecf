"""Factories for the test suite: one place, typed, valid by default."""

from __future__ import annotations

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
