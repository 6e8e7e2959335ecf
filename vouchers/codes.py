"""Cheque codes: 12 random Crockford base32 symbols (60 bits) plus one check symbol.

The check symbol comes from the Damm algorithm over the quasigroup x*y = a·x + y in GF(32)
(a = 2, field polynomial x⁵ + x² + 1). That quasigroup is totally anti-symmetric, so every
single-symbol substitution and every adjacent transposition changes the result: a mistyped code
is refused before any database look-up. The check symbol uses the same 32 symbols, so codes
never contain Crockford's awkward extra check characters.
"""

from __future__ import annotations

import base64
import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BODY_LENGTH = 12
CODE_LENGTH = BODY_LENGTH + 1
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
# Crockford's reading rules: O is zero; I and L are one. Case does not matter.
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})
_SEPARATORS = re.compile(r"[\s\-_.]+")
_POLYNOMIAL = 0b100101  # x^5 + x^2 + 1, irreducible over GF(2)
_A = 2


def _gf32_multiply(x: int, y: int) -> int:
    product = 0
    while y:
        if y & 1:
            product ^= x
        y >>= 1
        x <<= 1
        if x & 0b100000:
            x ^= _POLYNOMIAL
    return product


_TIMES_A = [_gf32_multiply(_A, x) for x in range(32)]


def _interim(values: list[int]) -> int:
    state = 0
    for value in values:
        state = _TIMES_A[state] ^ value  # state * value = a·state + value
    return state


def check_symbol(body: str) -> str:
    """The symbol c with interim(body) * c = 0, i.e. c = a·interim."""
    return ALPHABET[_TIMES_A[_interim([_VALUE[s] for s in body])]]


def is_valid(code: str) -> bool:
    """True when ``code`` (normalised, 13 symbols) passes the check."""
    if len(code) != CODE_LENGTH or any(s not in _VALUE for s in code):
        return False
    return _interim([_VALUE[s] for s in code]) == 0


def normalise(raw: str) -> str:
    """Upper case, no spaces or dashes, O→0 and I/L→1. A QR URL (…/c/<code>) gives its code."""
    text = (raw or "").strip()
    if "/c/" in text:
        text = text.rsplit("/c/", 1)[1].split("?")[0].strip("/")
    return _SEPARATORS.sub("", text).upper().translate(_ALIASES)


def parse(raw: str) -> str | None:
    """The normalised code, or None when its format or check symbol is wrong."""
    code = normalise(raw)
    return code if is_valid(code) else None


def new_code() -> str:
    bits = secrets.randbits(5 * BODY_LENGTH)
    body = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(BODY_LENGTH))
    return body + check_symbol(body)


# RFC 4648 base32 symbols mapped onto Crockford's, to encode random bytes in C, not per symbol.
_RFC_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())
# Three symbols at a time: ((s * x) * y) * z = a³·s + a²·x + a·y + z, from two tables.
_TIMES_A3 = [_TIMES_A[_TIMES_A[_TIMES_A[x]]] for x in range(32)]
_TRIPLE = {
    x + y + z: _TIMES_A[_TIMES_A[_VALUE[x]]] ^ _TIMES_A[_VALUE[y]] ^ _VALUE[z]
    for x in ALPHABET
    for y in ALPHABET
    for z in ALPHABET
}


def _check_fast(body: str) -> str:
    """Same result as :func:`check_symbol`, four table steps instead of twelve."""
    state = 0
    for i in range(0, BODY_LENGTH, 3):
        state = _TIMES_A3[state] ^ _TRIPLE[body[i : i + 3]]
    return ALPHABET[_TIMES_A[state]]


def new_codes(count: int) -> list[str]:
    """``count`` distinct random codes (the database still enforces uniqueness across batches).

    Each code takes 60 bits from 10 random bytes (16 base32 symbols, the first 12 kept).
    """
    drawn: dict[str, None] = {}  # keeps the drawing order
    while len(drawn) < count:
        missing = count - len(drawn)
        symbols = base64.b32encode(secrets.token_bytes(10 * missing)).translate(_RFC_TO_CROCKFORD)
        text = symbols.decode()
        bodies = [text[i : i + BODY_LENGTH] for i in range(0, 16 * missing, 16)]
        drawn.update(dict.fromkeys(body + _check_fast(body) for body in bodies))
    return list(drawn)


def display(code: str) -> str:
    """Printed form: ABCD-EFGH-JKMN-P."""
    return "-".join((code[0:4], code[4:8], code[8:12], code[12:]))


def mask(code: str) -> str:
    """For statements and logs: only the last five symbols stay readable."""
    return "XXXX-XXXX-" + display(code)[-6:]
