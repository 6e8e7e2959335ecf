"""Cheque codes: typos are caught by the check symbol; codes are random, not sequential."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from vouchers import codes

symbols = st.sampled_from(codes.ALPHABET)
bodies = st.text(alphabet=codes.ALPHABET, min_size=12, max_size=12)


def _code(body: str) -> str:
    return body + codes.check_symbol(body)


@given(bodies)
def test_a_code_with_its_check_symbol_is_valid(body):
    assert codes.is_valid(_code(body))


@given(bodies, st.integers(0, 12), symbols)
def test_every_single_symbol_substitution_is_caught(body, index, symbol):
    code = _code(body)
    typo = code[:index] + symbol + code[index + 1 :]
    assert codes.is_valid(typo) == (typo == code)


@given(bodies, st.integers(0, 11))
def test_every_adjacent_transposition_is_caught(body, index):
    code = _code(body)
    swapped = code[:index] + code[index + 1] + code[index] + code[index + 2 :]
    assert codes.is_valid(swapped) == (swapped == code)


@given(bodies, st.sampled_from(["lower", "spaces", "dashes", "aliases", "url"]))
def test_normalisation_round_trips_what_people_type_and_scanners_read(body, style):
    code = _code(body)
    printed = codes.display(code)
    typed = {
        "lower": printed.lower(),
        "spaces": " " + printed.replace("-", " ") + " ",
        "dashes": printed,
        "aliases": printed.replace("0", "O").replace("1", "l"),
        "url": f"https://aptic.example.fr/c/{code}",
    }[style]
    assert codes.parse(typed) == code
    assert codes.normalise(codes.display(code)) == code


def test_the_printed_form_groups_by_four():
    assert codes.display("ABCDEFGHJKMNP") == "ABCD-EFGH-JKMN-P"


def test_wrong_lengths_and_foreign_symbols_are_invalid():
    code = codes.new_code()
    assert not codes.is_valid(code[:-1])
    assert not codes.is_valid(code + "0")
    assert codes.parse(code[:5] + "U" + code[6:]) is None
    assert codes.parse("") is None


def test_codes_are_random_not_sequential():
    batch = codes.new_codes(5000)
    assert len(set(batch)) == 5000
    assert all(codes.is_valid(c) for c in batch)
    # Consecutive codes share no more leading symbols than chance (1 in 32 per symbol).
    shared_prefix = sum(a[:2] == b[:2] for a, b in pairwise(batch))
    assert shared_prefix < 20
    # Every symbol appears at every position: no structure to predict the next code.
    for position in range(codes.BODY_LENGTH):
        assert {c[position] for c in batch} == set(codes.ALPHABET)
    numbers = [int.from_bytes(c.encode(), "big") for c in batch]
    increasing = sum(b > a for a, b in pairwise(numbers))
    assert 0.4 < increasing / len(numbers) < 0.6


def test_masking_keeps_only_the_end_readable():
    assert codes.mask("ABCDEFGHJKMNP") == "XXXX-XXXX-JKMN-P"


@given(bodies)
def test_the_bulk_check_symbol_equals_the_reference_one(body):
    assert codes._check_fast(body) == codes.check_symbol(body)
