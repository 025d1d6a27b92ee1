"""NPI rules: the National Provider Identifier's format (an error) and its check digit (a warning).

An NPI is 10 digits whose first digit is 1 or 2. Its last digit is a Luhn check digit computed over the card-issuer
prefix 80840 followed by the first nine digits (ISO/IEC 7812, as CMS specifies in the NPI final rule). Official sample
files routinely carry NPIs that fail the check digit, so a bad check digit is only a warning: rejecting those claims
would reject real submissions that payers accept and correct later.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from libs.model import Claim
from libs.validation.catalog import ReasonCode
from libs.validation.catalog import ReasonCode as R
from libs.validation.context import RuleContext
from libs.validation.issues import Issue, make_issue
from libs.validation.registry import rule

# The Luhn sum of the prefix 80840 as it sits in front of a 9-digit base (the constant CMS publishes).
_PREFIX_80840_SUM = 24
_HEADER_ROLES = ("billing_provider", "rendering_provider", "attending_provider", "referring_provider", "facility")


def npi_format_ok(npi: str) -> bool:
    """Whether `npi` is 10 ASCII digits starting with 1 or 2."""
    return len(npi) == 10 and npi.isascii() and npi.isdigit() and npi[0] in "12"


def npi_luhn_ok(npi: str) -> bool:
    """Whether the 10th digit of `npi` is the Luhn check digit of 80840 + its first nine digits.

    Returns False for anything that is not 10 ASCII digits.
    """
    if len(npi) != 10 or not (npi.isascii() and npi.isdigit()):
        return False
    return _check_digit(npi) == ord(npi[9]) - 48


def _check_digit(npi: str) -> int:
    """The Luhn check digit of 80840 + the first nine digits of a 10-digit NPI."""
    total = _PREFIX_80840_SUM
    # Double every second digit counting leftwards from the rightmost digit of the 9-digit base.
    for position, char in enumerate(reversed(npi[:9])):
        digit = ord(char) - 48
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def _describe_bad_format(npi: str) -> str:
    """What is wrong with a malformed NPI, without echoing it (a misplaced value may be an SSN or a phone number)."""
    if len(npi) != 10:
        return f"found {len(npi)} characters"
    if not (npi.isascii() and npi.isdigit()):
        return "found non-digit characters"
    return f"found first digit {npi[0]}"


def _provider_npis(claim: Claim) -> Iterator[tuple[str, str]]:
    """(field path, NPI) for every provider NPI present on the header and on the lines."""
    for role in _HEADER_ROLES:
        provider = getattr(claim, role)
        # A blank NPI counts as absent (MISSING_BILLING_NPI covers the billing provider).
        if provider is not None and provider.npi and provider.npi.strip():
            yield f"{role}.npi", provider.npi
    for index, line in enumerate(claim.lines):
        if line.rendering_provider is not None and line.rendering_provider.npi and line.rendering_provider.npi.strip():
            yield f"lines[{index}].rendering_provider.npi", line.rendering_provider.npi


@lru_cache(maxsize=65536)
def _npi_problem(npi: str) -> tuple[ReasonCode, str] | None:
    """The code and message for a bad NPI, or None. Cached: a payer sees the same few thousand providers all day."""
    if not npi_format_ok(npi):
        return R.NPI_FORMAT, f"expected 10 digits starting with 1 or 2; {_describe_bad_format(npi)}"
    if not npi_luhn_ok(npi):
        return R.NPI_CHECK_DIGIT, f"expected check digit {_check_digit(npi)} (Luhn with prefix 80840); found {npi[9]}"
    return None


@rule(R.NPI_FORMAT, R.NPI_CHECK_DIGIT)
def provider_npis_valid(claim: Claim, ctx: RuleContext) -> Iterator[Issue]:
    """Every provider NPI present must be well formed; a failed check digit is reported as a warning."""
    for path, npi in _provider_npis(claim):
        problem = _npi_problem(npi)
        if problem is not None:
            yield make_issue(problem[0], path, problem[1])


RULES = (provider_npis_valid,)
