"""The monospace font the variable parts are printed in, subset once per process.

Codes, booklet numbers and positions are drawn straight into the page content stream, so the
font is embedded by hand: a TrueType subset of DejaVu Sans Mono Bold (Debian's
``fonts-dejavu-core``) holding only the glyphs those texts use, as a Type0 / CIDFontType2 font
with Identity-H encoding (two bytes per glyph id), its widths (/W) and a ToUnicode CMap so that
text extraction (``pdftotext``, screen readers, copy and paste) gives the printed characters.
"""

from __future__ import annotations

import functools
import io
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

DEBIAN_PATH = Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf")
FONTCONFIG_PATTERN = "DejaVu Sans Mono:style=Bold"
# Everything the variable texts need: codes (Crockford symbols, dashes), booklet numbers
# (AP26-0001234), positions (3/10), plus a little room for amounts and labels.
CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-/ €,.:°"
# A subset's PDF name starts with six capital letters and a plus; fixed, so output is stable.
SUBSET_TAG = "APTICV"


class FontNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class EmbeddedFont:
    """A subset TrueType font and what a PDF writer needs to embed and use it."""

    name: str  # PostScript name with the subset tag, e.g. APTICV+DejaVuSansMono-Bold
    data: bytes  # the subset TrueType file (FontFile2)
    glyph_ids: dict[str, int]  # character -> glyph id in the subset (CID, Identity mapping)
    widths: dict[int, int]  # glyph id -> advance width in 1/1000 em
    bbox: tuple[int, int, int, int]  # in 1/1000 em
    ascent: int
    descent: int
    cap_height: int
    is_fixed_pitch: bool

    def encode(self, text: str) -> bytes:
        """``text`` as the hex string operand of ``Tj`` (Identity-H: two bytes per glyph)."""
        return b"<" + "".join(f"{self.glyph_ids[ch]:04X}" for ch in text).encode() + b">"

    def text_width(self, text: str, size: float) -> float:
        """Advance width of ``text`` at ``size`` points, in points."""
        return sum(self.widths[self.glyph_ids[ch]] for ch in text) * size / 1000

    def to_unicode_cmap(self) -> bytes:
        lines = [
            "/CIDInit /ProcSet findresource begin",
            "12 dict begin",
            "begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            "/CMapName /Adobe-Identity-UCS def",
            "/CMapType 2 def",
            "1 begincodespacerange",
            "<0000> <FFFF>",
            "endcodespacerange",
        ]
        pairs = sorted((gid, ch) for ch, gid in self.glyph_ids.items())
        for start in range(0, len(pairs), 100):  # at most 100 entries per block
            block = pairs[start : start + 100]
            lines.append(f"{len(block)} beginbfchar")
            lines.extend(f"<{gid:04X}> <{ord(ch):04X}>" for gid, ch in block)
            lines.append("endbfchar")
        lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
        return "\n".join(lines).encode()


def font_path() -> Path:
    """DejaVu Sans Mono Bold: Debian's path, else whatever fontconfig finds for it."""
    if DEBIAN_PATH.exists():
        return DEBIAN_PATH
    fc_match = shutil.which("fc-match")
    if fc_match:
        found = subprocess.run(  # noqa: S603 (fixed arguments, fc-match found on PATH)
            [fc_match, "-f", "%{file}", FONTCONFIG_PATTERN],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
        if found and Path(found).exists() and "mono" in Path(found).name.lower():
            return Path(found)
    raise FontNotFound(
        "DejaVu Sans Mono Bold is needed to print cheques: install the Debian package "
        "fonts-dejavu-core."
    )


@functools.cache
def monospace_font() -> EmbeddedFont:
    """The subset font, built once per process (fontTools takes a few tenths of a second)."""
    # recalcTimestamp=False keeps head.modified: the same subset gives the same bytes.
    font = TTFont(str(font_path()), recalcTimestamp=False)
    options = subset.Options()
    options.hinting = False
    options.layout_features = []
    options.name_IDs = [1, 2, 4, 6]
    options.notdef_outline = True
    options.drop_tables += ["FFTM"]  # FontForge's timestamps: not needed, not subsettable
    subsetter = subset.Subsetter(options=options)
    subsetter.populate(unicodes=[ord(ch) for ch in CHARACTERS])
    # fontTools logs every table it prunes at INFO: forty lines per worker, no news.
    subset_log = logging.getLogger("fontTools.subset")
    level = subset_log.level
    subset_log.setLevel(max(level, logging.WARNING))
    try:
        subsetter.subset(font)
    finally:
        subset_log.setLevel(level)
    buffer = io.BytesIO()
    font.save(buffer)

    scale = 1000 / font["head"].unitsPerEm
    cmap = font.getBestCmap()
    glyph_ids = {ch: font.getGlyphID(cmap[ord(ch)]) for ch in CHARACTERS if ord(ch) in cmap}
    missing = set(CHARACTERS) - set(glyph_ids)
    if missing:
        raise FontNotFound(f"The monospace font lacks {''.join(sorted(missing))!r}.")
    hmtx = font["hmtx"]
    widths = {
        gid: round(hmtx[font.getGlyphName(gid)][0] * scale) for gid in set(glyph_ids.values())
    }
    head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
    postscript_name = font["name"].getDebugName(6) or "DejaVuSansMono-Bold"
    return EmbeddedFont(
        name=f"{SUBSET_TAG}+{postscript_name}",
        data=buffer.getvalue(),
        glyph_ids=glyph_ids,
        widths=widths,
        bbox=tuple(round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)),
        ascent=round(hhea.ascent * scale),
        descent=round(hhea.descent * scale),
        cap_height=round(getattr(os2, "sCapHeight", hhea.ascent) * scale),
        is_fixed_pitch=bool(font["post"].isFixedPitch),
    )
