"""The static design of an order's booklets, laid out once by WeasyPrint.

Everything that is the same for every booklet of an order (frames and cut lines, funder, logo,
programme, values, validity, labels, instructions) is rendered into one small PDF with one page
per layout: a cover for each booklet size of the order, and a cheque page with 3, 2 and 1 filled
slots. The variable parts (codes, QR codes, booklet numbers, positions) are left out; the
variable-data printer (:mod:`vouchers.printing.vdp`) draws them at the positions this module
defines, on top of the template pages. The same templates, given the variable parts, render a
whole booklet (:mod:`vouchers.printing.baseline`), which is how the two are compared.

Positions are in millimetres from the top-left corner of the page (cover) or of the cheque.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from vouchers.models import Order

MM = 72 / 25.4  # PDF points per millimetre
PAGE_WIDTH = 210.0
PAGE_HEIGHT = 297.0
CHEQUES_PER_PAGE = 3
# A fixed date for the template PDF's metadata: the same order always renders the same bytes.
FIXED_CREATED = "2000-01-01T00:00:00+00:00"
MONOSPACE_ASCENT = 0.928  # DejaVu Sans Mono, in em: places baseline-positioned HTML text


@dataclass(frozen=True)
class TextSlot:
    """Where a variable text goes: its left edge (or centre) and baseline, and its size in pt."""

    x: float
    baseline: float
    size: float
    chars: int  # the longest text printed there, to size the box behind it
    centred: bool = False

    @property
    def size_mm(self) -> float:
        return self.size / MM

    @property
    def width(self) -> float:
        return self.chars * 0.602 * self.size_mm  # monospace advance: 0.602 em

    @property
    def left(self) -> float:
        return self.x - self.width / 2 if self.centred else self.x

    @property
    def html_top(self) -> float:
        """Top of an HTML line box of ``line-height: 1`` whose baseline falls on ``baseline``."""
        return self.baseline - (MONOSPACE_ASCENT - 0.082) * self.size_mm

    @property
    def box(self) -> dict[str, float]:
        """The light box printed behind the text, a little larger than the text itself."""
        pad = 0.35 * self.size_mm
        return {
            "left": self.left - pad,
            "top": self.baseline - 0.95 * self.size_mm,
            "width": self.width + 2 * pad,
            "height": 1.3 * self.size_mm,
        }

    @property
    def label_top(self) -> float:
        """Top of the small label printed above the box."""
        return self.box["top"] - 3.6


@dataclass(frozen=True)
class Square:
    """A QR code's square, quiet zone included: top-left corner and side."""

    x: float
    y: float
    size: float


@dataclass(frozen=True)
class ChequeGeometry:
    width: float = 190.0
    height: float = 90.0
    left: float = 10.0
    tops: tuple[float, ...] = (10.0, 103.5, 197.0)
    code: TextSlot = TextSlot(x=8.0, baseline=45.0, size=20.0, chars=16)
    number: TextSlot = TextSlot(x=8.0, baseline=66.0, size=11.0, chars=12)
    position: TextSlot = TextSlot(x=52.0, baseline=66.0, size=11.0, chars=5)
    qr: Square = Square(x=147.0, y=16.5, size=37.0)


@dataclass(frozen=True)
class CoverGeometry:
    number: TextSlot = TextSlot(x=20.0, baseline=101.0, size=30.0, chars=12)
    qr: Square = Square(x=140.0, y=76.0, size=50.0)


CHEQUE = ChequeGeometry()
COVER = CoverGeometry()


def cover_layout(size: int) -> str:
    return f"cover-{size}"


def cheques_layout(filled: int) -> str:
    return f"cheques-{filled}"


def booklet_layouts(size: int) -> list[str]:
    """The template page of each page of a booklet of ``size`` cheques: 10 → cover, 3, 3, 3, 1."""
    full, rest = divmod(size, CHEQUES_PER_PAGE)
    return [
        cover_layout(size),
        *[cheques_layout(CHEQUES_PER_PAGE)] * full,
        *([cheques_layout(rest)] if rest else []),
    ]


@dataclass(frozen=True)
class DesignData:
    """What the static design depends on: one order's funder, programme, texts and logo."""

    reference: str
    funder_name: str
    programme_name: str
    cheque_value_cents: int
    validity: str
    print_text: str
    site_url: str
    sizes: tuple[int, ...]
    logo_name: str = ""
    logo: bytes = field(default=b"", repr=False)

    @property
    def key(self) -> str:
        """Changes whenever anything printed in the static design changes."""
        digest = hashlib.sha256()
        for part in (
            self.reference,
            self.funder_name,
            self.programme_name,
            str(self.cheque_value_cents),
            self.validity,
            self.print_text,
            self.site_url,
            repr(self.sizes),
            self.logo_name,
        ):
            digest.update(part.encode() + b"\x00")
        digest.update(hashlib.sha256(self.logo).digest())
        return digest.hexdigest()

    @property
    def logo_uri(self) -> str:
        if not self.logo:
            return ""
        mime = "image/jpeg" if self.logo[:3] == b"\xff\xd8\xff" else "image/png"
        return f"data:{mime};base64,{base64.b64encode(self.logo).decode()}"

    @property
    def layouts(self) -> list[str]:
        """The template pages this order needs, in a fixed order."""
        names = [cover_layout(size) for size in self.sizes]
        for size in self.sizes:
            names += [name for name in booklet_layouts(size) if name not in names]
        return names


def validity_text(order: Order) -> str:
    programme = order.programme
    last_day = programme.last_valid_day
    if last_day is not None:
        return _("Valable jusqu'au %(date)s") % {"date": date_format(last_day, "d/m/Y")}
    return _("Valable %(months)s mois à compter de la remise") % {
        "months": programme.validity_months
    }


def design_data(order: Order) -> DesignData:
    """The inputs of the static design, read from the order (with its programme and funder)."""
    logo = b""
    if order.logo:
        with order.logo.open("rb") as handle:
            logo = handle.read()
    with translation.override(settings.LANGUAGE_CODE):
        validity = validity_text(order)
    return DesignData(
        reference=order.reference,
        funder_name=order.funder.name,
        programme_name=order.programme.name,
        cheque_value_cents=order.programme.cheque_value_cents,
        validity=validity,
        print_text=order.print_text,
        site_url=settings.SITE_URL,
        sizes=tuple(
            sorted(set(order.lines.values_list("booklet_size", flat=True)))
            or sorted(set(order.booklets.values_list("size", flat=True)))
        ),
        logo_name=order.logo.name if order.logo else "",
        logo=logo,
    )


def page_context(data: DesignData, pages: list[dict[str, Any]], *, title: str) -> dict[str, Any]:
    return {
        "d": data,
        "pages": pages,
        "title": title,
        "cheque": CHEQUE,
        "cover": COVER,
        "site_host": data.site_url.split("://", 1)[-1],
    }


def layout_page(data: DesignData, layout: str, variable: dict[str, Any] | None = None) -> dict:
    """One page of the booklet template; ``variable`` fills in its variable parts (baseline)."""
    kind, _sep, count = layout.partition("-")
    if kind == "cover":
        size = int(count)
        return {
            "kind": "cover",
            "size": size,
            "value_cents": size * data.cheque_value_cents,
            "variable": variable,
        }
    cheques = (variable or {}).get("cheques") or [None] * int(count)
    return {
        "kind": "cheques",
        "slots": [
            {"top": CHEQUE.tops[index], "variable": cheque} for index, cheque in enumerate(cheques)
        ],
    }


def render_pdf(context: dict[str, Any]) -> bytes:
    """The booklet template rendered by WeasyPrint, with fixed metadata."""
    from weasyprint import HTML

    with translation.override(settings.LANGUAGE_CODE):
        html = render_to_string("vouchers/print/booklet.html", context)
    document = HTML(string=html, base_url=str(settings.BASE_DIR)).render()
    document.metadata.created = FIXED_CREATED
    document.metadata.modified = FIXED_CREATED
    document.metadata.generator = "Aptic"
    return document.write_pdf()


@dataclass(frozen=True)
class Design:
    """The static template pages of an order: a PDF and the page index of each layout."""

    key: str
    pdf: bytes
    layouts: dict[str, int]
    data: DesignData


def render_design(data: DesignData) -> Design:
    """Lay out every template page the order needs, in one WeasyPrint document."""
    names = data.layouts
    pages = [layout_page(data, name) for name in names]
    pdf = render_pdf(page_context(data, pages, title=data.reference))
    return Design(
        key=data.key, pdf=pdf, layouts={name: i for i, name in enumerate(names)}, data=data
    )


_CACHE: OrderedDict[str, Design] = OrderedDict()
_CACHE_SIZE = 4
_LOCK = threading.Lock()


def order_design(order: Order) -> Design:
    """The static design of ``order``, rendered once per process and order.

    A worker renders a chunk of the order after another; the design (WeasyPrint, ~0.5 s) is
    kept for the few most recent orders, keyed on everything printed in it, so a change of
    funder name or logo gives a new design.
    """
    data = design_data(order)
    key = data.key
    with _LOCK:
        design = _CACHE.get(key)
        if design is not None:
            _CACHE.move_to_end(key)
            return design
    design = render_design(data)
    with _LOCK:
        _CACHE[key] = design
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return design


def design_cache_clear() -> None:
    with _LOCK:
        _CACHE.clear()
