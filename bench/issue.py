"""Issue 100 000 cheques through the issuance service, against raw COPY of as many rows.

    .venv/bin/python bench/issue.py [--cheques 100000]

Both runs insert into the cheque table itself (same indexes, checks and foreign key); the raw
run gets its codes ready-made and is rolled back, so the ratio is the whole cost of the service
(numbering, codes, booklets, audit, commit) over the database's own limit.
"""

from __future__ import annotations

import argparse
import secrets
import time

from _setup import django_on_postgres, table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cheques", type=int, default=100_000)
    args = parser.parse_args()
    django_on_postgres()

    from django.db import connection
    from django.utils import timezone

    from orgs.audit import Actor
    from orgs.models import MemberRole, Membership, Organisation, User
    from vouchers import codes
    from vouchers.models import ServiceCategory
    from vouchers.services.issuance import order_issue
    from vouchers.services.orders import order_approve, order_create, order_submit
    from vouchers.services.programmes import programme_create

    stamp = secrets.token_hex(3)
    operator_org = Organisation.objects.filter(is_operator=True).first() or (
        Organisation.objects.create(
            name="Médias-Cité (bench)",
            slug=f"ops-{stamp}",
            is_operator=True,
            siret="73282932000074",
            address="-",
            postcode="33130",
            city="Bègles",
            departement="33",
        )
    )
    from stdnum import luhn

    siren = "9" + f"{secrets.randbelow(10**7):07d}"
    siren += luhn.calc_check_digit(siren)
    siret = siren + "0001"
    siret += luhn.calc_check_digit(siret)
    funder_org = Organisation.objects.create(
        name=f"Funder {stamp}",
        slug=f"funder-{stamp}",
        is_funder=True,
        siret=siret,
        address="-",
        postcode="33000",
        city="Bordeaux",
        departement="33",
    )
    user = User.objects.create_user(f"bench-{stamp}@example.org", None)
    operator = Membership.objects.create(
        user=user, organisation=operator_org, role=MemberRole.ADMIN
    )
    funder = Membership.objects.create(user=user, organisation=funder_org, role=MemberRole.ADMIN)
    operator_actor = Actor(user=user, membership=operator)
    funder_actor = Actor(user=user, membership=funder)
    category, _ = ServiceCategory.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    programme = programme_create(
        actor=operator_actor,
        funder=funder_org,
        categories=[category],
        name=f"Bench {stamp}",
        cheque_value_cents=1000,
        offers_booklet_of_5=True,
        offers_booklet_of_10=True,
        validity_kind="fixed_date",
        valid_until=timezone.localdate().replace(month=12, day=31),
        max_booklets_per_order=1_000_000,
    )
    order = order_create(actor=funder_actor, programme=programme, lines={10: args.cheques // 10})
    order_submit(actor=funder_actor, order=order)
    import vouchers.tasks

    vouchers.tasks.issue_order.delay = lambda order_id: None  # timed below instead
    vouchers.tasks.start_printing.delay = lambda order_id: None
    order_approve(
        actor=operator_actor,
        order=order,
        payment_reference="BENCH",
        payment_received_on=timezone.localdate(),
    )

    started = time.perf_counter()
    order_issue(order_id=order.pk)
    service_seconds = time.perf_counter() - started

    # Raw limit: COPY as many ready-made cheque rows into the same table (same indexes, checks
    # and foreign key, checked at once), in a transaction rolled back afterwards.
    from django.db import transaction

    ready_codes = codes.new_codes(args.cheques)
    booklet_ids = list(order.booklets.order_by("pk").values_list("pk", flat=True))
    expires = programme.last_valid_day
    raw = connection.cursor().cursor
    started = time.perf_counter()
    with transaction.atomic():
        raw.execute("SET CONSTRAINTS ALL IMMEDIATE")
        with raw.copy(
            "COPY vouchers_cheque (booklet_id, position, code, value_cents, expires_on, status, "
            "blocked_reason) FROM STDIN"
        ) as copy:
            for index, code in enumerate(ready_codes):
                copy.write_row(
                    (booklet_ids[index // 10], 11 + index % 10, code, 1000, expires, "active", "")
                )
        raw_seconds = time.perf_counter() - started
        transaction.set_rollback(True)

    service_rate = args.cheques / service_seconds
    raw_rate = args.cheques / raw_seconds
    print(f"Issuance of {args.cheques:,} cheques ({args.cheques // 10:,} booklets), PostgreSQL")
    print(
        table(
            [
                ("run", "seconds", "cheques/s"),
                (
                    "issuance service (order_issue)",
                    f"{service_seconds:.2f}",
                    f"{service_rate:,.0f}",
                ),
                ("raw psycopg COPY, same rows", f"{raw_seconds:.2f}", f"{raw_rate:,.0f}"),
            ]
        )
    )
    ratio = service_rate / raw_rate
    verdict = "met" if ratio >= 0.5 else "NOT met"
    print(f"ratio service / raw COPY: {ratio:.2f}  (target >= 0.50: {verdict})")


if __name__ == "__main__":
    main()
