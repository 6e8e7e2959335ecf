"""Settle 1 000 000 redemptions over 2 000 providers, against the raw SQL of the same work.

    .venv/bin/python bench/settle.py [--redemptions 1000000] [--providers 2000]

The data set (providers with approved accreditations, verified bank details and distinct valid
IBANs; one order of booklets of 10 issued through ``order_issue``; one redemption of one cheque
each, dated in the month before the day it is built) is built once in the database
``aptic_bench`` (or DATABASE_URL) and reused; a marker organisation records its size. Redemptions
and their lines go in with psycopg COPY, and their cheques and booklets are set ``redeemed`` /
``assigned`` in bulk SQL: this bench measures settlement, not redemption.

Each run resets the bench period's payouts, holds and batch, then times, on the same data:

* the service: ``batch_create``, ``batch_compute`` (in-process; the ``compute_batch`` task that
  ``batch_create`` queues is a thin wrapper around it), ``batch_approve`` by a second operator,
  ``batch_export`` (the pain.001 file built by sepaxml and validated against its XSD). The
  per-payout statement tasks queued on commit are replaced by a no-op: statements are a separate,
  asynchronous job;
* the raw SQL of the same work, in one transaction: ``GROUP BY provider_id`` over the unsettled
  redemptions, one INSERT of the payouts, ONE ``UPDATE … FROM redemption_payout`` assigning every
  redemption its payout, COMMIT (then reset).

Before each timed part the redemptions table is rewritten in id order (CLUSTER: the layout before
a first settlement), vacuumed, and a CHECKPOINT taken, so both parts start from the same state.
Absolute times swing with the disk and with whatever else runs on the machine: compare the ratio,
measured in the same run, and the CPU columns (this process's, and the PostgreSQL backend's when
the server runs on this machine), which move much less with the load.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from _setup import django_on_postgres, table

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MARKER_SLUG = "bench-settle"
CHEQUE_VALUE = 1000
TARGET_SECONDS = 60
TARGET_RATIO = 3.0


def _siret(prefix: str, n: int) -> str:
    from stdnum import luhn

    siren = f"{prefix}{n:07d}"
    siren += luhn.calc_check_digit(siren)
    siret = siren + "0001"
    return siret + luhn.calc_check_digit(siret)


def _period():
    """The previous month (Paris time): its last day, and its first and last instants."""
    from django.utils import timezone

    from redemption.services.settlement import _cutoff, previous_month_end

    period_end = previous_month_end()
    start = datetime.combine(
        period_end.replace(day=1), datetime.min.time(), tzinfo=timezone.get_current_timezone()
    )
    return period_end, start, _cutoff(period_end)


def _build(redemptions: int, providers: int) -> None:
    """The data set, in one transaction: the marker exists only if everything is there."""
    from django.db import connection, transaction
    from django.utils import timezone
    from schwifty import IBAN

    import vouchers.tasks
    from orgs.audit import Actor
    from orgs.models import (
        Accreditation,
        AccreditationSite,
        AccreditationStatus,
        BankStatus,
        MemberRole,
        Membership,
        Organisation,
        User,
    )
    from vouchers.models import Beneficiary, Booklet, ServiceCategory
    from vouchers.services.issuance import order_issue
    from vouchers.services.orders import order_approve, order_create, order_submit
    from vouchers.services.programmes import programme_create

    booklets = -(-redemptions // 10)
    _period_end, start, cutoff = _period()
    span = (cutoff - start).total_seconds() - 1
    print(f"Building the data set: {providers:,} providers, {redemptions:,} redemptions …")
    started = time.perf_counter()
    vouchers.tasks.issue_order.delay = lambda order_id: None  # issued below, in this process
    vouchers.tasks.start_printing.delay = lambda order_id: None
    with transaction.atomic():
        operator_org = Organisation.objects.filter(is_operator=True).order_by("pk").first()
        if operator_org is None:
            operator_org = Organisation.objects.create(
                name="Médias-Cité (bench)",
                slug="ops-bench",
                is_operator=True,
                siret="73282932000074",
                address="-",
                postcode="33130",
                city="Bègles",
                departement="33",
            )
        funder_org = Organisation.objects.create(
            name=f"Bench settlement {redemptions}/{providers}",
            slug=MARKER_SLUG,
            is_funder=True,
            siret=_siret("7", 1),
            address="-",
            postcode="33000",
            city="Bordeaux",
            departement="33",
        )
        users = {
            name: User.objects.create_user(f"bench-settle-{name}@example.org", None)
            for name in ("operator", "approver", "funder", "agent")
        }
        operator = Membership.objects.create(
            user=users["operator"], organisation=operator_org, role=MemberRole.ADMIN
        )
        Membership.objects.create(
            user=users["approver"], organisation=operator_org, role=MemberRole.ADMIN
        )
        funder = Membership.objects.create(
            user=users["funder"], organisation=funder_org, role=MemberRole.ADMIN
        )
        category, _ = ServiceCategory.objects.get_or_create(
            slug="bench-settle", defaults={"name": "Bench settlement"}
        )
        programme = programme_create(
            actor=Actor(user=users["operator"], membership=operator),
            funder=funder_org,
            categories=[category],
            name=f"Bench settlement {redemptions}/{providers}",
            cheque_value_cents=CHEQUE_VALUE,
            offers_booklet_of_5=False,
            offers_booklet_of_10=True,
            validity_kind="fixed_date",
            valid_until=timezone.localdate() + timedelta(days=365),
            max_booklets_per_order=booklets,
        )
        funder_actor = Actor(user=users["funder"], membership=funder)
        order = order_create(actor=funder_actor, programme=programme, lines={10: booklets})
        order_submit(actor=funder_actor, order=order)
        order_approve(
            actor=Actor(user=users["operator"], membership=operator),
            order=order,
            payment_reference="BENCH-SETTLE",
            payment_received_on=timezone.localdate(),
        )
        order_issue(order_id=order.pk)
        issued = time.perf_counter() - started
        print(f"  {booklets:,} booklets issued by order_issue: {issued:.1f} s")

        orgs = Organisation.objects.bulk_create(
            Organisation(
                name=f"Lieu bench {n:04d}",
                slug=f"{MARKER_SLUG}-p{n:04d}",
                is_provider=True,
                siret=_siret("8", n),
                address="1 rue du Banc",
                postcode="33000",
                city="Bordeaux",
                departement="33",
            )
            for n in range(1, providers + 1)
        )
        accreditations = Accreditation.objects.bulk_create(
            Accreditation(
                organisation=org,
                status=AccreditationStatus.APPROVED,
                valid_until=timezone.localdate() + timedelta(days=365),
                siret=org.siret,
                legal_name=org.name,
                iban=IBAN.generate("FR", bank_code="30006", account_code=f"{n:011d}").compact,
                bic="AGRIFRPP",
                account_holder=org.name,
                bank_status=BankStatus.VERIFIED,
                bank_verified_at=timezone.now(),
            )
            for n, org in enumerate(orgs, start=1)
        )
        sites = AccreditationSite.objects.bulk_create(
            AccreditationSite(
                accreditation=accreditation,
                name=f"Atelier {accreditation.legal_name}",
                address="1 rue du Banc",
                postcode="33000",
                city="Bordeaux",
                departement="33",
                is_approved=True,
            )
            for accreditation in accreditations
        )
        AccreditationSite.services.through.objects.bulk_create(
            AccreditationSite.services.through(accreditationsite=site, servicecategory=category)
            for site in sites
        )

        # Handed out (one pseudonymous beneficiary for all: settlement never looks at it) and
        # redeemed, in bulk SQL.
        beneficiary = Beneficiary.objects.create(
            reference="BENCHSETTLE00001",
            distributor=funder_org,
            age_bracket="60-74",
            postcode="33000",
            dedup_key="bench-settle",
        )
        raw = connection.cursor().cursor
        raw.execute(
            "UPDATE vouchers_booklet SET status = 'assigned', beneficiary_id = %s, "
            "assigned_at = %s WHERE order_id = %s",
            [beneficiary.pk, start, order.pk],
        )
        raw.execute(
            "SELECT c.id FROM vouchers_cheque c JOIN vouchers_booklet b ON b.id = c.booklet_id "
            "WHERE b.order_id = %s ORDER BY c.id LIMIT %s",
            [order.pk, redemptions],
        )
        cheque_ids = [row[0] for row in raw.fetchall()]
        raw.execute(
            "UPDATE vouchers_cheque SET status = 'redeemed' WHERE id = ANY(%s)", [cheque_ids]
        )
        raw.execute(
            "SELECT nextval(pg_get_serial_sequence('redemption_redemption', 'id')) "
            "FROM generate_series(1, %s)",
            [redemptions],
        )
        redemption_ids = [row[0] for row in raw.fetchall()]
        provider_ids = [org.pk for org in orgs]
        site_ids = [site.pk for site in sites]
        agent_id = users["agent"].pk
        with raw.copy(
            "COPY redemption_redemption (id, provider_id, site_id, agent_id, service_id, "
            "amount_cents, cheque_count, status, created_at, request_fingerprint) FROM STDIN"
        ) as copy:
            for index, redemption_id in enumerate(redemption_ids):
                slot = index % providers
                copy.write_row(
                    (
                        redemption_id,
                        provider_ids[slot],
                        site_ids[slot],
                        agent_id,
                        category.pk,
                        CHEQUE_VALUE,
                        1,
                        "active",
                        start + timedelta(seconds=span * index / redemptions),
                        "",
                    )
                )
        with raw.copy(
            "COPY redemption_redemptionline (redemption_id, cheque_id, value_cents, live) "
            "FROM STDIN"
        ) as copy:
            for redemption_id, cheque_id in zip(redemption_ids, cheque_ids, strict=True):
                copy.write_row((redemption_id, cheque_id, CHEQUE_VALUE, True))
    assert Booklet.objects.filter(order=order, status="assigned").count() == booklets
    cursor = connection.cursor()
    for name in ("redemption_redemption", "redemption_redemptionline", "vouchers_cheque"):
        cursor.execute(f"VACUUM ANALYZE {name}")
    print(f"  data set ready in {time.perf_counter() - started:.1f} s")


def _reset(period_end, *, pristine: bool = True) -> None:
    """Forget the bench period's batch: payouts unassigned, then payouts, holds, batch (PROTECT).

    ``pristine``: the redemptions table is then rewritten in id order (CLUSTER), as it is before
    its first settlement (rows in the order they were redeemed, every provider interleaved), with
    fresh statistics and dirty pages flushed, so each timed part starts from the same state.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE redemption_redemption SET payout_id = NULL WHERE payout_id IN ("
            " SELECT p.id FROM redemption_payout p"
            " JOIN redemption_settlementbatch b ON b.id = p.batch_id WHERE b.period_end = %s)",
            [period_end],
        )
        for table_name in ("redemption_payout", "redemption_heldprovider"):
            cursor.execute(
                f"DELETE FROM {table_name} WHERE batch_id IN ("
                " SELECT id FROM redemption_settlementbatch WHERE period_end = %s)",
                [period_end],
            )
        cursor.execute("DELETE FROM redemption_settlementbatch WHERE period_end = %s", [period_end])
        if pristine:
            cursor.execute("CLUSTER redemption_redemption USING redemption_redemption_pkey")
            cursor.execute("VACUUM ANALYZE redemption_redemption")
            cursor.execute("VACUUM ANALYZE redemption_payout")
            cursor.execute("CHECKPOINT")


class Clock:
    """Laps of wall time, of this process's CPU time and of the PostgreSQL backend's CPU time.

    The backend's is read from /proc when the server runs on this machine ("-" otherwise): CPU
    seconds move much less than wall time with whatever else the machine is running.
    """

    def __init__(self) -> None:
        self.laps: list[tuple[str, float, float, float]] = []
        self.start()

    @staticmethod
    def _backend_cpu() -> float:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            proc = Path(f"/proc/{cursor.fetchone()[0]}")
        try:
            if proc.joinpath("comm").read_text().strip() != "postgres":
                return math.nan
            fields = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _now(self) -> tuple[float, float, float]:
        return time.perf_counter(), time.process_time(), self._backend_cpu()

    def start(self) -> None:
        self._mark = self._now()

    def lap(self, name: str) -> None:
        now = self._now()
        wall, python, database = (b - a for a, b in zip(self._mark, now, strict=True))
        self.laps.append((name, wall, python, database))
        self._mark = self._now()

    def timed(self, name: str, call):
        self.start()
        result = call()
        self.lap(name)
        return result

    def total(self, column: int) -> float:
        return sum(lap[column] for lap in self.laps)


def _service(period_end, operator, approver) -> tuple[Clock, object]:
    from django.utils import timezone

    import redemption.tasks
    from redemption.services.settlement import (
        batch_approve,
        batch_compute,
        batch_create,
        batch_export,
    )

    queued: list[int] = []
    # batch_create queues compute_batch on commit; it is run below, in-process, and timed on its
    # own. The statement PDFs queued when the batch is computed are a separate job: no-op here.
    redemption.tasks.compute_batch.delay = queued.append
    redemption.tasks.render_statement.delay = lambda payout_id: None
    clock = Clock()
    batch = clock.timed("batch_create", lambda: batch_create(actor=operator, period_end=period_end))
    assert queued == [batch.pk], queued
    batch = clock.timed("batch_compute", lambda: batch_compute(batch_id=batch.pk))
    batch = clock.timed("batch_approve", lambda: batch_approve(actor=approver, batch=batch))
    batch = clock.timed(
        "batch_export (sepaxml + XSD)",
        lambda: batch_export(
            actor=approver, batch=batch, execution_date=timezone.localdate() + timedelta(days=1)
        ),
    )
    return clock, batch


def _raw(period_end, cutoff) -> tuple[Clock, dict[int, tuple[int, int]]]:
    """The same work in raw SQL, one transaction, committed (the caller resets afterwards)."""
    from django.db import connection, transaction
    from django.utils import timezone

    raw = connection.cursor().cursor
    clock = Clock()
    with transaction.atomic():
        raw.execute(
            "INSERT INTO redemption_settlementbatch (reference, period_end, status, created_at, "
            "sepa_file, sepa_message_id, total_cents, payout_count, redemption_count) "
            "VALUES (%s, %s, 'computing', %s, '', '', 0, 0, 0) RETURNING id",
            [f"RAW-{period_end:%Y-%m-%d}", period_end, timezone.now()],
        )
        batch_id = raw.fetchone()[0]
        raw.execute(
            "SELECT provider_id, sum(amount_cents), count(*) FROM redemption_redemption "
            "WHERE status = 'active' AND payout_id IS NULL AND created_at < %s "
            "GROUP BY provider_id",
            [cutoff],
        )
        groups = {row[0]: (row[1], row[2]) for row in raw.fetchall()}
        clock.lap("SELECT … GROUP BY provider_id")
        ids = list(groups)
        raw.execute(
            "INSERT INTO redemption_payout (batch_id, provider_id, amount_cents, "
            "redemption_count, iban, bic, account_holder, end_to_end_id, status, "
            "rejection_reason, statement_pdf, statement_csv, created_at) "
            "SELECT %s, g.provider_id, g.amount, g.count, a.iban, a.bic, a.account_holder, "
            "'RAW-' || %s || '-' || g.provider_id, 'pending', '', '', '', now() "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::int[]) AS g(provider_id, amount, count) "
            "JOIN orgs_accreditation a ON a.organisation_id = g.provider_id",
            [
                batch_id,
                batch_id,
                ids,
                [groups[i][0] for i in ids],
                [groups[i][1] for i in ids],
            ],
        )
        clock.lap(f"INSERT {raw.rowcount:,} payouts")
        raw.execute(
            "UPDATE redemption_redemption r SET payout_id = p.id FROM redemption_payout p "
            "WHERE p.provider_id = r.provider_id AND p.batch_id = %s AND r.payout_id IS NULL "
            "AND r.status = 'active' AND r.created_at < %s",
            [batch_id, cutoff],
        )
        clock.lap(f"ONE UPDATE of {raw.rowcount:,} redemptions")
    clock.lap("COMMIT")
    return clock, groups


def _check(batch, groups: dict[int, tuple[int, int]]) -> str:
    """The computed batch and its SEPA file against the raw GROUP BY."""
    import xml.etree.ElementTree as ET

    from redemption.models import Payout

    ns = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
    payouts = {
        provider: (amount, count)
        for provider, amount, count in Payout.objects.filter(batch=batch).values_list(
            "provider_id", "amount_cents", "redemption_count"
        )
    }
    assert payouts == groups, "payouts differ from the raw GROUP BY"
    assert batch.total_cents == sum(a for a, _ in groups.values())
    assert batch.redemption_count == sum(c for _, c in groups.values())
    with batch.sepa_file.open("rb") as handle:
        document = handle.read()
    root = ET.fromstring(document)  # noqa: S314 - our own file
    header = root.find("p:CstmrCdtTrfInitn/p:GrpHdr", ns)
    assert int(header.find("p:NbOfTxs", ns).text) == len(groups)
    assert header.find("p:CtrlSum", ns).text == f"{batch.total_cents / 100:.2f}"
    return (
        f"checked: {len(payouts):,} payouts equal the raw GROUP BY; SEPA file "
        f"{len(document) / 1e6:.1f} MB, {len(groups):,} transfers, "
        f"CtrlSum {header.find('p:CtrlSum', ns).text} EUR, XSD-valid (sepaxml)"
    )


def _expected(cutoff) -> dict[int, tuple[int, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT provider_id, sum(amount_cents), count(*) FROM redemption_redemption "
            "WHERE status = 'active' AND payout_id IS NULL AND created_at < %s "
            "GROUP BY provider_id",
            [cutoff],
        )
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redemptions", type=int, default=1_000_000)
    parser.add_argument("--providers", type=int, default=2_000)
    args = parser.parse_args()
    os.environ.setdefault("MEDIA_ROOT", str(OUT / "media"))
    os.environ.setdefault("PRIVATE_MEDIA_ROOT", str(OUT / "private-media"))
    django_on_postgres()

    from orgs.audit import Actor
    from orgs.models import Membership, Organisation

    marker = Organisation.objects.filter(slug=MARKER_SLUG).first()
    expected_name = f"Bench settlement {args.redemptions}/{args.providers}"
    if marker is None:
        _build(args.redemptions, args.providers)
    elif marker.name != expected_name:
        raise SystemExit(
            f"The database holds another settlement data set ({marker.name!r}): use the same "
            "--redemptions/--providers, or another DATABASE_URL."
        )
    else:
        print(f"Reusing the data set ({marker.name}).")

    period_end, _start, cutoff = _period()
    operator = Membership.objects.get(user__email="bench-settle-operator@example.org")
    approver = Membership.objects.get(user__email="bench-settle-approver@example.org")

    _reset(period_end)
    expected = _expected(cutoff)
    redemption_count = sum(count for _, count in expected.values())
    service, batch = _service(
        period_end,
        Actor(user=operator.user, membership=operator),
        Actor(user=approver.user, membership=approver),
    )
    checked = _check(batch, expected)
    sepa_path = Path(batch.sepa_file.path)
    _reset(period_end)
    sepa_path.unlink(missing_ok=True)
    raw, groups = _raw(period_end, cutoff)
    assert groups == expected, "the raw GROUP BY differs from the expected sums"
    _reset(period_end, pristine=False)

    def cells(run: str, name: str, wall: float, python: float, database: float):
        db = "-" if math.isnan(database) else f"{database:.2f}"
        return (run, name, f"{wall:.2f}", f"{python:.2f}", db)

    rows = [("run", "phase", "wall s", "Python CPU s", "PostgreSQL CPU s")]
    rows += [cells("service", *lap) for lap in service.laps]
    rows.append(
        cells("service", "TOTAL: batch with its SEPA file", *(service.total(i) for i in (1, 2, 3)))
    )
    rows += [cells("raw SQL", *lap) for lap in raw.laps]
    rows.append(cells("raw SQL", "TOTAL: one transaction", *(raw.total(i) for i in (1, 2, 3))))
    print(
        f"Settlement of {redemption_count:,} redemptions over {len(expected):,} providers "
        f"(period ending {period_end}), PostgreSQL"
    )
    print(
        "Redemptions and lines inserted with COPY, cheques set redeemed in bulk SQL: this bench "
        "measures settlement, not redemption. Statement tasks queued on commit: no-op here."
    )
    print(table(rows))
    print(checked)
    service_seconds, raw_seconds = service.total(1), raw.total(1)
    ratio = service_seconds / raw_seconds
    compute = next(lap for lap in service.laps if lap[0] == "batch_compute")
    print(
        f"whole batch: {service_seconds:.1f} s (target < {TARGET_SECONDS} s: "
        f"{'met' if service_seconds < TARGET_SECONDS else 'NOT met'})"
    )
    print(
        f"ratio service / raw SQL, wall: {ratio:.2f}  (target <= {TARGET_RATIO:.0f}x: "
        f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}); batch_compute alone: "
        f"{compute[1] / raw_seconds:.2f}x"
    )
    service_cpu = service.total(2) + service.total(3)
    raw_cpu = raw.total(2) + raw.total(3)
    if not math.isnan(service_cpu + raw_cpu):
        print(
            f"ratio service / raw SQL, CPU (Python + PostgreSQL): {service_cpu / raw_cpu:.2f}  "
            f"({service_cpu:.1f} s / {raw_cpu:.1f} s); load average now "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )


if __name__ == "__main__":
    main()
