"""Print-ready PDFs of an order's booklets, by variable-data printing.

:mod:`.design` lays out the static design of an order once with WeasyPrint; :mod:`.vdp` places
those template pages in each output page and draws only the variable parts (codes, QR codes from
:mod:`.qr`, booklet numbers, positions) in the monospace font of :mod:`.fonts`. :mod:`.baseline`
renders the same design entirely with WeasyPrint, for the benchmark; :mod:`.proforma` is the
quote sent with an order.

This module reads what a chunk prints, a few booklets at a time in print order, so that memory
stays bounded whatever the size of the order. The services in :mod:`vouchers.services.printing`
decide when to print and where the files go.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, BinaryIO

from .design import order_design
from .vdp import BookletToPrint, render_booklets

if TYPE_CHECKING:
    from vouchers.models import Order

BOOKLETS_PER_QUERY = 25  # at most 250 cheques in memory; no cursor held open while rendering


def booklets_to_print(
    *, order_id: int, first_position: int, last_position: int
) -> Iterator[BookletToPrint]:
    """The booklets at print positions [first, last] of the order, in order, with their codes.

    Reads ``BOOKLETS_PER_QUERY`` booklets per query, each query fully read before the booklets
    are rendered: memory stays bounded, and no cursor (nor, on SQLite, a read lock) stays open
    during the seconds a chunk takes to render.
    """
    from vouchers.models import Cheque

    for start in range(first_position, last_position + 1, BOOKLETS_PER_QUERY):
        end = min(start + BOOKLETS_PER_QUERY - 1, last_position)
        rows = list(
            Cheque.objects.filter(
                booklet__order_id=order_id,
                booklet__print_position__gte=start,
                booklet__print_position__lte=end,
            )
            .order_by("booklet__print_position", "position")
            .values_list("booklet__print_position", "booklet__number", "booklet__size", "code")
        )
        for (_position, number, size), cheques in groupby(rows, key=itemgetter(0, 1, 2)):
            codes = [row[3] for row in cheques]
            if len(codes) != size:
                raise ValueError(f"Booklet {number} has {len(codes)} cheques instead of {size}.")
            yield BookletToPrint(number=number, codes=codes)


def render_order_chunk(
    *, order: Order, first_position: int, last_position: int, output: BinaryIO, title: str
) -> int:
    """Write the booklets at print positions [first, last] of ``order`` as one PDF; page count.

    Deterministic: the same order and positions give the same bytes, in any process.
    """
    design = order_design(order)
    booklets = booklets_to_print(
        order_id=order.pk, first_position=first_position, last_position=last_position
    )
    return render_booklets(design, booklets, output, title=title)


__all__ = ["BookletToPrint", "booklets_to_print", "render_order_chunk"]
