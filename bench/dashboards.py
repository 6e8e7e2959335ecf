"""Every role's dashboard on a database of 1 000 000 cheques, against raw SQL of the same figures.

    .venv/bin/python bench/dashboards.py [--cheques 1000000] [--runs 7]

The data set is built once in the database ``aptic_bench_dash`` (or DATABASE_URL) and reused
(a marker organisation records its size): 20 funders with a programme each, 100 distributors,
500 accredited providers with a site each in their funder's département, 8 services; booklets
of 10 issued over the last 24 months, 80 % of them allocated, 60 % handed out (a pseudonymous
beneficiary each, with an age bracket and a situation), 40 % of the handed-out cheques redeemed
(one redemption per cheque, dated after the hand-out), 3 % of the cheques expired, failed scans.
Small tables go through the ORM, large ones through INSERT … SELECT over generate_series.

Then, for each role, the dashboard page is requested through Django's test client (the whole
server side: middleware, selectors, SVG charts, template) several times after a warm-up, and
its median and maximum are printed beside raw SQL of the same figures, measured in the same run:

* funder and operator: the dashboards read the monthly tallies that ``insight_refresh`` rebuilds
  every 10 minutes (its own time is printed too). Two baselines: the same GROUP BYs over the
  tallies in raw SQL (the floor for this design), and the figures aggregated straight from the
  source tables in raw SQL (what a dashboard without tallies would cost);
* distributor and provider: their own rows, read live; the baseline is the same GROUP BYs in
  raw SQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _setup import django_on_postgres, table

MARKER_SLUG = "bench-dashboards"
FUNDERS = 20
DISTRIBUTORS_PER_FUNDER = 5
PROVIDERS = 500
SERVICES = 8
TARGET_MS = 300


def _siret(prefix: str, n: int) -> str:
    from stdnum import luhn

    siren = f"{prefix}{n:07d}"
    siren += luhn.calc_check_digit(siren)
    siret = siren + "0001"
    return siret + luhn.calc_check_digit(siret)


def _build(cheques: int) -> None:
    from datetime import date, timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from orgs.models import (
        Accreditation,
        AccreditationSite,
        AccreditationStatus,
        MemberRole,
        Membership,
        Organisation,
        ServiceCategory,
        User,
    )
    from vouchers.models import Order, OrderStatus, Programme

    booklets = cheques // 10
    started = time.perf_counter()
    print(f"Building the data set: {cheques:,} cheques in {booklets:,} booklets of 10 …")
    deps = [f"{n:02d}" for n in range(21, 21 + FUNDERS)]
    with transaction.atomic():
        operator = Organisation.objects.filter(is_operator=True).order_by("pk").first()
        if operator is None:
            operator = Organisation.objects.create(
                name="Médias-Cité (bench)",
                slug="ops-bench-dash",
                is_operator=True,
                siret="73282932000074",
                address="-",
                postcode="33130",
                city="Bègles",
                departement="33",
            )
        marker = Organisation.objects.create(
            name=f"Bench dashboards {cheques}",
            slug=MARKER_SLUG,
            is_operator=False,
            is_funder=False,
            is_provider=True,
            siret=_siret("6", 1),
            address="-",
            postcode="33000",
            city="Bordeaux",
            departement="33",
        )
        services = [
            ServiceCategory.objects.get_or_create(
                slug=f"bench-dash-{n}", defaults={"name": f"Atelier numérique {n + 1}"}
            )[0]
            for n in range(SERVICES)
        ]
        funders = Organisation.objects.bulk_create(
            Organisation(
                name=f"Département bench {dep}",
                slug=f"{MARKER_SLUG}-f{dep}",
                is_funder=True,
                siret=_siret("7", n),
                address="-",
                postcode=f"{dep}000",
                city="Préfecture",
                departement=dep,
            )
            for n, dep in enumerate(deps, start=1)
        )
        distributors = Organisation.objects.bulk_create(
            Organisation(
                name=f"CCAS bench {n:03d}",
                slug=f"{MARKER_SLUG}-d{n:03d}",
                is_distributor=True,
                siret=_siret("5", n),
                address="-",
                postcode=f"{deps[(n - 1) // DISTRIBUTORS_PER_FUNDER]}{n % 1000:03d}",
                city="Ville",
                departement=deps[(n - 1) // DISTRIBUTORS_PER_FUNDER],
            )
            for n in range(1, FUNDERS * DISTRIBUTORS_PER_FUNDER + 1)
        )
        providers = Organisation.objects.bulk_create(
            Organisation(
                name=f"Lieu bench {n:03d}",
                slug=f"{MARKER_SLUG}-p{n:03d}",
                is_provider=True,
                siret=_siret("8", n),
                address="-",
                postcode=f"{deps[n % FUNDERS]}{100 + n % 90:03d}",
                city="Ville",
                departement=deps[n % FUNDERS],
            )
            for n in range(1, PROVIDERS + 1)
        )
        accreditations = Accreditation.objects.bulk_create(
            Accreditation(
                organisation=org,
                status=AccreditationStatus.APPROVED,
                valid_until=timezone.localdate() + timedelta(days=365),
                siret=org.siret,
                legal_name=org.name,
            )
            for org in providers
        )
        sites = AccreditationSite.objects.bulk_create(
            AccreditationSite(
                accreditation=accreditation,
                name=f"Atelier {org.name}",
                address="-",
                postcode=org.postcode,
                city=org.city,
                departement=org.departement,
                is_approved=True,
            )
            for accreditation, org in zip(accreditations, providers, strict=True)
        )
        users = {}
        for name, org in (
            ("operator", operator),
            ("funder", funders[0]),
            ("distributor", distributors[0]),
            ("provider", providers[FUNDERS]),
        ):
            users[name] = User.objects.create_user(f"bench-dash-{name}@example.org", None)
            Membership.objects.create(user=users[name], organisation=org, role=MemberRole.ADMIN)
        agents = [
            User.objects.create_user(
                f"bench-dash-agent-{n}@example.org", None, full_name=f"Agent {n}"
            )
            for n in range(1, 4)
        ]
        for agent in agents:
            Membership.objects.create(
                user=agent, organisation=distributors[0], role=MemberRole.AGENT
            )
        programmes = []
        orders = []
        per_funder = booklets // FUNDERS
        for n, funder in enumerate(funders):
            programme = Programme.objects.create(
                name=f"Chèque APTIC bench {funder.departement}",
                funder=funder,
                validity_kind="fixed_date",
                valid_until=date.today() + timedelta(days=365),
                departements=[funder.departement],
                max_booklets_per_order=per_funder,
            )
            programme.categories.set(services)
            programmes.append(programme)
            face = per_funder * 10 * 1000
            orders.append(
                Order.objects.create(
                    reference=f"CMD-BENCH-{n:04d}",
                    funder=funder,
                    programme=programme,
                    status=OrderStatus.PRINTED,
                    face_value_cents=face,
                    fee_cents=face // 25,
                    total_cents=face + face // 25,
                )
            )
        raw = connection.cursor().cursor
        now = timezone.now()
        params = {
            "n": booklets,
            "nf": FUNDERS,
            "nd": DISTRIBUTORS_PER_FUNDER,
            "orders": [o.pk for o in orders],
            "programmes": [p.pk for p in programmes],
            "funders": [f.pk for f in funders],
            "distributors": [d.pk for d in distributors],
            "agents": [a.pk for a in agents] + [users["distributor"].pk],
            "now": now,
        }
        # Booklet i: funder i % 20, created over the last 24 months; i % 10 < 8 allocated to
        # one of the funder's 5 distributors; i % 10 < 6 handed out 0-60 days after creation.
        raw.execute(
            """
            CREATE TEMP TABLE bench_b ON COMMIT DROP AS
            SELECT i,
                   (i %% %(nf)s) + 1 AS f,
                   ((i %% %(nf)s) * %(nd)s) + ((i / %(nf)s) %% %(nd)s) + 1 AS d,
                   %(now)s::timestamptz - ((i * 7919) %% 720) * interval '1 day' AS created,
                   i %% 10 < 8 AS allocated,
                   i %% 10 < 6 AS assigned
            FROM generate_series(1, %(n)s) AS i
            """,
            params,
        )
        raw.execute(
            """
            INSERT INTO vouchers_beneficiary (reference, distributor_id, age_bracket, postcode,
                gender, situation, dedup_key, created_at)
            SELECT 'B' || lpad(i::text, 15, '0'), (%(distributors)s::bigint[])[d],
                   (ARRAY['16-25','26-44','45-59','60-74','75+'])[1 + (i * 13) %% 5],
                   lpad(((f + 20) * 1000 + i %% 97)::text, 5, '0'), '',
                   (ARRAY['job_seeker','rsa','senior','disability','student','employed',
                          'other',''])[1 + (i * 7) %% 8],
                   md5(i::text), created
            FROM bench_b WHERE assigned
            """,
            params,
        )
        raw.execute(
            """
            INSERT INTO vouchers_booklet (number, order_id, programme_id, funder_id, holder_id,
                size, status, print_position, created_at, allocated_at, beneficiary_id,
                assigned_at, assigned_by_id, blocked_reason)
            SELECT 'BD' || lpad(b.i::text, 8, '0'), (%(orders)s::bigint[])[b.f],
                   (%(programmes)s::bigint[])[b.f], (%(funders)s::bigint[])[b.f],
                   CASE WHEN b.allocated THEN (%(distributors)s::bigint[])[b.d] END,
                   10,
                   CASE WHEN b.assigned THEN 'assigned' WHEN b.allocated THEN 'allocated'
                        ELSE 'in_stock' END,
                   b.i, b.created, CASE WHEN b.allocated THEN b.created END, ben.id,
                   CASE WHEN b.assigned
                        THEN least(b.created + ((b.i %% 60) * interval '1 day'), %(now)s) END,
                   CASE WHEN b.assigned THEN (%(agents)s::bigint[])[1 + b.i %% 4] END, ''
            FROM bench_b b
            LEFT JOIN vouchers_beneficiary ben
              ON ben.reference = 'B' || lpad(b.i::text, 15, '0')
            """,
            params,
        )
        print(f"  booklets and beneficiaries: {time.perf_counter() - started:.0f} s")
        # Cheques: 10 per booklet; in handed-out booklets positions 1-4 redeemed, position 10
        # of one booklet in two expired.
        raw.execute(
            """
            INSERT INTO vouchers_cheque (booklet_id, position, code, value_cents, expires_on,
                status, blocked_reason)
            SELECT b.id, p, upper(lpad(to_hex(b.id * 10 + p), 13, '0')), 1000,
                   %(expires)s,
                   CASE WHEN b.status = 'assigned' AND p <= 4 THEN 'redeemed'
                        WHEN b.status = 'assigned' AND p = 10 AND b.id %% 2 = 0 THEN 'expired'
                        ELSE 'active' END,
                   ''
            FROM vouchers_booklet b CROSS JOIN generate_series(1, 10) AS p
            WHERE b.order_id = ANY(%(orders)s)
            """,
            {**params, "expires": date.today() + timedelta(days=365)},
        )
        raw.execute(
            "UPDATE vouchers_cheque c SET expires_on = (b.assigned_at + interval '30 days')::date "
            "FROM vouchers_booklet b WHERE b.id = c.booklet_id AND c.status = 'expired'"
        )
        print(f"  cheques: {time.perf_counter() - started:.0f} s")
        params.update(
            {
                "providers": [p.pk for p in providers],
                "sites": [s.pk for s in sites],
                "services": [s.pk for s in services],
                "agent": users["provider"].pk,
                "np": PROVIDERS,
            }
        )
        # One redemption per redeemed cheque, by a provider of the funder's département, a few
        # days after the hand-out.
        raw.execute(
            """
            CREATE TEMP TABLE bench_r ON COMMIT DROP AS
            SELECT nextval(pg_get_serial_sequence('redemption_redemption', 'id')) AS id,
                   c.id AS cheque_id, c.booklet_id,
                   (b.id %% 24) * %(nf)s + array_position(%(funders)s::bigint[], b.funder_id)
                       + %(nf)s - 1 AS slot,
                   least(b.assigned_at + ((c.position * 5 + b.id %% 20) * interval '1 day'),
                         %(now)s) AS at
            FROM vouchers_cheque c JOIN vouchers_booklet b ON b.id = c.booklet_id
            WHERE c.status = 'redeemed' AND b.order_id = ANY(%(orders)s)
            """,
            params,
        )
        raw.execute(
            """
            INSERT INTO redemption_redemption (id, provider_id, site_id, agent_id, service_id,
                amount_cents, cheque_count, status, created_at, request_fingerprint)
            SELECT id, (%(providers)s::bigint[])[slot], (%(sites)s::bigint[])[slot], %(agent)s,
                   (%(services)s::bigint[])[1 + (cheque_id %% 8)], 1000, 1, 'active', at, ''
            FROM bench_r
            """,
            params,
        )
        raw.execute(
            "INSERT INTO redemption_redemptionline (redemption_id, cheque_id, value_cents, live) "
            "SELECT id, cheque_id, 1000, true FROM bench_r"
        )
        raw.execute(
            """
            INSERT INTO redemption_scanattempt (organisation_id, user_id, code, reason, kind,
                created_at)
            SELECT (%(providers)s::bigint[])[1 + i %% %(np)s], %(agent)s, 'XXXX',
                   (ARRAY['unknown_cheque', 'invalid_code', 'already_redeemed',
                          'expired'])[1 + i %% 4],
                   'check', %(now)s::timestamptz - ((i * 31) %% 720) * interval '1 day'
            FROM generate_series(1, %(scans)s) AS i
            """,
            {**params, "scans": cheques // 20},
        )
    cursor = connection.cursor()
    for name in (
        "vouchers_booklet",
        "vouchers_cheque",
        "vouchers_beneficiary",
        "redemption_redemption",
        "redemption_redemptionline",
        "redemption_scanattempt",
    ):
        cursor.execute(f"VACUUM ANALYZE {name}")
    assert marker.pk
    print(f"  data set ready in {time.perf_counter() - started:.0f} s")


def _client(email: str):
    from django.test import Client

    from orgs.models import Membership

    membership = Membership.objects.get(user__email=email)
    client = Client()
    client.force_login(membership.user)
    session = client.session
    session["membership_id"] = membership.pk
    try:  # operators' staff pass the second sign-in step with a confirmed authenticator
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        device, _ = TOTPDevice.objects.get_or_create(
            user=membership.user, defaults={"name": "bench", "confirmed": True}
        )
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    except ImportError:
        pass
    session.save()
    return client, membership


def _time(call, runs: int) -> tuple[float, float]:
    call()  # warm-up: connections, templates, caches
    laps = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        laps.append((time.perf_counter() - started) * 1000)
    return statistics.median(laps), max(laps)


def _sql(statements: list[tuple[str, list]]):
    from django.db import connection

    def run():
        with connection.cursor() as cursor:
            for statement, params in statements:
                cursor.execute(statement, params)
                cursor.fetchall()

    return run


def _period():
    from datetime import date

    from django.utils import timezone

    from insight.forms import DEFAULT_MONTHS
    from insight.selectors import Period, next_month

    end = timezone.localdate().replace(day=1)
    year, month = divmod(end.year * 12 + end.month - 1 - (DEFAULT_MONTHS - 1), 12)
    period = Period(start=date(year, month + 1, 1), end=end)
    return period, next_month(end)


def _tally_sql(funder_id: int | None) -> list[tuple[str, list]]:
    """The funding dashboard's three reads, by hand, over the tallies."""
    period, _after = _period()
    scope = "month >= %s AND month <= %s" + (" AND funder_id = %s" if funder_id else "")
    args = [period.start, period.end] + ([funder_id] if funder_id else [])
    return [
        (
            "SELECT measure, month, sum(quantity), sum(amount_cents), sum(booklets) "
            f"FROM insight_tally WHERE {scope} AND (measure IN ('issued', 'handed_out', "
            "'expired', 'handed_redeemed') OR (measure = 'redeemed' AND dimension = 'service')) "
            "GROUP BY measure, month",
            args,
        ),
        (
            "SELECT t.dimension, t.key, t.organisation_id, o.name, sum(t.quantity), "
            "sum(t.amount_cents) FROM insight_tally t LEFT JOIN orgs_organisation o "
            f"ON o.id = t.organisation_id WHERE {scope.replace('month', 't.month')} "
            "AND t.measure = 'redeemed' GROUP BY 1, 2, 3, 4",
            args,
        ),
        ("SELECT id, name FROM orgs_servicecategory", []),
    ]


def _source_sql(funder_id: int | None) -> list[tuple[str, list]]:
    """The same figures aggregated straight from the source tables (no tallies)."""
    period, after = _period()
    since, until = period.start, after
    where_b = "b.funder_id = %s AND " if funder_id else ""
    fa = [funder_id] if funder_id else []
    month = "date_trunc('month', {} AT TIME ZONE 'Europe/Paris')"
    lines = (
        "FROM redemption_redemptionline l JOIN redemption_redemption r ON r.id = l.redemption_id "
        "JOIN vouchers_cheque c ON c.id = l.cheque_id "
        "JOIN vouchers_booklet b ON b.id = c.booklet_id "
        "LEFT JOIN orgs_accreditationsite s ON s.id = r.site_id "
        "LEFT JOIN vouchers_beneficiary ben ON ben.id = b.beneficiary_id "
        f"WHERE {where_b}l.live AND r.status = 'active' AND r.created_at >= %s "
        "AND r.created_at < %s"
    )
    return [
        (
            f"SELECT {month.format('b.created_at')}, sum(b.size) FROM vouchers_booklet b "
            f"WHERE {where_b}b.created_at >= %s AND b.created_at < %s GROUP BY 1",
            [*fa, since, until],
        ),
        (
            f"SELECT {month.format('b.assigned_at')}, b.holder_id, sum(b.size), count(*) "
            f"FROM vouchers_booklet b WHERE {where_b}b.assigned_at >= %s AND b.assigned_at < %s "
            "GROUP BY 1, 2",
            [*fa, since, until],
        ),
        (
            f"SELECT {month.format('b.assigned_at')}, count(*) FROM vouchers_cheque c "
            f"JOIN vouchers_booklet b ON b.id = c.booklet_id WHERE {where_b}"
            "c.status = 'redeemed' AND b.assigned_at >= %s AND b.assigned_at < %s GROUP BY 1",
            [*fa, since, until],
        ),
        (
            "SELECT date_trunc('month', c.expires_on), count(*) FROM vouchers_cheque c "
            f"JOIN vouchers_booklet b ON b.id = c.booklet_id WHERE {where_b}"
            "c.status = 'expired' AND c.expires_on >= %s AND c.expires_on < %s GROUP BY 1",
            [*fa, since, until],
        ),
        *(
            (
                f"SELECT {month.format('r.created_at')}, {key}, count(*), sum(l.value_cents) "
                f"{lines} GROUP BY 1, 2",
                [*fa, since, until],
            )
            for key in (
                "r.service_id",
                "s.departement",
                "s.postcode",
                "b.holder_id",
                "ben.age_bracket",
                "ben.situation",
            )
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cheques", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    os.environ.setdefault("STATIC_MANIFEST", "0")  # no collectstatic needed to render pages
    django_on_postgres("aptic_bench_dash")

    from django.db import connection

    from insight.services import insight_refresh
    from orgs.models import Organisation
    from vouchers.models import Cheque

    marker = Organisation.objects.filter(slug=MARKER_SLUG).first()
    if marker is None:
        _build(args.cheques)
    elif marker.name != f"Bench dashboards {args.cheques}":
        raise SystemExit(f"The database holds another data set ({marker.name!r}).")
    else:
        print(f"Reusing the data set ({marker.name}).")
    counts = {
        "cheques": Cheque.objects.count(),
    }
    with connection.cursor() as cursor:
        for name in ("vouchers_booklet", "redemption_redemptionline", "redemption_scanattempt"):
            cursor.execute(f"SELECT count(*) FROM {name}")
            counts[name] = cursor.fetchone()[0]
    print("rows: " + ", ".join(f"{name} {count:,}" for name, count in counts.items()))

    started = time.perf_counter()
    snapshot = insight_refresh()
    refresh_s = time.perf_counter() - started
    print(f"insight_refresh (every tally rebuilt): {refresh_s:.1f} s, {snapshot.rows:,} rows")

    rows = [("dashboard", "median ms", "max ms", "baseline", "baseline ms", "ratio", "< 300 ms")]
    for role, url in (
        ("funder", "/tableau-de-bord/commanditaire/"),
        ("operator", "/tableau-de-bord/operateur/"),
        ("distributor", "/tableau-de-bord/structure-relais/"),
        ("provider", "/tableau-de-bord/lieu-qualifie/"),
    ):
        client, membership = _client(f"bench-dash-{role}@example.org")

        def page(client=client, url=url):
            response = client.get(url, secure=True)
            assert response.status_code == 200, (url, response.status_code)
            return response

        median, peak = _time(page, args.runs)
        met = "met" if peak < TARGET_MS else ("median met" if median < TARGET_MS else "NOT met")
        org = membership.organisation
        if role in ("funder", "operator"):
            funder_id = org.pk if role == "funder" else None
            baselines = [
                ("raw SQL over the tallies", _tally_sql(funder_id)),
                ("raw SQL over the source tables", _source_sql(funder_id)),
            ]
        elif role == "distributor":
            period, after = _period()
            baselines = [
                (
                    "raw SQL, same GROUP BYs",
                    [
                        (
                            "SELECT programme_id, size, status, count(*) FROM vouchers_booklet "
                            "WHERE holder_id = %s GROUP BY 1, 2, 3",
                            [org.pk],
                        ),
                        (
                            "SELECT date_trunc('month', assigned_at AT TIME ZONE 'Europe/Paris'), "
                            "count(*), sum(size) FROM vouchers_booklet WHERE holder_id = %s "
                            "AND assigned_at >= %s AND assigned_at < %s GROUP BY 1",
                            [org.pk, period.start, after],
                        ),
                        (
                            "SELECT assigned_by_id, count(*), sum(size) FROM vouchers_booklet "
                            "WHERE holder_id = %s AND assigned_at >= %s AND assigned_at < %s "
                            "GROUP BY 1",
                            [org.pk, period.start, after],
                        ),
                    ],
                )
            ]
        else:
            period, after = _period()
            baselines = [
                (
                    "raw SQL, same GROUP BYs",
                    [
                        (
                            "SELECT date_trunc('month', r.created_at AT TIME ZONE "
                            "'Europe/Paris'), r.service_id, count(*), sum(l.value_cents) "
                            "FROM redemption_redemptionline l JOIN redemption_redemption r "
                            "ON r.id = l.redemption_id WHERE r.provider_id = %s AND l.live "
                            "AND r.status = 'active' AND r.created_at >= %s "
                            "AND r.created_at < %s GROUP BY 1, 2",
                            [org.pk, period.start, after],
                        ),
                        (
                            "SELECT p.status, b.period_end, sum(p.amount_cents) FROM "
                            "redemption_payout p JOIN redemption_settlementbatch b "
                            "ON b.id = p.batch_id WHERE p.provider_id = %s GROUP BY 1, 2",
                            [org.pk],
                        ),
                    ],
                )
            ]
        for index, (name, statements) in enumerate(baselines):
            base_median, _base_max = _time(_sql(statements), args.runs)
            rows.append(
                (
                    role if index == 0 else "",
                    f"{median:.0f}" if index == 0 else "",
                    f"{peak:.0f}" if index == 0 else "",
                    name,
                    f"{base_median:.1f}",
                    f"{median / base_median:.2f}x"
                    if median < base_median
                    else f"{median / base_median:.1f}x",
                    met if index == 0 else "",
                )
            )
    print(
        f"Dashboards on {counts['cheques']:,} cheques, {counts['redemption_redemptionline']:,} "
        f"redemptions; server time through Django's test client, {args.runs} runs after a "
        "warm-up; the default period (the last 12 months), no filter"
    )
    print(table(rows))
    print(
        f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; tallies rebuilt "
        f"in {refresh_s:.1f} s (every 10 minutes by Celery beat)"
    )


if __name__ == "__main__":
    main()
