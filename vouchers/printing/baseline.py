"""The booklet design rendered entirely by WeasyPrint, one document per booklet.

Not used to print: it is what the variable-data printer is measured against (``bench/print.py``).
It renders the same templates as :mod:`.design`, with the variable parts filled in as HTML (the
code, number and position as text, each QR as a 1-pixel-per-module PNG scaled without
smoothing), so the only difference between the two is how the work is done.
"""

from __future__ import annotations

import segno

from vouchers.codes import display

from .design import CHEQUES_PER_PAGE, DesignData, booklet_layouts, layout_page, page_context
from .design import render_pdf as render_html_pdf
from .qr import QUIET_ZONE
from .vdp import BookletToPrint, cheque_url


def qr_png_uri(data: str) -> str:
    """A PNG data URI of the same QR as the variable-data printer draws (mask 0, level M)."""
    qr = segno.make(data, error="m", mask=0, micro=False)
    return qr.png_data_uri(scale=1, border=QUIET_ZONE)


def render_booklet(data: DesignData, booklet: BookletToPrint) -> bytes:
    """One booklet (cover, then its cheques three to a page) as a WeasyPrint PDF."""
    size = booklet.size
    layouts = booklet_layouts(size)
    pages = [
        layout_page(
            data, layouts[0], {"number": booklet.number, "qr_uri": qr_png_uri(booklet.number)}
        )
    ]
    for page_index, layout in enumerate(layouts[1:]):
        first = page_index * CHEQUES_PER_PAGE
        cheques = [
            {
                "code": display(code),
                "number": booklet.number,
                "position": f"{first + slot + 1}/{size}",
                "qr_uri": qr_png_uri(cheque_url(data.site_url, code)),
            }
            for slot, code in enumerate(booklet.codes[first : first + CHEQUES_PER_PAGE])
        ]
        pages.append(layout_page(data, layout, {"cheques": cheques}))
    return render_html_pdf(page_context(data, pages, title=booklet.number))
