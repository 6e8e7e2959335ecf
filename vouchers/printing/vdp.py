"""Variable-data printing: booklets as template pages plus a few operators per cheque.

The static design (:mod:`vouchers.printing.design`) is rendered once per order by WeasyPrint.
Each of its pages becomes a PDF Form XObject, written once per file; every output page draws
one of them (``/L2 Do``) and then only its variable parts, straight into the page content
stream: the code, booklet number and position as text in an embedded monospace font, and the
QR codes as filled rectangles. A page costs a QR matrix and a few kilobytes of operators instead
of a WeasyPrint layout, and a file holds the design once however many booklets it carries.

The output is deterministic: the same booklets give the same bytes (fixed metadata, no random
file identifier, fonts subset with fixed names and timestamps).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from vouchers.codes import display as display_code

from .design import (
    CHEQUE,
    CHEQUES_PER_PAGE,
    COVER,
    MM,
    PAGE_HEIGHT,
    Design,
    Square,
    TextSlot,
    booklet_layouts,
    cheques_layout,
    cover_layout,
)
from .fonts import EmbeddedFont, monospace_font
from .qr import qr_path_ops

FONT_RESOURCE = b"/V"
CONTENT_COMPRESSION = 6  # zlib level: QR operators shrink ~5x, at ~0.1 ms a page


@dataclass(frozen=True)
class BookletToPrint:
    """One booklet's variable data: its number and its cheque codes in position order."""

    number: str
    codes: Sequence[str]

    @property
    def size(self) -> int:
        return len(self.codes)


def cheque_url(site_url: str, code: str) -> str:
    return f"{site_url}/c/{code}"


class BookletPdf:
    """A print-ready PDF of booklets, built page by page on the template pages of a design."""

    def __init__(self, design: Design, *, title: str) -> None:
        self.design = design
        self.site_url = design.data.site_url
        self.font = monospace_font()
        self.writer = PdfWriter()
        self.writer.pdf_header = "%PDF-1.7"  # as WeasyPrint's template pages
        # Fixed metadata only: no dates, no random identifier, so re-runs give the same bytes.
        self.writer.add_metadata(
            {"/Producer": "Aptic", "/Creator": "Aptic", "/Title": TextStringObject(title)}
        )
        reader = PdfReader(io.BytesIO(design.pdf))
        first = reader.pages[0]
        self.media_box = ArrayObject(FloatObject(v) for v in first.mediabox)
        self.form_names: dict[str, bytes] = {}
        xobjects = DictionaryObject()
        for layout, index in sorted(design.layouts.items(), key=lambda item: item[1]):
            name = f"/L{index}"
            self.form_names[layout] = name.encode()
            xobjects[NameObject(name)] = self._form_xobject(reader.pages[index])
        resources = DictionaryObject(
            {
                NameObject("/XObject"): xobjects,
                NameObject("/Font"): DictionaryObject(
                    {NameObject(FONT_RESOURCE.decode()): self._font_object(self.font)}
                ),
                NameObject("/ProcSet"): ArrayObject([NameObject("/PDF"), NameObject("/Text")]),
            }
        )
        # pypdf has no public call that adds a free-standing indirect object; _add_object is
        # the one its own page cloning uses.
        self.resources = self.writer._add_object(resources)
        self.pages = 0

    # -- the objects written once per file -------------------------------------------------

    def _form_xobject(self, page) -> IndirectObject:
        """The template page as a Form XObject with its own resources (fonts, images)."""
        contents = page.get("/Contents")
        contents = contents.get_object() if contents is not None else None
        if contents is None:
            data = b""
        elif isinstance(contents, ArrayObject):
            data = b"\n".join(part.get_object().get_data() for part in contents)
        else:
            data = contents.get_data()
        form = DecodedStreamObject()
        form.set_data(data)
        form.update(
            {
                NameObject("/Type"): NameObject("/XObject"),
                NameObject("/Subtype"): NameObject("/Form"),
                NameObject("/FormType"): NumberObject(1),
                NameObject("/BBox"): ArrayObject(FloatObject(v) for v in page.mediabox),
                NameObject("/Resources"): page["/Resources"].get_object().clone(self.writer),
            }
        )
        if "/Group" in page:
            form[NameObject("/Group")] = page["/Group"].get_object().clone(self.writer)
        return self.writer._add_object(form.flate_encode(CONTENT_COMPRESSION))

    def _font_object(self, font: EmbeddedFont) -> IndirectObject:
        """A Type0 font over a CIDFontType2 (TrueType) subset, Identity-H, with ToUnicode."""
        add = self.writer._add_object
        file_stream = DecodedStreamObject()
        file_stream.set_data(font.data)
        file_stream[NameObject("/Length1")] = NumberObject(len(font.data))
        flags = (1 if font.is_fixed_pitch else 0) | 4  # FixedPitch, Symbolic
        descriptor = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/FontDescriptor"),
                NameObject("/FontName"): NameObject("/" + font.name),
                NameObject("/Flags"): NumberObject(flags),
                NameObject("/FontBBox"): ArrayObject(NumberObject(v) for v in font.bbox),
                NameObject("/ItalicAngle"): NumberObject(0),
                NameObject("/Ascent"): NumberObject(font.ascent),
                NameObject("/Descent"): NumberObject(font.descent),
                NameObject("/CapHeight"): NumberObject(font.cap_height),
                NameObject("/StemV"): NumberObject(120),
                NameObject("/FontFile2"): add(file_stream.flate_encode(9)),
            }
        )
        widths = ArrayObject()
        for gid in sorted(font.widths):
            widths += [NumberObject(gid), ArrayObject([NumberObject(font.widths[gid])])]
        cid_font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/CIDFontType2"),
                NameObject("/BaseFont"): NameObject("/" + font.name),
                NameObject("/CIDSystemInfo"): DictionaryObject(
                    {
                        NameObject("/Registry"): TextStringObject("Adobe"),
                        NameObject("/Ordering"): TextStringObject("Identity"),
                        NameObject("/Supplement"): NumberObject(0),
                    }
                ),
                NameObject("/FontDescriptor"): add(descriptor),
                NameObject("/DW"): NumberObject(1000),
                NameObject("/W"): widths,
                NameObject("/CIDToGIDMap"): NameObject("/Identity"),
            }
        )
        to_unicode = DecodedStreamObject()
        to_unicode.set_data(font.to_unicode_cmap())
        type0 = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type0"),
                NameObject("/BaseFont"): NameObject("/" + font.name),
                NameObject("/Encoding"): NameObject("/Identity-H"),
                NameObject("/DescendantFonts"): ArrayObject([add(cid_font)]),
                NameObject("/ToUnicode"): add(to_unicode.flate_encode(9)),
            }
        )
        return add(type0)

    # -- the variable parts ------------------------------------------------------------------

    def _text(self, slot: TextSlot, text: str, *, left: float, top: float) -> bytes:
        size = slot.size
        x = (left + slot.x) * MM
        if slot.centred:
            x -= self.font.text_width(text, size) / 2
        y = (PAGE_HEIGHT - top - slot.baseline) * MM
        return b"BT %s %.1f Tf 0 g %.3f %.3f Td %s Tj ET" % (
            FONT_RESOURCE,
            size,
            x,
            y,
            self.font.encode(text),
        )

    @staticmethod
    def _qr(square: Square, data: str, *, left: float, top: float) -> bytes:
        return qr_path_ops(
            data,
            x=(left + square.x) * MM,
            y=(PAGE_HEIGHT - top - square.y - square.size) * MM,
            size=square.size * MM,
        )

    def _page(self, layout: str, ops: list[bytes]) -> None:
        content = DecodedStreamObject()
        content.set_data(b"q %s Do Q\n%s\n" % (self.form_names[layout], b"\n".join(ops)))
        page = self.writer.add_blank_page(1, 1)  # the real box is set just below
        page[NameObject("/MediaBox")] = self.media_box
        page[NameObject("/Resources")] = self.resources
        page[NameObject("/Contents")] = self.writer._add_object(
            content.flate_encode(CONTENT_COMPRESSION)
        )
        self.pages += 1

    def add_booklet(self, booklet: BookletToPrint) -> None:
        """The booklet's cover, then its cheques three to a page, in position order."""
        size = booklet.size
        self._page(
            cover_layout(size),
            [
                self._text(COVER.number, booklet.number, left=0, top=0),
                self._qr(COVER.qr, booklet.number, left=0, top=0),
            ],
        )
        layouts = booklet_layouts(size)[1:]
        for page_index, layout in enumerate(layouts):
            first = page_index * CHEQUES_PER_PAGE
            ops: list[bytes] = []
            for slot, code in enumerate(booklet.codes[first : first + CHEQUES_PER_PAGE]):
                top = CHEQUE.tops[slot]
                left = CHEQUE.left
                ops += [
                    self._text(CHEQUE.code, display_code(code), left=left, top=top),
                    self._text(CHEQUE.number, booklet.number, left=left, top=top),
                    self._text(CHEQUE.position, f"{first + slot + 1}/{size}", left=left, top=top),
                    self._qr(CHEQUE.qr, cheque_url(self.site_url, code), left=left, top=top),
                ]
            assert layout == cheques_layout(len(ops) // 4)
            self._page(layout, ops)

    def write(self, output: BinaryIO) -> None:
        self.writer.write(output)


def render_booklets(
    design: Design, booklets: Iterable[BookletToPrint], output: BinaryIO, *, title: str
) -> int:
    """Write the booklets, in the order given, as one PDF into ``output``; the page count."""
    document = BookletPdf(design, title=title)
    for booklet in booklets:
        document.add_booklet(booklet)
    document.write(output)
    return document.pages


__all__ = ["BookletPdf", "BookletToPrint", "render_booklets"]
