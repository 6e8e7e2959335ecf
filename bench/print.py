"""Benchmark: print-ready booklets by variable-data printing, against bare WeasyPrint.

    .venv/bin/python bench/print.py                 # 1 000 cheques (100 booklets of 10)
    .venv/bin/python bench/print.py --cheques 100000

Creates an order through the real services (organisation, programme, order create → submit →
approve, issue), then times the printing pipeline as the Celery workers run it (print_run_start,
every chunk, print_run_finish) with 2 worker processes and with 1, and, in the same run, the
same booklet design rendered entirely by WeasyPrint (one document per booklet). Prints cheques
per second, the ratio to WeasyPrint, peak memory and the projection for 100 000 cheques.

Uses its own SQLite database under bench/out/ (recreated each run) unless DATABASE_URL is set,
and bench/out/media for the files. Tasks are not run by Celery here: the script calls the
services itself, the chunks in a process pool as two workers would.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import resource
import secrets
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
BOOKLET_SIZE = 10
TARGET_CHEQUES = 100_000
TARGET_SECONDS = 10 * 60
TARGET_RATIO = 8


def _environment() -> None:
    """Settings for the script and its worker processes (inherited through the environment)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aptic.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "4f2a9c7e1b3d5f60" * 3)
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{OUT / 'print.sqlite3'}")
    os.environ.setdefault("MEDIA_ROOT", str(OUT / "media"))
    os.environ.setdefault("SITE_URL", "https://aptic.example.fr")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The script calls the services itself: queued tasks go to an in-memory broker, unread.
    os.environ.pop("REDIS_URL", None)
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"


def _setup() -> None:
    import django

    django.setup()
    import aptic.celery  # noqa: F401  (binds shared tasks to the configured app)

    for name in ("weasyprint", "fontTools", "kombu"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory. For this process, VmHWM: getrusage's ru_maxrss is inherited from
    the parent across fork and exec on Linux, so a worker would report at least its parent's."""
    if who == resource.RUSAGE_SELF:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: kilobytes


def _cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# -- worker processes ----------------------------------------------------------------------


def _worker_init() -> None:
    _environment()
    _setup()


def _warm(_: int) -> int:
    """Bring a worker to the state of a Celery worker that has printed before: modules imported,
    templates compiled, fonts loaded and subset. Not the per-order work: the design rendered
    here is another order's, so each worker still lays out the measured order's design."""
    from vouchers.printing.design import DesignData, render_design
    from vouchers.printing.fonts import monospace_font

    monospace_font()
    render_design(
        DesignData(
            reference="WARM-UP",
            funder_name="-",
            programme_name="-",
            cheque_value_cents=1,
            validity="-",
            print_text="",
            site_url="https://example.org",
            sizes=(10,),
        )
    )
    time.sleep(0.3)  # let every worker of the pool take one
    return os.getpid()


def _render_chunk(chunk_id: int) -> tuple[int, float, float]:
    from vouchers.services.printing import print_chunk_render

    cpu = _cpu_seconds()
    print_chunk_render(chunk_id=chunk_id)
    return os.getpid(), _peak_rss_mb(), _cpu_seconds() - cpu


def _render_baseline(booklet_numbers: list[str]) -> tuple[int, int, float, float]:
    from vouchers.models import Booklet
    from vouchers.printing import booklets_to_print
    from vouchers.printing.baseline import render_booklet
    from vouchers.printing.design import design_data

    cpu = _cpu_seconds()
    first = Booklet.objects.select_related("order__programme", "order__funder").get(
        number=booklet_numbers[0]
    )
    data = design_data(first.order)
    cheques = pages = 0
    for number in booklet_numbers:
        position = Booklet.objects.get(number=number).print_position
        [booklet] = booklets_to_print(
            order_id=first.order_id, first_position=position, last_position=position
        )
        pdf = render_booklet(data, booklet)
        cheques += booklet.size
        pages += pdf.count(b"/Type /Page\n") or 1
    return cheques, pages, _peak_rss_mb(), _cpu_seconds() - cpu


def _pool(processes: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(
        processes, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init
    )
    list(pool.map(_warm, range(processes * 2)))
    return pool


# -- data, through the services --------------------------------------------------------------


def _siret() -> str:
    from stdnum import luhn

    siren = f"7{secrets.randbelow(10**7):07d}"
    siren += luhn.calc_check_digit(siren)
    body = siren + f"{secrets.randbelow(10**4):04d}"
    return body + luhn.calc_check_digit(body)


def _people():
    from orgs.audit import Actor, audit_record
    from orgs.models import MemberRole, Membership, Organisation, ServiceCategory, User
    from orgs.services import organisation_create
    from vouchers.services.programmes import programme_create

    tag = secrets.token_hex(3)
    # Bootstrap, as seed_demo does: the first operator admin cannot be invited by anyone.
    operator_org = Organisation.objects.create(
        name="Médias-Cité",
        slug=f"bench-medias-cite-{tag}",
        is_operator=True,
        siret=_siret(),
        address="2 rue Pierre Semard",
        postcode="33130",
        city="Bègles",
        departement="33",
    )
    operator_user = User.objects.create_user(f"operator-{tag}@bench.example", None)
    operator = Actor(
        user=operator_user,
        membership=Membership.objects.create(
            user=operator_user, organisation=operator_org, role=MemberRole.ADMIN
        ),
    )
    audit_record(actor=Actor.system(), action="bench.bootstrap", target=operator_org)
    funder_org, _invitation = organisation_create(
        actor=operator,
        name="Département de la Gironde",
        roles=["funder"],
        siret=_siret(),
        address="1 esplanade Charles de Gaulle",
        postcode="33000",
        city="Bordeaux",
        departement="33",
        admin_email=f"funder-{tag}@bench.example",
    )
    funder_user = User.objects.create_user(f"funder-{tag}@bench.example", None)
    funder = Actor(
        user=funder_user,
        membership=Membership.objects.create(
            user=funder_user, organisation=funder_org, role=MemberRole.ADMIN
        ),
    )
    category, _created = ServiceCategory.objects.get_or_create(
        slug="bench-initiation", defaults={"name": f"Initiation au numérique {tag}"}
    )
    programme = programme_create(
        actor=operator,
        funder=funder_org,
        categories=[category],
        name="Chèque APTIC Gironde 2027",
        cheque_value_cents=1000,
        offers_booklet_of_5=True,
        offers_booklet_of_10=True,
        validity_kind="fixed_date",
        valid_until=date(2027, 12, 31),
        tolerance_days=0,
        fee_rate_bp=400,
        max_booklets_per_order=1_000_000,
        departements=["33"],
    )
    return operator, funder, programme


def _issued_order(operator, funder, programme, booklets: int):
    from django.utils import timezone

    from vouchers.services.issuance import order_issue
    from vouchers.services.orders import order_approve, order_create, order_submit

    order = order_create(
        actor=funder,
        programme=programme,
        lines={BOOKLET_SIZE: booklets},
        print_text="Offert par le Département de la Gironde : formez-vous au numérique !",
    )
    order_submit(actor=funder, order=order)
    order_approve(
        actor=operator,
        order=order,
        payment_reference=f"VIR-{order.reference}",
        payment_received_on=timezone.localdate(),
    )
    order_issue(order_id=order.pk, actor=operator)
    order.refresh_from_db()
    return order


# -- the measures ------------------------------------------------------------------------------


def _pipeline(order, processes: int) -> dict:
    from django.db import connections

    from vouchers.models import PrintRun
    from vouchers.services.printing import print_run_finish, print_run_start

    connections.close_all()  # nothing shared with the workers
    with _pool(processes) as pool:
        start, cpu = time.perf_counter(), _cpu_seconds()
        run = print_run_start(order_id=order.pk)
        chunk_ids = list(run.chunks.order_by("index").values_list("pk", flat=True))
        results = list(pool.map(_render_chunk, chunk_ids))
        print_run_finish(run_id=run.pk)
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu + sum(r[2] for r in results)
    run = PrintRun.objects.get(pk=run.pk)
    order.refresh_from_db()
    assert run.status == "done" and order.status == "printed", (run.status, order.status)
    size = run.file.storage.size(run.file.name)
    return {
        "seconds": seconds,
        "chunks": len(chunk_ids),
        "cpu": cpu,
        "worker_peak_mb": max(r[1] for r in results),
        "workers": len({r[0] for r in results}),
        "file": run.file.name,
        "bytes": size,
        "run": run,
    }


def _baseline(order, booklets: int, processes: int) -> dict:
    from django.db import connections

    numbers = list(
        order.booklets.order_by("print_position").values_list("number", flat=True)[:booklets]
    )
    shares = [numbers[i::processes] for i in range(processes)]
    connections.close_all()
    with _pool(processes) as pool:
        # One booklet per worker first: WeasyPrint's first document pays for font set-up.
        list(pool.map(_render_baseline, [[n] for n in numbers[:processes]]))
        start = time.perf_counter()
        results = list(pool.map(_render_baseline, shares))
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "cheques": sum(r[0] for r in results),
        "cpu": sum(r[3] for r in results),
        "worker_peak_mb": max(r[2] for r in results),
    }


def _deterministic(run) -> bool:
    """Re-render the first chunk here, in another process than the worker that wrote it."""
    import io

    from vouchers.printing import render_order_chunk
    from vouchers.services.printing import chunk_title

    chunk = run.chunks.order_by("index").first()
    order = run.order
    again = io.BytesIO()
    render_order_chunk(
        order=order,
        first_position=chunk.first_position,
        last_position=chunk.last_position,
        output=again,
        title=chunk_title(order.reference, chunk.index, run.chunks_total),
    )
    with chunk.file.open("rb") as handle:
        return handle.read() == again.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cheques", type=int, default=1000, help="cheques in the order")
    parser.add_argument(
        "--baseline-booklets",
        type=int,
        default=10,
        help="booklets rendered by bare WeasyPrint (its pace, in cheques/s, is what counts)",
    )
    parser.add_argument("--processes", default="2,1", help="worker counts to time, comma-separated")
    args = parser.parse_args()
    booklets = max(1, math.ceil(args.cheques / BOOKLET_SIZE))
    cheques = booklets * BOOKLET_SIZE
    modes = [int(n) for n in args.processes.split(",") if n.strip()]

    OUT.mkdir(parents=True, exist_ok=True)
    _environment()
    database_url = os.environ["DATABASE_URL"]
    if database_url.startswith("sqlite:") and str(OUT) in database_url:
        # A fresh database each run, and no files left from the last one.
        Path(database_url.split("sqlite:///", 1)[1]).unlink(missing_ok=True)
        if Path(os.environ["MEDIA_ROOT"]).resolve().is_relative_to(OUT):
            shutil.rmtree(Path(os.environ["MEDIA_ROOT"]) / "print", ignore_errors=True)
    else:  # PostgreSQL: create the database when it does not exist yet
        import runpy

        runpy.run_path(str(ROOT / "scripts" / "create_database.py"))
    _setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    engine = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
    print(
        f"Aptic print bench: {booklets} booklets of {BOOKLET_SIZE} = {cheques} cheques, "
        f"{engine}, {os.cpu_count()} CPUs"
    )

    operator, funder, programme = _people()
    orders = {}
    for processes in modes:
        start = time.perf_counter()
        orders[processes] = _issued_order(operator, funder, programme, booklets)
        print(
            f"  order {orders[processes].reference} issued through the services "
            f"in {time.perf_counter() - start:.1f} s"
        )

    results = {}
    for processes in modes:
        results[processes] = _pipeline(orders[processes], processes)
        r = results[processes]
        print(
            f"  VDP, {processes} process(es): {r['seconds']:.1f} s, {r['chunks']} chunk(s) "
            f"-> {r['file']} ({r['bytes'] / 1e6:.1f} MB)"
        )

    baseline_booklets = min(args.baseline_booklets, booklets)
    baselines = {}
    for processes in sorted({1, *[m for m in modes if m <= baseline_booklets]}):
        baselines[processes] = _baseline(orders[modes[0]], baseline_booklets, processes)
        b = baselines[processes]
        print(
            f"  bare WeasyPrint, {processes} process(es): {b['cheques']} cheques in "
            f"{b['seconds']:.1f} s"
        )

    same_bytes = _deterministic(results[modes[0]]["run"])
    _report(cheques, results, baselines, same_bytes)


def _plural(processes: int) -> str:
    return f"{processes} process{'es' if processes > 1 else ''}"


def _report(cheques: int, results: dict, baselines: dict, same_bytes: bool) -> None:
    def base_rate(processes: int) -> float:
        """WeasyPrint's pace with as many processes (measured, else scaled linearly from 1)."""
        if processes in baselines:
            b = baselines[processes]
            return b["cheques"] / b["seconds"]
        b = baselines[1]
        return b["cheques"] / b["seconds"] * processes

    base_cpu = baselines[1]["cpu"] / baselines[1]["cheques"]
    rows = []
    for processes, r in results.items():
        rate = cheques / r["seconds"]
        cpu = r["cpu"] / cheques
        rows.append(
            (
                f"VDP, {_plural(processes)}",
                f"{r['seconds']:.1f}",
                f"{rate:,.0f}",
                f"{rate / base_rate(processes):.1f}x",
                f"{cpu * 1000:.2f}",
                f"{base_cpu / cpu:.1f}x",
                f"{r['worker_peak_mb']:.0f}",
                f"{TARGET_CHEQUES / rate / 60:.1f} min",
            )
        )
    for processes, b in baselines.items():
        rate = b["cheques"] / b["seconds"]
        cpu = b["cpu"] / b["cheques"]
        rows.append(
            (
                f"bare WeasyPrint, {_plural(processes)}",
                f"{b['seconds']:.1f}",
                f"{rate:,.1f}",
                "1.0x",
                f"{cpu * 1000:.1f}",
                f"{base_cpu / cpu:.1f}x",
                f"{b['worker_peak_mb']:.0f}",
                f"{TARGET_CHEQUES / rate / 60:.1f} min",
            )
        )
    header = (
        "pipeline",
        "wall s",
        "cheques/s",
        "speed-up",
        "CPU ms/cheque",
        "CPU ratio",
        "peak RSS/worker MB",
        "100 000 cheques",
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)
    print()
    print(line)
    print("|".join(f" {h:<{w}} " for h, w in zip(header, widths, strict=True)))
    print(line)
    for row in rows:
        print(
            "|".join(
                f" {cell:<{w}} " if i == 0 else f" {cell:>{w}} "
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print(line)
    print(
        "speed-up: cheques/s against bare WeasyPrint with the same number of processes; "
        "CPU ratio: CPU time per cheque against bare WeasyPrint (steadier on a shared machine)."
    )

    best = max(results)
    rate = cheques / results[best]["seconds"]
    ratio = rate / base_rate(best)
    projection = TARGET_CHEQUES / rate
    per_cheque = results[best]["bytes"] / cheques
    if results[best]["chunks"] < best:
        print(
            f"Note: {results[best]['chunks']} chunk(s) of {100} booklets: with fewer chunks "
            f"than processes the extra workers idle (try --cheques 10000)."
        )
    worker_peak = max(r["worker_peak_mb"] for r in [*results.values(), *baselines.values()])
    rusage_peak = max(
        resource.getrusage(who).ru_maxrss / 1024
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    print(
        f"Projection for {TARGET_CHEQUES:,} cheques with {_plural(best)}: "
        f"{projection / 60:.1f} min (target < {TARGET_SECONDS // 60} min), "
        f"~{per_cheque * TARGET_CHEQUES / 1e6:.0f} MB of PDF ({per_cheque:.0f} bytes a cheque); "
        f"each worker holds one chunk (100 booklets) at a time, whatever the order size."
    )
    print(
        f"Peak RSS: largest worker {worker_peak:.0f} MB (target < 1 GB), this process "
        f"{_peak_rss_mb():.0f} MB; getrusage self + children: "
        f"{rusage_peak:.0f} MB (a child's figure includes the "
        f"parent's peak at fork, as Linux carries ru_maxrss over fork and exec)."
    )
    print(
        f"Same bytes when chunk 1 is rendered again in another process: "
        f"{'yes' if same_bytes else 'NO'}"
    )
    met = (
        ratio >= TARGET_RATIO and projection < TARGET_SECONDS and worker_peak < 1024 and same_bytes
    )
    print(
        f"Targets (>= {TARGET_RATIO}x bare WeasyPrint, < {TARGET_SECONDS // 60} min for "
        f"{TARGET_CHEQUES:,} cheques, < 1 GB, deterministic): {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
