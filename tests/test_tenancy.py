"""Tenancy fails closed: every route that takes an object id answers 404 to another organisation.

The walk lists every URL pattern of the project. A pattern with parameters must either have an
entry in ``OWNED_OBJECTS`` (how to create an object that belongs to another organisation) or in
``NOT_OBJECT_ROUTES`` with the reason it takes no object id. A new route in neither fails the test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from orgs.audit import Actor
from orgs.models import Invitation, MemberRole
from orgs.services import api_token_create, invitation_create
from tests.factories import MembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

# Routes with parameters that are not object ids, and why they are safe.
NOT_OBJECT_ROUTES = {
    "api_cheque": "any provider checks any cheque by its secret code; the answer tells only the "
    "same provider where and when it redeemed it",
    "vouchers:service_edit": "the service catalogue is shared by all; editing is operator-only",
    "invitation_accept": "public link: the secret token is the authorisation",
    "password_reset_confirm": "public link: Django's signed reset token",
    "directory:search": "public directory of accredited places: takes search filters, never an "
    "object id, and lists only what every visitor may see",
    **dict.fromkeys(
        ["redemption:public_cheque", "redemption:public_cheque_qr"],
        "public page opened by the cheque's QR code: the secret code is the key, and the page "
        "shows no organisation's object nor anything about the beneficiary",
    ),
}
# Routes only operators reach: operators see every organisation's objects, so tenancy is
# their role itself; anyone else is refused (403) whatever the object.
OPERATOR_ONLY = {"vouchers:order_approve", "vouchers:order_reject", "vouchers:programme_edit"}
OPERATOR_ONLY |= {  # the accreditation review
    "accreditation_review",
    "accreditation_start_review",
    "accreditation_approve",
    "accreditation_request_changes",
    "accreditation_reject",
    "accreditation_suspend",
    "accreditation_reinstate",
    "accreditation_renew",
    "accreditation_bank_verify",
}
OPERATOR_ONLY |= {"login_lockout_lift"}  # sign-in lock-outs concern people, not organisations
OPERATOR_ONLY |= {  # settlement batches and bank rejections
    "settlement:batch_detail",
    "settlement:batch_progress",
    "settlement:batch_approve",
    "settlement:batch_export",
    "settlement:batch_sepa",
    "settlement:batch_mark_paid",
    "settlement:payout_reject",
}
# Namespaces outside the walk.
EXCLUDED_NAMESPACES = {"admin": "Django admin: staff accounts only, read-only models"}


def _walk(resolver: URLResolver, prefix: str = "", namespace: str | None = None):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            ns = entry.namespace or namespace
            yield from _walk(entry, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield namespace, entry.name, prefix + str(entry.pattern), entry.pattern.converters


def routes_with_parameters() -> list[tuple[str, str]]:
    found = []
    for namespace, name, route, converters in _walk(get_resolver()):
        if namespace in EXCLUDED_NAMESPACES or not converters:
            continue
        full = f"{namespace}:{name}" if namespace else name
        found.append((full, route))
    return found


def _other_member(owner):
    return MembershipFactory(organisation=owner.organisation, role=MemberRole.AGENT)


def _invitation(owner):
    invitation_create(
        actor=Actor(user=owner.user, membership=owner), email="new@example.org", role="agent"
    )
    return Invitation.objects.get(organisation=owner.organisation, email="new@example.org")


def _token(owner):
    return api_token_create(actor=Actor.system(), membership=owner, name="scanner")[0]


def _order(owner):

    from tests.factories import ProgrammeFactory
    from vouchers.services.orders import order_create

    programme = ProgrammeFactory(funder=owner.organisation)
    actor = Actor(user=owner.user, membership=owner)
    return order_create(actor=actor, programme=programme, lines={5: 1})


def _printed_order_kwargs(owner):
    from tests.vouchers.helpers import issued_order, operator_membership
    from vouchers.services.printing import print_chunk_render, print_run_finish, print_run_start

    order = issued_order(lines={5: 1}, funder=owner, operator=operator_membership())
    run = print_run_start(order_id=order.pk)
    for chunk in run.chunks.all():
        print_chunk_render(chunk_id=chunk.pk)
    print_run_finish(run_id=run.pk)
    return {"pk": order.pk}


def _order_kwargs(owner):
    return {"pk": _order(owner).pk}


def _programme(owner):
    from tests.factories import ProgrammeFactory

    return {"pk": ProgrammeFactory(funder=owner.organisation).pk}


# Route name → function(owner membership) → URL kwargs of an object the owner's organisation holds.
OWNED_OBJECTS: dict[str, Callable] = {
    "login_lockout_lift": lambda owner: __import__(
        "tests.security.test_lockout", fromlist=["_"]
    ).tenancy_lockout_kwargs(owner),
    "organisation_detail": lambda owner: {"pk": owner.organisation.pk},
    "member_edit": lambda owner: {"pk": _other_member(owner).pk},
    "member_remove": lambda owner: {"pk": _other_member(owner).pk},
    "invitation_revoke": lambda owner: {"pk": _invitation(owner).pk},
    "token_revoke": lambda owner: {"pk": _token(owner).pk},
    "notification_detail": lambda owner: __import__(
        "tests.orgs.test_notifications", fromlist=["_"]
    ).tenancy_notification_kwargs(owner),
    "vouchers:programme_edit": _programme,
    "vouchers:order_detail": _order_kwargs,
    "vouchers:order_print_progress": _order_kwargs,
    "vouchers:order_submit": _order_kwargs,
    "vouchers:order_cancel": _order_kwargs,
    "vouchers:order_approve": _order_kwargs,
    "vouchers:order_reject": _order_kwargs,
    "vouchers:order_proforma": _order_kwargs,
    "vouchers:order_download": _printed_order_kwargs,
    "api_order_detail": _order_kwargs,
    # Accreditation: a site and a document of the owner's application; the application itself.
    **dict.fromkeys(
        ["accreditation_site_edit", "accreditation_site_remove"],
        lambda owner: __import__(
            "tests.orgs.test_accreditation", fromlist=["_"]
        ).tenancy_site_kwargs(owner),
    ),
    **dict.fromkeys(
        ["accreditation_document_download", "accreditation_document_remove"],
        lambda owner: __import__(
            "tests.orgs.test_accreditation", fromlist=["_"]
        ).tenancy_document_kwargs(owner),
    ),
    **dict.fromkeys(
        [
            "accreditation_review",
            "accreditation_start_review",
            "accreditation_approve",
            "accreditation_request_changes",
            "accreditation_reject",
            "accreditation_suspend",
            "accreditation_reinstate",
            "accreditation_renew",
            "accreditation_bank_verify",
        ],
        lambda owner: __import__(
            "tests.orgs.test_accreditation", fromlist=["_"]
        ).tenancy_accreditation_kwargs(owner),
    ),
    **dict.fromkeys(
        [
            "api_redemption_cancel",
            "redemption:redemption_detail",
            "redemption:redemption_cancel",
        ],
        lambda owner: __import__(
            "tests.redemption.helpers", fromlist=["_"]
        ).tenancy_redemption_kwargs(owner),
    ),
    # The counter: a booklet the owner holds; the receipt of a booklet the owner handed out.
    "vouchers:counter_assign": lambda owner: __import__(
        "tests.vouchers.test_counter", fromlist=["_"]
    ).tenancy_booklet_kwargs(owner),
    "vouchers:receipt": lambda owner: __import__(
        "tests.vouchers.test_counter", fromlist=["_"]
    ).tenancy_receipt_kwargs(owner),
    "vouchers:receipt_pdf": lambda owner: __import__(
        "tests.vouchers.test_counter", fromlist=["_"]
    ).tenancy_receipt_kwargs(owner),
    # Funders' accounts: a credit note of a programme the owner funded, closed.
    "vouchers:credit_note_pdf": lambda owner: __import__(
        "tests.vouchers.test_ledger", fromlist=["_"]
    ).tenancy_credit_note_kwargs(owner),
    # Distribution: a booklet the owner funds, by number.
    **dict.fromkeys(
        [
            "api_booklet",
            "api_booklet_assign",
            "vouchers:booklet_detail",
            "vouchers:booklet_block",
            "vouchers:cheques_block",
            "vouchers:booklet_replace",
        ],
        lambda owner: __import__(
            "tests.vouchers.test_stock", fromlist=["_"]
        ).tenancy_booklet_kwargs(owner),
    ),
    # Settlement: a payout to the owner (statements: the provider and operators only), and the
    # exported batch that pays it (operators only).
    **dict.fromkeys(
        ["settlement:statement_pdf", "settlement:statement_csv", "settlement:payout_reject"],
        lambda owner: __import__(
            "tests.redemption.test_settlement_views", fromlist=["_"]
        ).tenancy_payout_kwargs(owner),
    ),
    **dict.fromkeys(
        [
            "settlement:batch_detail",
            "settlement:batch_progress",
            "settlement:batch_approve",
            "settlement:batch_export",
            "settlement:batch_sepa",
            "settlement:batch_mark_paid",
        ],
        lambda owner: __import__(
            "tests.redemption.test_settlement_views", fromlist=["_"]
        ).tenancy_batch_kwargs(owner),
    ),
}


def test_every_route_with_parameters_is_walked_or_explained():
    missing = [
        (name, route)
        for name, route in routes_with_parameters()
        if name not in OWNED_OBJECTS and name not in NOT_OBJECT_ROUTES
    ]
    assert not missing, (
        "Add these routes to OWNED_OBJECTS in tests/test_tenancy.py (or to NOT_OBJECT_ROUTES "
        f"with the reason they take no object id): {missing}"
    )


def _all_roles_admin():
    """A member of another organisation holding every role except operator, as admin."""
    organisation = OrganisationFactory(is_funder=True, is_distributor=True, is_provider=True)
    return MembershipFactory(organisation=organisation, role=MemberRole.ADMIN)


@pytest.mark.parametrize("route_name", sorted(OWNED_OBJECTS))
def test_another_organisations_object_answers_404(route_name, client_for, api_for):
    owner = MembershipFactory(
        organisation=OrganisationFactory(is_funder=True, is_distributor=True, is_provider=True)
    )
    kwargs = OWNED_OBJECTS[route_name](owner)
    url = reverse(route_name, kwargs=kwargs)
    outsider = _all_roles_admin()
    client = api_for(outsider) if url.startswith("/api/") else client_for(outsider)

    get = client.get(url)
    post = client.post(url, {})
    hidden = (403, 404, 405) if route_name in OPERATOR_ONLY else (404, 405)
    assert get.status_code in hidden, (url, get.status_code)
    assert post.status_code in hidden, (url, post.status_code)
    if route_name not in OPERATOR_ONLY:
        assert 404 in (get.status_code, post.status_code), url
    if route_name in OPERATOR_ONLY:
        owner = MembershipFactory(organisation=OrganisationFactory(is_operator=True))

    # The owner reaches the same URL (the 404 above is tenancy, not a broken route).
    owner_client = api_for(owner) if url.startswith("/api/") else client_for(owner)
    assert owner_client.get(url).status_code in (200, 302, 405)


def test_operators_reach_any_organisation_but_others_only_their_own(
    client_for, operator_admin, funder_admin, provider_admin
):
    url = reverse("organisation_detail", args=[provider_admin.organisation.pk])
    assert client_for(operator_admin).get(url).status_code == 200
    assert client_for(funder_admin).get(url).status_code == 404
    assert client_for(provider_admin).get(url).status_code == 200


# Dashboards take no object id in their path: the programme in their filter is the object a
# caller could point at another organisation's. It is refused as a field error, with no figures.
DASHBOARD_ROUTES = ["insight:funder", "insight:distributor", "insight:provider"]


@pytest.mark.parametrize("route_name", DASHBOARD_ROUTES)
def test_another_organisations_programme_in_a_dashboard_filter_is_refused(route_name, client_for):
    from tests.factories import ProgrammeFactory

    programme = ProgrammeFactory(name="Programme d'un autre commanditaire")
    outsider = _all_roles_admin()
    response = client_for(outsider).get(reverse(route_name), {"programme": programme.pk})

    assert response.status_code == 400
    assert "Programme d&#x27;un autre commanditaire" not in response.text
    assert "<svg" not in response.text
    assert client_for(outsider).get(reverse(route_name)).status_code == 200
