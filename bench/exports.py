"""Export 1 000 000 redemptions as CSV and as XLSX through the list page, in constant memory.

    .venv/bin/python bench/exports.py [--rows 1000000]

The data set (one accredited provider, its site, agent and service, and ``--rows`` redemptions
spread over the past year) is seeded once with ``INSERT … SELECT … FROM generate_series`` in the
database ``aptic_bench_exports`` (or DATABASE_URL) and reused; a marker organisation records its
size.

Each format runs in a fresh process, so that its peak resident memory (``ru_maxrss``) is its own:

* Aptic: ``GET /encaissements/?export=csv|xlsx`` through the Django test client (the whole
  middleware stack, the provider signed in), the response read chunk by chunk and dropped;
* the raw limit, in the same process: for CSV, PostgreSQL's ``COPY (the same SELECT) TO STDOUT``
  read through psycopg; for XLSX, the same rows from a server-side cursor appended as plain
  tuples to an openpyxl write-only workbook (no formats).

Peak RSS is reported as measured and as growth over the process after Django start-up and a
first request: a whole-table load of 1 000 000 model instances would take gigabytes. The CPU
time is this process's own (PostgreSQL's is not in it): on a shared machine it moves much less
than the wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import django_on_postgres, table

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "aptic_bench_exports"
MARKER = "bench-exports"

RAW_SELECT = """
    SELECT r.id, r.created_at, s.name, c.name, u.full_name, r.cheque_count, r.amount_cents,
           r.status, r.cancelled_at
    FROM redemption_redemption r
    LEFT JOIN orgs_accreditationsite s ON s.id = r.site_id
    JOIN orgs_servicecategory c ON c.id = r.service_id
    JOIN orgs_user u ON u.id = r.agent_id
    WHERE r.provider_id = {provider}
    ORDER BY r.created_at DESC, r.id DESC
"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _siret(n: int) -> str:
    from stdnum import luhn

    siren = f"6{n % 10**7:07d}"
    siren += luhn.calc_check_digit(siren)
    siret = siren + "0001"
    return siret + luhn.calc_check_digit(siret)


def _seed(rows: int) -> None:
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from orgs.models import (
        Accreditation,
        AccreditationSite,
        AccreditationStatus,
        BankStatus,
        MemberRole,
        Membership,
        Organisation,
        ServiceCategory,
        User,
    )

    slug = f"{MARKER}-{rows}"
    if Organisation.objects.filter(slug=slug).exists():
        return
    print(f"Seeding {rows:,} redemptions …", flush=True)
    started = time.perf_counter()
    with transaction.atomic():
        provider = Organisation.objects.create(
            name=f"Lieu bench exports {rows}",
            slug=slug,
            is_funder=False,
            is_provider=True,
            siret=_siret(rows),
            address="1 rue du Banc",
            postcode="33000",
            city="Bordeaux",
            departement="33",
        )
        accreditation = Accreditation.objects.create(
            organisation=provider,
            status=AccreditationStatus.APPROVED,
            valid_until=timezone.localdate() + timedelta(days=365),
            siret=provider.siret,
            legal_name=provider.name,
            iban="FR7630006000011234567890189",
            bic="AGRIFRPP",
            account_holder=provider.name,
            bank_status=BankStatus.VERIFIED,
        )
        site = AccreditationSite.objects.create(
            accreditation=accreditation,
            name="Atelier du Banc",
            address="1 rue du Banc",
            postcode="33000",
            city="Bordeaux",
            departement="33",
            is_approved=True,
        )
        service, _ = ServiceCategory.objects.get_or_create(
            slug="bench-exports", defaults={"name": "Initiation au numérique"}
        )
        agent = User.objects.create_user(f"{slug}@example.org", None, full_name="Léa Fontaine")
        Membership.objects.create(user=agent, organisation=provider, role=MemberRole.ADMIN)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO redemption_redemption
                    (provider_id, site_id, agent_id, service_id, amount_cents, cheque_count,
                     status, created_at, cancelled_at, request_fingerprint)
                SELECT %s, %s, %s, %s, 1000 * (1 + n %% 3), 1 + n %% 3,
                       CASE WHEN n %% 50 = 0 THEN 'cancelled' ELSE 'active' END,
                       now() - (n * interval '31 seconds'),
                       CASE WHEN n %% 50 = 0 THEN now() - (n * interval '31 seconds')
                            + interval '1 hour' END,
                       ''
                FROM generate_series(1, %s) AS n
                """,
                [provider.pk, site.pk, agent.pk, service.pk, rows],
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE redemption_redemption")
    print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)


def _measure(fmt: str, rows: int) -> dict:
    """In this (fresh) process: Aptic's export, then the raw limit, with peak RSS after each."""
    from django.db import connection
    from django.test import Client

    from orgs.models import Membership

    membership = Membership.objects.select_related("user", "organisation").get(
        organisation__slug=f"{MARKER}-{rows}"
    )
    client = Client()
    client.force_login(membership.user)
    session = client.session
    session["membership_id"] = membership.pk
    session.save()
    # Production settings redirect plain HTTP: the requests say they came over HTTPS.
    warm = client.get("/encaissements/", secure=True)  # templates, caches
    assert warm.status_code == 200, warm.status_code
    baseline = _rss_mb()

    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.get("/encaissements/", {"export": fmt}, secure=True)
    assert response.status_code == 200, response.status_code
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        if fmt == "csv":
            lines += chunk.count(b"\n")
    response.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    aptic_peak = _rss_mb()
    if fmt == "xlsx":
        lines = rows + 1  # checked below on a sample, not by loading a million rows back

    select = RAW_SELECT.format(provider=membership.organisation_id)
    connection.ensure_connection()  # the request closed Django's connection when it finished
    raw_started, raw_cpu_started = time.perf_counter(), time.process_time()
    raw_rows = 0
    if fmt == "csv":
        raw = connection.connection  # psycopg 3
        with raw.cursor() as cursor:
            copy_sql = f"COPY ({select}) TO STDOUT WITH (FORMAT csv, DELIMITER ';', HEADER)"
            with cursor.copy(copy_sql) as copy:
                for block in copy:
                    raw_rows += bytes(block).count(b"\n")
        raw_rows -= 1
    else:
        from openpyxl import Workbook

        workbook = Workbook(write_only=True)
        sheet = workbook.create_sheet("raw")
        from django.db import transaction

        with transaction.atomic(), connection.connection.cursor(name="bench_raw") as cursor:
            cursor.itersize = 2000
            cursor.execute(select)
            for row in cursor:
                # Excel has no time zones: the two datetimes lose theirs, as in Aptic's export.
                created, cancelled = row[1], row[8]
                sheet.append(
                    (
                        row[0],
                        created.replace(tzinfo=None),
                        *row[2:8],
                        cancelled.replace(tzinfo=None) if cancelled else None,
                    )
                )
                raw_rows += 1
        with tempfile.TemporaryFile() as handle:
            workbook.save(handle)
    raw_seconds, raw_cpu = time.perf_counter() - raw_started, time.process_time() - raw_cpu_started
    return {
        "format": fmt,
        "rows": lines - 1,
        "bytes": size,
        "seconds": seconds,
        "cpu": cpu,
        "baseline_mb": baseline,
        "peak_mb": aptic_peak,
        "raw_rows": raw_rows,
        "raw_seconds": raw_seconds,
        "raw_cpu": raw_cpu,
        "raw_peak_mb": _rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["csv", "xlsx"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    os.environ.setdefault("STATIC_MANIFEST", "0")  # no collectstatic for a bench
    django_on_postgres(DATABASE)
    if args.child:
        print(json.dumps(_measure(args.child, args.rows)))
        return
    _seed(args.rows)
    results = []
    for fmt in ("csv", "xlsx"):
        print(f"Exporting {args.rows:,} rows as {fmt.upper()} …", flush=True)
        child = subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--child", fmt],
            check=False,
            capture_output=True,
            text=True,
        )
        if child.returncode:
            sys.exit(child.stderr)
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    lines = [
        (
            "format",
            "rows",
            "Aptic",
            "rows/s",
            "peak RSS (growth)",
            "raw limit",
            "raw rows/s",
            "ratio",
        )
    ]
    for r in results:
        assert r["rows"] == args.rows == r["raw_rows"], r
        lines.append(
            (
                r["format"].upper(),
                f"{r['rows']:,}",
                f"{r['seconds']:.1f} s, CPU {r['cpu']:.1f} s ({r['bytes'] / 1e6:.0f} MB)",
                f"{r['rows'] / r['seconds']:,.0f}",
                f"{r['peak_mb']:.0f} MB (+{r['peak_mb'] - r['baseline_mb']:.0f} MB)",
                f"{r['raw_seconds']:.1f} s, CPU {r['raw_cpu']:.1f} s",
                f"{r['raw_rows'] / r['raw_seconds']:,.0f}",
                f"{(r['rows'] / r['seconds']) / (r['raw_rows'] / r['raw_seconds']):.2f}",
            )
        )
    print(table(lines))


if __name__ == "__main__":
    main()
