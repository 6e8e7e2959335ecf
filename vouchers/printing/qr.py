"""QR codes as PDF path operators: a few hundred filled rectangles, no image.

segno builds the matrix; with a fixed mask (``mask=0``) it skips scoring the eight masks, which
is most of its cost (~0.5 ms instead of ~5 ms a code), and the symbol stays valid: the mask only
spreads dark and light modules for readers, it is not chosen for correctness.

Each row's horizontal runs of dark modules become one ``re`` each, all filled by a single ``f``:
one path, so a rasteriser leaves no seam between neighbouring rectangles.
"""

from __future__ import annotations

import re

import segno

QUIET_ZONE = 4  # modules of white around the symbol, required by ISO/IEC 18004
_DARK_RUN = re.compile(rb"\x01+")


def qr_matrix(data: str) -> tuple[bytearray, ...]:
    """The module matrix (1 = dark) of a QR code, error correction M, fixed mask 0."""
    return segno.make(data, error="m", mask=0, micro=False).matrix


def qr_modules(data: str) -> int:
    """Side of the symbol in modules, quiet zone included."""
    return len(qr_matrix(data)) + 2 * QUIET_ZONE


def qr_path_ops(data: str, *, x: float, y: float, size: float) -> bytes:
    """Operators that paint the QR for ``data`` in black.

    The square of side ``size`` points with its lower-left corner at (``x``, ``y``) holds the
    whole symbol including its quiet zone, which is left unpainted (the page is white there).
    """
    matrix = qr_matrix(data)
    module = size / (len(matrix) + 2 * QUIET_ZONE)
    left = x + QUIET_ZONE * module
    top = y + size - QUIET_ZONE * module
    # In module units, y downwards from the symbol's top-left corner: integer coordinates only.
    ops = [b"q 0 g %.5f 0 0 %.5f %.3f %.3f cm" % (module, -module, left, top)]
    for row_index, row in enumerate(matrix):
        for run in _DARK_RUN.finditer(row):
            start = run.start()
            ops.append(b"%d %d %d 1 re" % (start, row_index, run.end() - start))
    ops.append(b"f Q")
    return b"\n".join(ops)
