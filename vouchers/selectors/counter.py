"""Reads of the hand-over counter: a booklet looked up by number, and a beneficiary's receipt.

Every read starts from ``visible_to``: a booklet another organisation holds reads exactly like a
number that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Max
from django.shortcuts import get_object_or_404
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from orgs.models import Membership
from orgs.selectors_geo import NearbyProvider, providers_nearest

from ..models import Beneficiary, Booklet, BookletStatus, Programme, ValidityKind

_BOOKLET_NUMBER = re.compile(r"^AP(\d{2})-?(\d{7})$")
# A scanner set up for a QWERTY keyboard on a French AZERTY computer types the unshifted
# AZERTY characters of the digit row and swaps A/Q: "AP26-0001234" arrives as "QPé-)ààà&é"'".
_AZERTY_DIGIT_ROW = "&É\"'(-È_ÇÀ"
_AZERTY_AS_QWERTY = str.maketrans(_AZERTY_DIGIT_ROW + ")Q", "1234567890-A")


def booklet_number_normalise(text: str) -> str | None:
    """``AP26-0001234`` from what was typed or scanned, or None when it is not a booklet number.

    Accepts surrounding spaces, lower case, a missing dash, and a scanner mis-set to QWERTY on an
    AZERTY computer.
    """
    compact = "".join((text or "").split()).upper()
    match = _BOOKLET_NUMBER.match(compact)
    if match is None and set(compact) & set(_AZERTY_DIGIT_ROW.replace("-", "")):
        match = _BOOKLET_NUMBER.match(compact.translate(_AZERTY_AS_QWERTY))
    if match is None:
        return None
    return f"AP{match.group(1)}-{match.group(2)}"


def booklet_for_counter(*, membership: Membership, number: str) -> Booklet | None:
    """The booklet with this number if the caller's organisation may see it, else None."""
    normalised = booklet_number_normalise(number)
    if normalised is None:
        return None
    return (
        Booklet.objects.visible_to(membership)
        .select_related("programme", "holder", "beneficiary")
        .filter(number=normalised)
        .first()
    )


# --- What the counter shows about a booklet -----------------------------------------------


class CounterState:
    """What the agent can do with a booklet they looked up."""

    ASSIGNABLE = "assignable"
    ASSIGNED = "assigned"
    BLOCKED = "blocked"
    NOT_HELD = "not_held"  # in the funder's stock or with another distributor


def counter_state(*, membership: Membership, booklet: Booklet) -> str:
    if booklet.status == BookletStatus.BLOCKED:
        return CounterState.BLOCKED
    if booklet.status == BookletStatus.ASSIGNED:
        return CounterState.ASSIGNED
    if (
        booklet.status == BookletStatus.ALLOCATED
        and booklet.holder_id == membership.organisation_id
    ):
        return CounterState.ASSIGNABLE
    return CounterState.NOT_HELD


def programme_validity_text(programme: Programme) -> str:
    """How long the cheques are valid, before hand-over."""
    if programme.validity_kind == ValidityKind.MONTHS_FROM_HANDOVER:
        return _("%(months)s mois à compter de la remise") % {"months": programme.validity_months}
    return _("jusqu'au %(date)s") % {"date": date_format(programme.last_valid_day, "d/m/Y")}


def programme_territory(programme: Programme) -> list[str]:
    """The programme's départements, empty for all of France."""
    return sorted(programme.departements or [])


@dataclass(frozen=True)
class CounterBooklet:
    booklet: Booklet
    state: str
    validity: str
    services: list[str]
    territory: list[str]
    receipt_reference: str = ""  # when handed out by the caller's organisation

    @property
    def is_assignable(self) -> bool:
        return self.state == CounterState.ASSIGNABLE


def counter_booklet(*, membership: Membership, booklet: Booklet) -> CounterBooklet:
    programme = booklet.programme
    beneficiary = booklet.beneficiary
    receipt_reference = ""
    if beneficiary is not None and (
        Beneficiary.objects.visible_to(membership).filter(pk=beneficiary.pk).exists()
    ):
        receipt_reference = beneficiary.reference
    return CounterBooklet(
        booklet=booklet,
        state=counter_state(membership=membership, booklet=booklet),
        validity=programme_validity_text(programme),
        services=[c.name for c in programme.categories.filter(is_active=True).order_by("name")],
        territory=programme_territory(programme),
        receipt_reference=receipt_reference,
    )


# --- The receipt ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptBooklet:
    number: str
    size: int
    value_cents: int
    valid_until: date | None
    is_blocked: bool


@dataclass(frozen=True)
class ReceiptProvider:
    place: NearbyProvider
    services: list[str]


@dataclass(frozen=True)
class Receipt:
    reference: str
    distributor_name: str
    distributor_address: str
    distributor_postcode: str
    distributor_city: str
    postcode: str
    handed_out_at: datetime | None
    programme: Programme
    cheque_value_cents: int
    booklets: list[ReceiptBooklet]
    territory: list[str]
    services: list[str]
    providers: list[ReceiptProvider] = field(default_factory=list)

    @property
    def numbers(self) -> list[str]:
        return [b.number for b in self.booklets]

    @property
    def usable_booklets(self) -> list[ReceiptBooklet]:
        return [b for b in self.booklets if not b.is_blocked]

    @property
    def value_cents(self) -> int:
        return sum(b.value_cents for b in self.usable_booklets)

    @property
    def cheque_count(self) -> int:
        return sum(b.size for b in self.usable_booklets)

    @property
    def valid_until(self) -> date | None:
        dates = [b.valid_until for b in self.usable_booklets if b.valid_until]
        return max(dates) if dates else None


def receipt_get(*, membership: Membership, reference: str, providers: int = 5) -> Receipt:
    """The receipt of a hand-over, for the distributor that made it (and operators); else 404."""
    beneficiary = get_object_or_404(
        Beneficiary.objects.visible_to(membership).select_related("distributor"),
        reference=reference,
    )
    booklets = list(
        Booklet.objects.filter(beneficiary=beneficiary)
        .select_related("programme")
        .annotate(valid_until=Max("cheques__expires_on"))
        .order_by("assigned_at", "number")
    )
    if not booklets:  # a beneficiary is created with its booklet, in one transaction
        raise AssertionError(f"beneficiary {beneficiary.pk} has no booklet")
    programme = booklets[0].programme
    services = [c.name for c in programme.categories.filter(is_active=True).order_by("name")]
    territory = programme_territory(programme)
    places = providers_nearest(
        postcode=beneficiary.postcode, departements=territory or None, limit=providers
    )
    distributor = beneficiary.distributor
    return Receipt(
        reference=beneficiary.reference,
        distributor_name=distributor.name,
        distributor_address=distributor.address,
        distributor_postcode=distributor.postcode,
        distributor_city=distributor.city,
        postcode=beneficiary.postcode,
        handed_out_at=booklets[0].assigned_at,
        programme=programme,
        cheque_value_cents=programme.cheque_value_cents,
        booklets=[
            ReceiptBooklet(
                number=b.number,
                size=b.size,
                value_cents=b.size * programme.cheque_value_cents,
                valid_until=b.valid_until,
                is_blocked=b.status == BookletStatus.BLOCKED,
            )
            for b in booklets
        ],
        territory=territory,
        services=services,
        # Each place's own services, limited to those the programme funds.
        providers=[
            ReceiptProvider(
                place=place, services=[name for name in place.services if name in services]
            )
            for place in places
        ],
    )
