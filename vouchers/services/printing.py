"""Printing: an issued order becomes print-ready PDFs, chunk by chunk, then ``printed``.

``print_run_start`` creates the run and one chunk per ``CHUNK_BOOKLETS`` booklets and queues a
task per chunk; each ``print_chunk_render`` writes its PDF (variable-data printing, see
:mod:`vouchers.printing`) to storage under a fixed name and marks itself done with a
compare-and-set; the last one queues ``print_run_finish``, which bundles the files, marks the
order printed and tells the funder. Every step is idempotent: a retried or duplicated task finds
its work done, and a worker killed halfway leaves a chunk not done, which the next
``print_run_start`` queues again. Rendering happens outside any transaction; only the short
bookkeeping writes are transactional.
"""

from __future__ import annotations

import logging
import posixpath
import shutil
import tempfile
import zipfile
from functools import partial
from typing import IO

from django.core.files import File
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import F, Max
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from orgs.audit import Actor, audit_record
from orgs.notifications import email_on_commit
from orgs.selectors import organisation_admin_emails

from ..models import Order, OrderStatus, PrintChunk, PrintRun, PrintRunStatus
from ..printing import render_order_chunk

logger = logging.getLogger(__name__)

CHUNK_BOOKLETS = 100
# ZIP entries carry a date; a fixed one makes the archive depend only on its content.
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
COPY_BUFFER = 1024 * 1024


def print_folder(reference: str) -> str:
    return f"print/{reference}"


def chunk_file_name(reference: str, index: int) -> str:
    """``print/CMD-2026-000123/CMD-2026-000123-part-003.pdf``: fixed, so a re-run overwrites."""
    return f"{print_folder(reference)}/{reference}-part-{index:03d}.pdf"


def run_archive_name(reference: str) -> str:
    return f"{print_folder(reference)}/{reference}.zip"


def chunk_title(reference: str, index: int, total: int) -> str:
    """The PDF title of a chunk (part of its bytes, so fixed for a given chunk)."""
    return f"{reference} — {index}/{total}"


def _save_replacing(storage: Storage, name: str, content: IO[bytes]) -> str:
    """Save ``content`` under exactly ``name``, replacing a file left by an earlier attempt.

    Should two attempts race, the later one gets a suffixed name from the storage; both files
    hold the same bytes (rendering is deterministic), and the chunk records the name it got.
    """
    if storage.exists(name):
        storage.delete(name)
    return storage.save(name, File(content, name=posixpath.basename(name)))


def _queue_pending(run: PrintRun) -> list[int]:
    """On commit, queue a task for every chunk not done yet (or the finish when none is left)."""
    from ..tasks import finish_printing, print_chunk

    pending = list(
        run.chunks.filter(done_at__isnull=True).order_by("index").values_list("pk", flat=True)
    )
    for chunk_id in pending:
        transaction.on_commit(partial(print_chunk.delay, chunk_id))
    if not pending and run.status != PrintRunStatus.DONE:
        transaction.on_commit(partial(finish_printing.delay, run.pk))
    return pending


def print_run_start(*, order_id: int) -> PrintRun | None:
    """Start (or resume) printing an issued order; the run, or None when there is nothing to do.

    Guarantees: at most one run per order (the order row is locked, and the database allows one
    run per order); its chunks cover the order's booklets by print position, ``CHUNK_BOOKLETS``
    at a time, each exactly once. Calling it again is safe: it creates nothing new and queues
    again only the chunks not done (a worker may have died on them). A printed order returns its
    run untouched; an order not yet issued, or cancelled, returns None.
    """
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("funder")
            .filter(pk=order_id)
            .first()
        )
        if order is None or order.status not in (OrderStatus.ISSUED, OrderStatus.PRINTED):
            return None
        run = PrintRun.objects.filter(order=order).first()
        if order.status == OrderStatus.PRINTED:
            return run
        if run is None:
            last = order.booklets.aggregate(last=Max("print_position"))["last"] or 0
            bounds = [
                (first, min(first + CHUNK_BOOKLETS - 1, last))
                for first in range(1, last + 1, CHUNK_BOOKLETS)
            ]
            run = PrintRun.objects.create(order=order, chunks_total=len(bounds))
            PrintChunk.objects.bulk_create(
                PrintChunk(run=run, index=index, first_position=first, last_position=last_pos)
                for index, (first, last_pos) in enumerate(bounds, start=1)
            )
            audit_record(
                actor=Actor.system(),
                action="vouchers.print_run.started",
                target=order,
                organisation=order.funder,
                data={
                    "run": run.pk,
                    "booklets": last,
                    "chunks": len(bounds),
                    "chunk_booklets": CHUNK_BOOKLETS,
                },
            )
        pending = _queue_pending(run)
    logger.info("Print run %s of %s: %s chunk(s) queued", run.pk, order.reference, len(pending))
    return run


def print_chunk_render(*, chunk_id: int) -> None:
    """Render one chunk's PDF into storage and mark it done, exactly once.

    Guarantees: the file is named after the order and chunk (``chunk_file_name``) and holds the
    same bytes however often it is rendered; ``done_at`` goes from null to set in one
    compare-and-set, so the run's ``chunks_done`` counts each chunk once even when two workers
    render it. The chunk that completes the run queues ``print_run_finish`` on commit. A chunk
    already done returns at once.
    """
    chunk = PrintChunk.objects.select_related("run__order__programme", "run__order__funder").get(
        pk=chunk_id
    )
    if chunk.done_at is not None:
        return
    run, order = chunk.run, chunk.run.order
    storage = chunk.file.storage
    name = chunk_file_name(order.reference, chunk.index)

    # The slow part, outside any transaction: a few seconds for 100 booklets.
    with tempfile.TemporaryFile() as pdf:
        pages = render_order_chunk(
            order=order,
            first_position=chunk.first_position,
            last_position=chunk.last_position,
            output=pdf,
            title=chunk_title(order.reference, chunk.index, run.chunks_total),
        )
        pdf.seek(0)
        saved = _save_replacing(storage, name, pdf)

    with transaction.atomic():
        claimed = PrintChunk.objects.filter(pk=chunk.pk, done_at__isnull=True).update(
            done_at=timezone.now(), file=saved
        )
        if not claimed:
            return  # another worker finished this chunk first, with the same bytes
        PrintRun.objects.filter(pk=run.pk).update(chunks_done=F("chunks_done") + 1)
        done, total = (
            PrintRun.objects.filter(pk=run.pk).values_list("chunks_done", "chunks_total").get()
        )
        audit_record(
            actor=Actor.system(),
            action="vouchers.print_chunk.rendered",
            target=order,
            organisation=order.funder,
            data={
                "run": run.pk,
                "chunk": chunk.index,
                "of": total,
                "pages": pages,
                "booklets": [chunk.first_position, chunk.last_position],
                "file": saved,
            },
        )
        if done == total:
            from ..tasks import finish_printing

            transaction.on_commit(partial(finish_printing.delay, run.pk))


def _write_archive(storage: Storage, name: str, members: list[str]) -> str:
    """A ZIP of the chunk files, copied a megabyte at a time (memory stays flat), then stored.

    ``ZIP_STORED``: PDFs are compressed already. Fixed dates and attributes: same bytes on re-run.
    """
    with tempfile.TemporaryFile() as archive_file:
        with zipfile.ZipFile(archive_file, "w", compression=zipfile.ZIP_STORED) as archive:
            for member in members:
                info = zipfile.ZipInfo(posixpath.basename(member), date_time=ZIP_DATE_TIME)
                info.compress_type = zipfile.ZIP_STORED
                info.create_system = 3  # Unix, wherever it runs
                info.external_attr = 0o100644 << 16
                size = storage.size(member)
                with (
                    storage.open(member, "rb") as source,
                    archive.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as target,
                ):
                    shutil.copyfileobj(source, target, COPY_BUFFER)
        archive_file.seek(0)
        return _save_replacing(storage, name, archive_file)


def _order_path(order: Order) -> str:
    try:
        return reverse("vouchers:order_detail", args=[order.pk])
    except NoReverseMatch:
        return f"/commandes/{order.pk}/"


def _notify_printed(order: Order) -> None:
    recipients = set(organisation_admin_emails(organisation=order.funder))
    if order.created_by_id and order.created_by.is_active:
        recipients.add(order.created_by.email)
    if not recipients:
        return
    lines = list(order.lines.all())
    email_on_commit(
        to=sorted(recipients),
        template="order_printed",
        organisation=order.funder,
        context={
            "order": order,
            "reference": order.reference,
            "booklets": sum(line.quantity for line in lines),
            "cheques": sum(line.quantity * line.booklet_size for line in lines),
            "order_path": _order_path(order),
        },
    )


def print_run_finish(*, run_id: int) -> None:
    """Once every chunk is done: the run's file, the order ``printed``, the funder told.

    Guarantees: nothing happens until all chunks are done; the run's file is the single chunk's
    PDF, or a ZIP of all chunk PDFs in order (deterministic); the run goes to ``done`` and the
    order from ``issued`` to ``printed`` in one transaction, each by compare-and-set, with the
    ``vouchers.order.printed`` audit event; the e-mail to the funder's admins leaves on commit.
    A second call finds the run done and does nothing.
    """
    run = PrintRun.objects.select_related("order__funder", "order__created_by").get(pk=run_id)
    if run.status == PrintRunStatus.DONE:
        return
    chunks = list(run.chunks.order_by("index").values_list("file", "done_at"))
    if not chunks or len(chunks) != run.chunks_total or any(done is None for _f, done in chunks):
        return
    order = run.order
    storage = run.file.storage
    files = [file for file, _done in chunks]
    if len(files) == 1:
        name = files[0]
    else:
        name = _write_archive(storage, run_archive_name(order.reference), files)

    with transaction.atomic():
        now = timezone.now()
        finished = (
            PrintRun.objects.filter(pk=run.pk)
            .exclude(status=PrintRunStatus.DONE)
            .update(status=PrintRunStatus.DONE, finished_at=now, file=name, error="")
        )
        if not finished:
            return
        printed = Order.objects.filter(pk=order.pk, status=OrderStatus.ISSUED).update(
            status=OrderStatus.PRINTED, printed_at=now
        )
        data = {"run": run.pk, "chunks": len(files), "file": name}
        if printed:
            order.refresh_from_db()
            audit_record(
                actor=Actor.system(),
                action="vouchers.order.printed",
                target=order,
                organisation=order.funder,
                data={"before": {"status": "issued"}, "after": {"status": "printed"}, **data},
            )
            _notify_printed(order)
        else:  # the order left "issued" some other way: the files are ready all the same
            audit_record(
                actor=Actor.system(),
                action="vouchers.print_run.finished",
                target=order,
                organisation=order.funder,
                data=data,
            )
