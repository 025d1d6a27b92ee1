"""NPI check digit: Luhn over the 80840 prefix and the first nine digits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.validation import npi_luhn_ok
from libs.validation.npi import npi_format_ok
from tests.factories import VALID_NPI, VALID_NPI_2


@pytest.mark.parametrize("npi", [VALID_NPI, VALID_NPI_2, "1912301953", "2000000002"])
def test_known_good_check_digits(npi):
    assert npi_luhn_ok(npi)


@pytest.mark.parametrize("npi", ["1234567890", "1245319590", "1912301957"])
def test_wrong_check_digit(npi):
    assert not npi_luhn_ok(npi)


FULL_WIDTH_NPI = "".join(chr(0xFF10 + int(digit)) for digit in "1234567893")


@pytest.mark.parametrize("npi", ["", "123456789", "12345678931", "12345678A3", FULL_WIDTH_NPI])
def test_not_ten_ascii_digits_is_never_ok(npi):
    assert not npi_luhn_ok(npi)
    assert not npi_format_ok(npi)


@pytest.mark.parametrize(("npi", "ok"), [("1234567893", True), ("2234567890", True), ("3234567890", False),
                                         ("0234567890", False)])
def test_format_requires_first_digit_1_or_2(npi, ok):
    assert npi_format_ok(npi) is ok


@given(st.from_regex(r"[12][0-9]{8}", fullmatch=True))
def test_exactly_one_check_digit_completes_a_base(base):
    assert sum(npi_luhn_ok(f"{base}{digit}") for digit in range(10)) == 1


@given(st.from_regex(r"[12][0-9]{8}", fullmatch=True), st.integers(0, 9), st.integers(1, 9))
def test_a_single_digit_typo_is_caught(base, position, delta):
    npi = next(f"{base}{d}" for d in range(10) if npi_luhn_ok(f"{base}{d}"))
    typo = npi[:position] + str((int(npi[position]) + delta) % 10) + npi[position + 1:]
    assert not npi_luhn_ok(typo)
