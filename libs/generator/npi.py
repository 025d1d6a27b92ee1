"""National Provider Identifier check digits, so that every generated NPI is well formed.

An NPI is 9 identifier digits plus a Luhn check digit computed over the digits prefixed with 80840 (the US health
industry issuer prefix, ISO 7812). The validation rules only warn on a failed check digit, but a realistic generator
must not produce NPIs that fail it by accident: the NPI_CHECK_DIGIT defect injector relies on clean NPIs elsewhere.
"""

from __future__ import annotations

NPI_PREFIX = "80840"


def _luhn_sum(digits: str, *, double_first: bool) -> int:
    """Luhn sum over `digits` read right to left; `double_first` says whether the rightmost digit is doubled."""
    total = 0
    double = double_first
    for char in reversed(digits):
        value = int(char)
        if double:
            value *= 2
            if value > 9:
                value -= 9
        total += value
        double = not double
    return total


def npi_check_digit(base: str) -> str:
    """The check digit for a 9-digit NPI base (the rightmost base digit is doubled, as the check digit follows it)."""
    if len(base) != 9 or not base.isdigit():
        raise ValueError(f"an NPI base must be 9 digits, found {len(base)} characters")
    total = _luhn_sum(NPI_PREFIX + base, double_first=True)
    return str((10 - total % 10) % 10)


def make_npi(base: str) -> str:
    """A 10-digit NPI with a correct check digit."""
    return base + npi_check_digit(base)


def npi_luhn_ok(npi: str) -> bool:
    """Whether a 10-digit NPI passes the Luhn check with the 80840 prefix."""
    return len(npi) == 10 and npi.isdigit() and _luhn_sum(NPI_PREFIX + npi, double_first=False) % 10 == 0
