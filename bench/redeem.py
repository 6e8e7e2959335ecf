"""Redeem cheques over HTTP under gunicorn, against pgbench running the same SQL transaction.

    .venv/bin/python bench/redeem.py [--seconds 30] [--clients 32] [--get-seconds 15]
                                     [--workers 4] [--worker-class sync] [--threads 4]

In one run, on the PostgreSQL database ``aptic_bench`` (created and migrated if needed):

1. pgbench, 32 clients: the redemption as raw SQL (conditional UPDATE of the cheque by code,
   INSERT of the redemption and of its line), on a pool of active cheques reserved for it and put
   back afterwards (its redemptions deleted, its cheques made active again), so the data set is
   not consumed by the raw run.
2. gunicorn with production settings (DEBUG off, Redis cache, rate limits and lock-out raised
   through the environment) and wrk (bench/redeem_wrk.lua, 2 threads), 32 connections:
   ``POST /api/v1/redemptions/``, each request a distinct handed-out cheque (each wrk thread
   takes codes from its own slice), the tokens of 32 accredited provider organisations in
   turn. Default server: ``--worker-class sync --workers 4``, the best of sync 3, 4, 5, 6, 8
   and gthread 2x8, 3x4, 4x4, 6x2 on this 2-core machine: the same throughput as the threaded
   workers or more, and a p99 of about 90 ms against about 220 ms (a threaded worker's requests
   share its interpreter lock, and kept-alive connections stay unevenly spread over workers).
   Sync workers close every connection; wrk opens the next one.
3. The checks: no cheque redeemed twice, every 201 is one redemption of one cheque.
4. The floor, same server, same connections and duration: pgbench's own transaction behind a
   bare Django view (``POST /api/v1/bench/floor/``, bench/bench_urls.py), on pgbench's pool
   (put back afterwards). What it reaches is the most any Django endpoint can reach here; the
   API's figure is also printed as a fraction of it.
5. ``GET /api/v1/cheques/<code>/`` against a bare Django JSON view doing the same read in the
   same server (bench/bench_urls.py).
6. Where the check's CPU goes (bench/check_parts.py, in process, the server's settings): the
   token read, the rate-limit round trip and the cheque read each timed alone, against what the
   1.5x target leaves over the bare view.

Every request carries an API token, the bare views' too (they ignore it), so all of them go
through the same WSGI handler and middleware stack (aptic.handlers).

The data set (operator, funder, programme, 32 accredited providers, handed-out booklets) is made
through the services once and reused (keyed by the "bench-redeem" marker); each run takes
cheques still active and issues another order when too few remain. Absolute figures move a lot
on this machine: compare only the ratios printed, measured in the same run. The CPU lines say
who used the 2 cores during each phase ("other processes": anything else on the machine); the
gunicorn CPU per request is steadier than rates when the machine is shared.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from _setup import ROOT, django_on_postgres, table

MARKER = "bench-redeem"
BENCH = ROOT / "bench"
LUA = BENCH / "redeem_wrk.lua"
BOOKLET_SIZE = 10
ORDER_BOOKLETS = 10_000  # 100 000 cheques per order
SAMPLE_HANDOUTS = 20  # booklets handed out through booklet_assign; the rest by bulk SQL
PROVIDERS = 32
PG_POOL_MIN = 300_000
TARGET_RATIO = 0.25
TARGET_P99_MS = 150.0
TARGET_GET_COST = 1.5
REDIS_URL = "redis://127.0.0.1:6379/9"

PGBENCH_SCRIPT = """\
BEGIN;
UPDATE vouchers_cheque SET status = 'redeemed'
 WHERE code = (SELECT code FROM bench_redeem_pgpool
                WHERE n = (SELECT nextval('bench_redeem_pgseq')))
   AND status = 'active' AND expires_on >= CURRENT_DATE
 RETURNING id AS cheque_id, value_cents \\gset
INSERT INTO redemption_redemption (provider_id, site_id, agent_id, service_id, amount_cents,
  cheque_count, status, created_at, idempotency_key, request_fingerprint)
 VALUES ({provider}, NULL, {agent}, {service}, :value_cents, 1, 'active', now(), NULL, '')
 RETURNING id AS redemption_id \\gset
INSERT INTO redemption_redemptionline (redemption_id, cheque_id, value_cents, live)
 VALUES (:redemption_id, :cheque_id, :value_cents, true);
COMMIT;
"""


# --- tools ------------------------------------------------------------------------------------


def need_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is missing (Debian package 'wrk'); install it as root, then run again.")
    print("Installing wrk (apt-get install -y wrk)…", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
    if subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet).returncode:
        subprocess.run(["apt-get", "update"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, **quiet)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is missing and could not be installed with apt-get.")
    return found


def need_pgbench() -> str:
    found = shutil.which("pgbench") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"), reverse=True)), None
    )
    if not found:
        sys.exit("pgbench is missing (Debian: postgresql-client / postgresql-contrib).")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# --- CPU accounting (from /proc: who used the 2 cores during a phase) ---------------------------

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    comm: str
    ppid: int
    started: int  # clock ticks after boot: tells a process from a later one with its pid
    used: int  # its own CPU ticks
    reaped: int  # CPU ticks of its children that ended and were waited for


def _proc_stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw.rsplit(")", 1)[1].split()  # fields[0] is the state, field 3 of proc(5)
    return ProcStat(
        comm=comm,
        ppid=int(fields[1]),
        started=int(fields[19]),
        used=int(fields[11]) + int(fields[12]),
        reaped=int(fields[13]) + int(fields[14]),
    )


def _processes() -> dict[int, ProcStat]:
    found: dict[int, ProcStat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat:
                found[int(entry)] = stat
    return found


def cpu_snapshot(server_pid: int | None = None) -> dict:
    line = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in line]
    idle = values[3] + values[4]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "busy": sum(values) - idle,
        "total": sum(values),
        "procs": _processes(),
        "server_pid": server_pid,
        "children": children.ru_utime + children.ru_stime,
        "at": time.perf_counter(),
    }


def postgres_settled(before: dict, timeout: float = 5.0) -> None:
    """Wait until the backends of connections opened during a phase have ended (pgbench's), so
    that their CPU is in the postmaster's ended-children ticks when the phase's snapshot is read."""
    expected = sum(1 for stat in before["procs"].values() if stat.comm == "postgres")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for stat in _processes().values() if stat.comm == "postgres") <= expected:
            return
        time.sleep(0.05)


def cpu_use(before: dict, after: dict) -> dict[str, float]:
    """Cores used on average during the phase: all, gunicorn workers, postgres, load generator.

    A process born during the phase counts whole. One that ended during it (a pgbench
    connection's backend) counts through its parent's ended-children ticks, less what it had used
    before the phase, when the parent is in the group too: the postmaster is, the gunicorn master
    is not (a gunicorn worker that ended during a phase is not counted).
    """
    seconds = after["at"] - before["at"]
    cores = os.cpu_count() or 1
    total_ticks = max(after["total"] - before["total"], 1)
    busy = (after["busy"] - before["busy"]) / total_ticks * cores

    def same(stat: ProcStat, other: ProcStat | None) -> bool:
        return other is not None and other.started == stat.started

    def group(match) -> float:
        ticks, members = 0, set()
        for pid, stat in after["procs"].items():
            if match(stat):
                members.add(pid)
                earlier = before["procs"].get(pid)
                if same(stat, earlier):
                    ticks += stat.used - earlier.used + stat.reaped - earlier.reaped
                else:
                    ticks += stat.used + stat.reaped
        for pid, stat in before["procs"].items():
            ended = not same(stat, after["procs"].get(pid))
            if ended and stat.ppid in members and match(stat):
                ticks -= stat.used + stat.reaped
        return ticks / TICK / seconds

    server = before["server_pid"]
    return {
        "all": busy,
        "gunicorn": group(lambda stat: server is not None and stat.ppid == server),
        "postgres": group(lambda stat: stat.comm == "postgres"),
        "client": (after["children"] - before["children"]) / seconds,
        "seconds": seconds,
    }


def _with_others(use: dict[str, float]) -> dict[str, float]:
    use["others"] = max(0.0, use["all"] - use["gunicorn"] - use["postgres"] - use["client"])
    return use


def cpu_text(use: dict[str, float]) -> str:
    return (
        f"CPU (cores of {os.cpu_count()}): all {use['all']:.2f}, gunicorn workers "
        f"{use['gunicorn']:.2f}, postgres {use['postgres']:.2f}, load generator {use['client']:.2f}"
        f", other processes {use['others']:.2f}"
    )


# --- the data set, through the services ------------------------------------------------------


@dataclass
class World:
    programme: object
    service: object
    funder_actor: object
    operator_actor: object
    providers: list  # memberships of the 32 HTTP providers
    pg_provider: object  # membership whose redemptions pgbench writes (deleted after)
    notes: list[str]


def _siret(n: int) -> str:
    from stdnum import luhn

    siren = f"77{n:06d}"
    siren += luhn.calc_check_digit(siren)
    siret = siren + "0001"
    return siret + luhn.calc_check_digit(siret)


def _organisation(index: int, slug: str, name: str, **roles):
    from orgs.models import Organisation

    return Organisation.objects.filter(slug=slug).first() or Organisation.objects.create(
        name=name,
        slug=slug,
        siret=_siret(index),
        address="1 rue du Banc",
        postcode="33000",
        city="Bordeaux",
        departement="33",
        **roles,
    )


def _member(email: str, organisation, role: str):
    from orgs.models import Membership, User

    user = User.objects.filter(email=email).first() or User.objects.create_user(email, None)
    membership, _ = Membership.objects.get_or_create(
        user=user, organisation=organisation, defaults={"role": role}
    )
    return membership


def _accredited_provider(index: int, service, slug: str):
    from django.utils import timezone

    from orgs.models import (
        Accreditation,
        AccreditationSite,
        AccreditationStatus,
        BankStatus,
        MemberRole,
    )

    organisation = _organisation(
        index, slug, f"Atelier numérique {index:02d} (bench)", is_provider=True
    )
    valid_until = timezone.localdate() + timedelta(days=365)
    accreditation = Accreditation.objects.filter(organisation=organisation).first()
    if accreditation is None:
        accreditation = Accreditation.objects.create(
            organisation=organisation,
            status=AccreditationStatus.APPROVED,
            valid_until=valid_until,
            siret=organisation.siret,
            iban="FR7630006000011234567890189",
            bic="AGRIFRPP",
            account_holder=organisation.name,
            bank_status=BankStatus.VERIFIED,
        )
        site = AccreditationSite.objects.create(
            accreditation=accreditation,
            name=f"Atelier {index:02d}",
            address="1 rue du Banc",
            postcode="33000",
            city="Bordeaux",
            departement="33",
            is_approved=True,
        )
        site.services.set([service])
    elif accreditation.valid_until < timezone.localdate() + timedelta(days=30):
        Accreditation.objects.filter(pk=accreditation.pk).update(valid_until=valid_until)
    return _member(f"{slug}@example.org", organisation, MemberRole.AGENT)


def ensure_world() -> World:
    from django.utils import timezone

    from orgs.audit import Actor
    from orgs.models import MemberRole, ServiceCategory
    from vouchers.models import Programme
    from vouchers.services.programmes import programme_create

    notes = []
    operator_org = _organisation(900, f"{MARKER}-operator", "Médias-Cité (bench)", is_operator=True)
    funder_org = _organisation(
        901, f"{MARKER}-funder", "Département (bench)", is_funder=True, is_distributor=True
    )
    operator = _member(f"{MARKER}-operator@example.org", operator_org, MemberRole.ADMIN)
    funder = _member(f"{MARKER}-funder@example.org", funder_org, MemberRole.ADMIN)
    operator_actor = Actor(user=operator.user, membership=operator)
    funder_actor = Actor(user=funder.user, membership=funder)
    service, _ = ServiceCategory.objects.get_or_create(
        slug=MARKER, defaults={"name": "Atelier numérique (bench)"}
    )
    year = timezone.localdate().year + 1
    name = f"Bench redeem {year}"
    programme = Programme.objects.filter(funder=funder_org, name=name).first()
    if programme is None:
        programme = programme_create(
            actor=operator_actor,
            funder=funder_org,
            categories=[service],
            name=name,
            cheque_value_cents=2000,
            offers_booklet_of_5=False,
            offers_booklet_of_10=True,
            validity_kind="fixed_date",
            valid_until=date(year, 12, 31),
            departements=["33"],
            max_booklets_per_beneficiary=1,
            max_booklets_per_order=1_000_000,
        )
        notes.append(f"programme {name!r} created")
    providers = [
        _accredited_provider(i, service, f"{MARKER}-provider-{i:02d}") for i in range(PROVIDERS)
    ]
    pg_provider = _accredited_provider(PROVIDERS, service, f"{MARKER}-provider-pgbench")
    return World(programme, service, funder_actor, operator_actor, providers, pg_provider, notes)


def issue_handed_out(world: World, booklets: int) -> list[int]:
    """An order issued (COPY), allocated and handed out; returns its booklet ids.

    ``SAMPLE_HANDOUTS`` booklets go through ``booklet_assign``; the others are marked handed out
    by one bulk SQL statement (one beneficiary each, ``status='assigned'``, ``assigned_at``).
    """
    from django.db import connection, transaction
    from django.utils import timezone

    import vouchers.tasks
    from vouchers.models import Booklet, BookletStatus
    from vouchers.services.distribution import Person, booklet_assign, booklets_allocate
    from vouchers.services.issuance import order_issue
    from vouchers.services.orders import order_approve, order_create, order_submit

    vouchers.tasks.issue_order.delay = lambda order_id: None  # issued below, in this process
    vouchers.tasks.start_printing.delay = lambda order_id: None  # no PDFs for a bench

    funder = world.funder_actor
    order = order_create(actor=funder, programme=world.programme, lines={BOOKLET_SIZE: booklets})
    order_submit(actor=funder, order=order)
    order_approve(
        actor=world.operator_actor,
        order=order,
        payment_reference="BENCH",
        payment_received_on=timezone.localdate(),
    )
    order_issue(order_id=order.pk)
    numbers = Booklet.objects.filter(order=order).order_by("number")
    booklets_allocate(
        actor=funder,
        distributor=funder.organisation,
        programme=world.programme,
        first_number=numbers.values_list("number", flat=True).first(),
        last_number=numbers.reverse().values_list("number", flat=True).first(),
    )
    for booklet in numbers[:SAMPLE_HANDOUTS]:
        booklet_assign(
            actor=funder,
            booklet=booklet,
            person=Person(f"Banc{booklet.pk}", "Personne", date(1960, 1, 1)),
            age_bracket="60-74",
            postcode="33000",
        )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH todo AS (
                SELECT id FROM vouchers_booklet
                 WHERE order_id = %(order)s AND status = %(allocated)s
            ), person AS (
                INSERT INTO vouchers_beneficiary
                    (reference, distributor_id, age_bracket, postcode, gender, situation,
                     dedup_key, created_at)
                SELECT 'BB' || lpad(id::text, 12, '0'), %(distributor)s, '60-74', '33000', '', '',
                       encode(sha256(('bench-redeem-' || id)::bytea), 'hex'), now()
                FROM todo
                RETURNING id, reference
            )
            UPDATE vouchers_booklet b
               SET status = %(assigned)s, beneficiary_id = person.id, assigned_at = now(),
                   assigned_by_id = %(user)s
              FROM person
             WHERE person.reference = 'BB' || lpad(b.id::text, 12, '0')
            """,
            {
                "order": order.pk,
                "allocated": BookletStatus.ALLOCATED,
                "assigned": BookletStatus.ASSIGNED,
                "distributor": funder.organisation.pk,
                "user": funder.user.pk,
            },
        )
    return list(Booklet.objects.filter(order=order).values_list("pk", flat=True))


def ensure_pool_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_redeem_pgpool "
            "(n integer PRIMARY KEY, code varchar(13) NOT NULL UNIQUE)"
        )
        cursor.execute("CREATE SEQUENCE IF NOT EXISTS bench_redeem_pgseq")


def ensure_pg_pool(world: World, size: int) -> str:
    """Reserve ``size`` handed-out cheques for pgbench (``bench_redeem_pgpool``)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM bench_redeem_pgpool p JOIN vouchers_cheque c ON c.code = p.code "
            "WHERE c.expires_on >= CURRENT_DATE"
        )
        have = cursor.fetchone()[0]
        if have >= size:
            return f"pgbench pool: {have:,} cheques reserved (reused)"
        cursor.execute("DELETE FROM bench_redeem_pgpool")
        started = time.perf_counter()
        booklets = issue_handed_out(world, math.ceil(size / BOOKLET_SIZE))
        cursor.execute(
            "INSERT INTO bench_redeem_pgpool (n, code) "
            "SELECT row_number() OVER (ORDER BY id), code FROM vouchers_cheque "
            "WHERE booklet_id = ANY(%s)",
            [booklets],
        )
        return (
            f"pgbench pool: {len(booklets) * BOOKLET_SIZE:,} cheques issued and reserved "
            f"in {time.perf_counter() - started:.0f} s"
        )


ACTIVE_HTTP_CHEQUES = """
    SELECT c.code FROM vouchers_cheque c JOIN vouchers_booklet b ON b.id = c.booklet_id
     WHERE b.programme_id = %s AND b.status = 'assigned' AND c.status = 'active'
       AND c.expires_on >= CURRENT_DATE
       AND NOT EXISTS (SELECT 1 FROM bench_redeem_pgpool p WHERE p.code = c.code)
"""


def http_codes(world: World, needed: int) -> tuple[list[str], str]:
    """``needed`` active, handed-out cheques (not pgbench's); issue another order if too few."""
    from django.db import connection

    note = ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({ACTIVE_HTTP_CHEQUES}) t", [world.programme.pk])
        have = cursor.fetchone()[0]
        if have < needed:
            started = time.perf_counter()
            issue_handed_out(world, ORDER_BOOKLETS)
            note = (
                f"{have:,} active cheques left: another order of {ORDER_BOOKLETS:,} booklets "
                f"issued and handed out in {time.perf_counter() - started:.0f} s; "
            )
        cursor.execute(f"SELECT count(*) FROM ({ACTIVE_HTTP_CHEQUES}) t", [world.programme.pk])
        have = cursor.fetchone()[0]
        cursor.execute(
            f"{ACTIVE_HTTP_CHEQUES} ORDER BY c.id LIMIT %s", [world.programme.pk, needed]
        )
        codes = [row[0] for row in cursor.fetchall()]
    return codes, note + f"{have:,} active handed-out cheques available for HTTP"


def pg_pool_codes(needed: int) -> list[str]:
    """The first ``needed`` cheques of pgbench's pool (all active again after housekeeping)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT code FROM bench_redeem_pgpool ORDER BY n LIMIT %s", [needed])
        return [row[0] for row in cursor.fetchall()]


def new_tokens(world: World) -> list[str]:
    """One fresh API token per provider (the service); the previous run's are revoked."""
    from django.utils import timezone

    from orgs.audit import Actor
    from orgs.models import ApiToken
    from orgs.services import api_token_create

    ApiToken.objects.filter(
        membership__in=world.providers, name=MARKER, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    return [
        api_token_create(actor=Actor.system(), membership=member, name=MARKER)[1]
        for member in world.providers
    ]


def housekeeping(world: World) -> None:
    """Put pgbench's pool back, then VACUUM ANALYZE and CHECKPOINT: each phase starts even."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM redemption_redemptionline WHERE redemption_id IN "
            "(SELECT id FROM redemption_redemption WHERE provider_id = %s)",
            [world.pg_provider.organisation_id],
        )
        cursor.execute(
            "DELETE FROM redemption_redemption WHERE provider_id = %s",
            [world.pg_provider.organisation_id],
        )
        cursor.execute(
            "UPDATE vouchers_cheque c SET status = 'active' FROM bench_redeem_pgpool p "
            "WHERE p.code = c.code AND c.status = 'redeemed'"
        )
        cursor.execute("ALTER SEQUENCE bench_redeem_pgseq RESTART WITH 1")
        cursor.execute(
            "VACUUM (ANALYZE) vouchers_cheque, vouchers_booklet, redemption_redemption, "
            "redemption_redemptionline, bench_redeem_pgpool"
        )
        try:
            cursor.execute("CHECKPOINT")
        except Exception as exc:  # not a superuser: fine, only less even
            print(f"(CHECKPOINT skipped: {exc})")


# --- pgbench ----------------------------------------------------------------------------------


def run_pgbench(pgbench: str, url: str, world: World, args, workdir: Path) -> dict:
    parts = urlsplit(url)
    script = workdir / "redeem.sql"
    script.write_text(
        PGBENCH_SCRIPT.format(
            provider=world.pg_provider.organisation_id,
            agent=world.pg_provider.user_id,
            service=world.service.pk,
        )
    )
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    command = [
        pgbench,
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        unquote(parts.username or "postgres"),
        "-n",
        "-M",
        "prepared",
        "-c",
        str(args.clients),
        "-j",
        "2",
        "-T",
        str(args.seconds),
        "-f",
        str(script),
        "-l",
        "--log-prefix",
        str(workdir / "pgbench_log"),
        parts.path.lstrip("/"),
    ]
    before = cpu_snapshot()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    postgres_settled(before)
    use = _with_others(cpu_use(before, cpu_snapshot()))
    output = done.stdout + done.stderr
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    processed = re.search(r"number of transactions actually processed: (\d+)", output)
    failed = re.search(r"number of failed transactions: (\d+)", output)
    if done.returncode or not tps:
        print(output[-2000:])
        if "aborted" in output:
            # Its rate would be that of a run cut short: no figure to compare with.
            sys.exit("pgbench clients aborted: the pool ran out (raise --pg-pool), run again.")
    latencies = []
    for log in workdir.glob("pgbench_log*"):
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
    latencies.sort()
    return {
        "rate": float(tps.group(1)) if tps else float("nan"),
        "count": int(processed.group(1)) if processed else len(latencies),
        "failed": int(failed.group(1)) if failed else 0,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "aborted": "aborted" in output,
        "cpu": use,
    }


# --- gunicorn and wrk -------------------------------------------------------------------------


def server_environment(url: str, world: World) -> dict[str, str]:
    env = dict(os.environ)
    floor = world.pg_provider
    env.update(
        {
            "BENCH_FLOOR_IDS": f"{floor.organisation_id},{floor.user_id},{world.service.pk}",
            "DJANGO_SETTINGS_MODULE": "aptic.settings",
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-secret-key-" + "7c1e4b9a2f6d8053" * 3,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": url,
            "REDIS_URL": REDIS_URL,
            "REDEEM_RATE_PER_MEMBERSHIP": "1000000",
            "REDEEM_RATE_PER_IP": "1000000",
            "LOCKOUT_FAILURES": "1000000",
            "STATIC_MANIFEST": "0",
            "ROOT_URLCONF": "bench_urls",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)]),
            "LOG_LEVEL": "WARNING",
            "EMAIL_URL": "dummymail://",
        }
    )
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env.pop("DB_LOCK_TIMEOUT_MS", None)
    return env


def gunicorn_command(args, port: int) -> list[str]:
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "aptic.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--backlog",
        "2048",
        "--timeout",
        "60",
        "--log-level",
        "warning",
        "--chdir",
        str(ROOT),
    ]
    if args.worker_class == "gthread":
        command += ["--threads", str(args.threads)]
    return command


class Server:
    """gunicorn in its own session; stopped on exit, errors and Ctrl-C alike."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit("gunicorn stopped:\n" + self.log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                    return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.2)
        sys.exit("gunicorn did not answer in time:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the session gunicorn leads
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


def run_wrk(wrk: str, base: str, mode: str, seconds: float, args, files: dict, server) -> dict:
    command = [
        wrk,
        "-t2",
        f"-c{args.clients}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        base,
        "--",
        f"mode={mode}",
        f"codes={files['codes']}",
        f"tokens={files['tokens']}",
        f"service={files['service']}",
        "threads=2",
    ]
    before = cpu_snapshot(server.pid)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    use = _with_others(cpu_use(before, cpu_snapshot(server.pid)))
    found = re.search(r"^RESULT (.*)$", done.stdout, re.M)
    if done.returncode or not found:
        sys.exit(f"wrk failed:\n{done.stdout}\n{done.stderr}")
    result = {k: int(v) for k, v in (item.split("=") for item in found.group(1).split())}
    statuses = {int(s): int(n) for s, n in re.findall(r"^STATUS (\d+) (\d+)$", done.stdout, re.M)}
    seconds_run = result["duration_us"] / 1e6
    return {
        "requests": result["requests"],
        "rate": result["requests"] / seconds_run,
        "seconds": seconds_run,
        "p50": result["p50_us"] / 1000,
        "p95": result["p95_us"] / 1000,
        "p99": result["p99_us"] / 1000,
        "statuses": statuses,
        "errors": result["connect_errors"]
        + result["read_errors"]
        + result["write_errors"]
        + result["timeouts"],
        "reused": result["reused_codes"],
        "cpu": use,
        # gunicorn workers' CPU per answered request: steadier than rates on a shared machine
        "cpu_ms": use["gunicorn"] * use["seconds"] / max(result["requests"], 1) * 1000,
    }


# --- checks -----------------------------------------------------------------------------------


def redemption_checks(world: World, codes: list[str], since, created: int, clients: int) -> list:
    """No double redemption; every 201 is one redemption of one cheque of the run.

    wrk stops counting at the deadline while up to one request per connection is still in
    flight: those complete on the server unseen, so redemptions may exceed the 201s by at most
    the number of connections. Waits until the server has finished them.
    """
    from django.db import connection

    from redemption.models import Redemption, RedemptionLine

    redemptions = Redemption.objects.filter(
        provider__in=[m.organisation_id for m in world.providers], created_at__gte=since
    )
    made, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 1.5:  # in-flight requests finish
        now = redemptions.count()
        if now != made:
            made, stable_since = now, time.monotonic()
        time.sleep(0.25)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cheque_id, count(*) FROM redemption_redemptionline WHERE live "
            "GROUP BY 1 HAVING count(*) > 1"
        )
        doubles = cursor.fetchall()
        cursor.execute(
            "SELECT count(*) FROM vouchers_cheque WHERE code = ANY(%s) AND status = 'redeemed'",
            [codes],
        )
        switched = cursor.fetchone()[0]
    lines = RedemptionLine.objects.filter(redemption__in=redemptions).count()
    multi = redemptions.exclude(cheque_count=1).count()
    consistent = made == lines == switched and multi == 0
    in_flight = made - created
    return [
        (
            "no cheque with two live redemptions (whole table)",
            "none" if not doubles else f"{len(doubles)} cheques: {doubles[:5]}",
            "ok" if not doubles else "FAILED",
        ),
        (
            "redemptions = lines = cheques switched (1 each)",
            f"{made:,} / {lines:,} / {switched:,}",
            "ok" if consistent else "FAILED",
        ),
        (
            "201s seen by wrk + in flight at the deadline",
            f"{created:,} + {in_flight}",
            "ok" if 0 <= in_flight <= clients else "FAILED",
        ),
    ]


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30, help="POST run and pgbench run")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--get-seconds", type=int, default=15, help="each GET run")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--codes", type=int, default=0, help="cheques offered to the POST run")
    parser.add_argument("--pg-pool", type=int, default=0, help="cheques reserved for pgbench")
    args = parser.parse_args()
    wrk, pgbench = need_wrk(), need_pgbench()
    # This script's own connection waits for locks held by other work on the database (another
    # bench's CLUSTER or VACUUM); the server keeps the production lock_timeout.
    os.environ["DB_LOCK_TIMEOUT_MS"] = "300000"
    url = django_on_postgres()
    started = time.perf_counter()

    ensure_pool_tables()
    world = ensure_world()
    pool_note = ensure_pg_pool(world, args.pg_pool or max(PG_POOL_MIN, 10_000 * args.seconds))
    needed = args.codes or 1000 * args.seconds
    codes, codes_note = http_codes(world, needed)
    tokens = new_tokens(world)
    setup_seconds = time.perf_counter() - started

    workdir = Path(tempfile.mkdtemp(prefix="bench-redeem-"))
    files = {
        "codes": workdir / "codes.txt",
        "tokens": workdir / "tokens.txt",
        "service": world.service.slug,
    }
    files["codes"].write_text("\n".join(codes) + "\n")
    files["tokens"].write_text("\n".join(tokens) + "\n")

    print(f"Set-up {setup_seconds:.0f} s. {'; '.join([*world.notes, pool_note, codes_note])}.")
    print(
        f"Hand-out: per order, {SAMPLE_HANDOUTS} booklets through booklet_assign, the others "
        "marked handed out by one bulk SQL UPDATE (a beneficiary each, status 'assigned', "
        "assigned_at), which is what the redemption check reads."
    )

    # 1. pgbench: the raw transaction, on its own pool, put back afterwards.
    housekeeping(world)
    print(f"pgbench: {args.clients} clients, {args.seconds} s…", flush=True)
    raw = run_pgbench(pgbench, url, world, args, workdir)
    housekeeping(world)

    # 2. gunicorn + wrk.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    from django.db import connections

    connections.close_all()
    server_line = " ".join(gunicorn_command(args, port)[1:]).replace(f"--chdir {ROOT}", "")
    with Server(
        gunicorn_command(args, port), server_environment(url, world), workdir / "gunicorn.log"
    ) as server:
        server.wait_ready(f"{base}/api/v1/bench/bare/0/")
        # Warm-up: every worker imports, connects to PostgreSQL and Redis; consumes no cheque.
        warm = {**files, "codes": workdir / "codes.txt"}
        run_wrk(wrk, base, "check", 3, args, warm, server)
        run_wrk(wrk, base, "bare", 2, args, warm, server)
        print(
            f"POST /api/v1/redemptions/: {args.clients} connections, {args.seconds} s…", flush=True
        )
        from django.utils import timezone

        since = timezone.now()
        http = run_wrk(wrk, base, "redeem", args.seconds, args, files, server)
        created = http["statuses"].get(201, 0)
        http["rate"] = created / http["seconds"]
        # 3. No cheque redeemed twice; every 201 one redemption of one cheque.
        checks = redemption_checks(world, codes, since, created, args.clients)

        # 4. The floor: pgbench's transaction behind a bare Django view, on pgbench's pool.
        print(f"POST bare view (pgbench's transaction): {args.seconds} s…", flush=True)
        files["codes"].write_text("\n".join(pg_pool_codes(3000 * args.seconds)) + "\n")
        floor = run_wrk(wrk, base, "floor", args.seconds, args, files, server)
        floor["rate"] = floor["statuses"].get(201, 0) / floor["seconds"]
        connections.close_all()

        # 5. GET: the check endpoint against the bare view, same server, active cheques.
        get_codes, _ = http_codes(world, 5000)
        files["codes"].write_text("\n".join(get_codes) + "\n")
        print(f"GET comparison: {args.get_seconds} s each…", flush=True)
        check = run_wrk(wrk, base, "check", args.get_seconds, args, files, server)
        bare = run_wrk(wrk, base, "bare", args.get_seconds, args, files, server)
    housekeeping(world)  # the floor's redemptions go, pgbench's pool is active again
    shutil.rmtree(workdir, ignore_errors=True)
    report(args, server_line, http, raw, floor, created, checks, check, bare)
    report_parts(check_parts(server_environment(url, world), tokens[0], get_codes[0]), bare)


def check_parts(env: dict[str, str], token: str, code: str) -> dict[str, float]:
    """bench/check_parts.py in the server's environment: the check's parts, timed alone."""
    done = subprocess.run(
        [sys.executable, str(BENCH / "check_parts.py"), token, code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        sys.exit(f"bench/check_parts.py failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report_parts(parts: dict[str, float], bare: dict) -> None:
    """The 1.5x budget against what the check cannot do without, in CPU per request."""
    required = parts["token_read"] + parts["rate_limit"] + parts["cheque_read"]
    required -= parts["bare_select"]
    budget = (TARGET_GET_COST - 1) * bare["cpu_ms"] * 1000
    print()
    print("Where the check's CPU goes (in process, no HTTP server, µs per call)")
    print(
        table(
            [
                ("part", "µs CPU"),
                ("whole check, through the WSGI application", f"{parts['check']:.0f}"),
                ("whole bare view, through the WSGI application", f"{parts['bare']:.0f}"),
                ("token read (membership, user, organisation)", f"{parts['token_read']:.0f}"),
                ("rate limits, one Redis round trip", f"{parts['rate_limit']:.0f}"),
                (
                    "cheque read with booklet, programme, accreditation",
                    f"{parts['cheque_read']:.0f}",
                ),
                ("the bare view's SELECT", f"{parts['bare_select']:.0f}"),
            ]
        )
    )
    rest = parts["check"] - parts["bare"] - required
    print(
        f"The token read, the rate limit and the cheque read cost {required:.0f} µs of CPU more "
        f"than the bare view's SELECT: {required / budget:.0%} of the {budget:.0f} µs a "
        f"{TARGET_GET_COST}x target would leave if it counted only the server's CPU (the bare "
        f"view's gunicorn CPU per request under load: {bare['cpu_ms'] * 1000:.0f} µs; PostgreSQL's "
        f"share on the same cores makes the real allowance smaller). The rest of the check (DRF's "
        f"request, authentication and permission steps, the verdict, the JSON answer) costs "
        f"{rest:.0f} µs more."
    )


def report(args, server_line: str, http, raw, floor, created: int, checks, check, bare) -> None:
    print()
    print(
        f"Redemption, {args.clients} concurrent clients, {args.seconds} s each, PostgreSQL "
        "(1 cheque per request)"
    )
    print(f"gunicorn {server_line}")
    ratio = http["rate"] / raw["rate"]
    print(
        table(
            [
                ("run", "redemptions/s", "p50 ms", "p95 ms", "p99 ms", "count", "CPU ms/req"),
                (
                    "HTTP POST /api/v1/redemptions/ (wrk)",
                    f"{http['rate']:,.0f}",
                    f"{http['p50']:.1f}",
                    f"{http['p95']:.1f}",
                    f"{http['p99']:.1f}",
                    f"{created:,}",
                    f"{http['cpu_ms']:.1f} (gunicorn)",
                ),
                (
                    "bare Django view running pgbench's SQL (wrk)",
                    f"{floor['rate']:,.0f}",
                    f"{floor['p50']:.1f}",
                    f"{floor['p95']:.1f}",
                    f"{floor['p99']:.1f}",
                    f"{floor['statuses'].get(201, 0):,}",
                    f"{floor['cpu_ms']:.1f} (gunicorn)",
                ),
                (
                    "raw SQL, same transaction (pgbench)",
                    f"{raw['rate']:,.0f}",
                    f"{raw['p50']:.1f}",
                    f"{raw['p95']:.1f}",
                    f"{raw['p99']:.1f}",
                    f"{raw['count']:,}",
                    "",
                ),
            ]
        )
    )
    others = {s: n for s, n in sorted(http["statuses"].items()) if s != 201}
    print(
        f"HTTP answers: 201 x {created:,}"
        + "".join(f", {s} x {n:,}" for s, n in others.items())
        + f"; socket errors/timeouts {http['errors']}; codes reused {http['reused']}"
        + f". pgbench failed transactions: {raw['failed']}"
        + (" (clients ABORTED)" if raw["aborted"] else "")
    )
    print(f"HTTP run  {cpu_text(http['cpu'])}")
    print(f"floor run {cpu_text(floor['cpu'])}")
    print(f"pgbench   {cpu_text(raw['cpu'])}")
    print(
        f"The bare view running pgbench's SQL reaches {floor['rate'] / raw['rate']:.3f} of "
        f"pgbench (p99 {floor['p99']:.0f} ms): the most any Django endpoint can reach in this "
        f"server and machine. The API reaches {http['rate'] / floor['rate']:.2f} of that floor."
    )
    print(
        table(
            [
                ("target", "figure", "verdict"),
                (
                    f"HTTP / pgbench throughput >= {TARGET_RATIO:.2f}",
                    f"{ratio:.3f}",
                    "met" if ratio >= TARGET_RATIO else "NOT met",
                ),
                (
                    f"HTTP p99 < {TARGET_P99_MS:.0f} ms",
                    f"{http['p99']:.1f} ms",
                    "met" if http["p99"] < TARGET_P99_MS else "NOT met",
                ),
                *checks,
            ]
        )
    )
    print()
    cost = bare["rate"] / check["rate"]
    print(
        f"Cheque check vs bare Django JSON view, {args.clients} connections, "
        f"{args.get_seconds} s each, same server"
    )
    rows = [("run", "requests/s", "p50 ms", "p99 ms", "non-200", "CPU ms/req (gunicorn)")]
    for name, run in (
        ("GET /api/v1/cheques/<code>/", check),
        ("GET /api/v1/bench/bare/<code>/ (bare view)", bare),
    ):
        failed = sum(n for s, n in run["statuses"].items() if s != 200) + run["errors"]
        rows.append(
            (
                name,
                f"{run['rate']:,.0f}",
                f"{run['p50']:.1f}",
                f"{run['p99']:.1f}",
                str(failed),
                f"{run['cpu_ms']:.2f}",
            )
        )
    print(table(rows))
    print(f"GET check run  {cpu_text(check['cpu'])}")
    print(f"GET bare run   {cpu_text(bare['cpu'])}")
    verdict = "met" if cost <= TARGET_GET_COST else "NOT met"
    print(
        f"cost ratio check / bare (bare rps / check rps): {cost:.2f}  "
        f"(target <= {TARGET_GET_COST}: {verdict}); in server CPU per request: "
        f"{check['cpu_ms'] / bare['cpu_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
