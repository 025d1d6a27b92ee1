"""Rule profiles per source format: a submission is held to every rule, extracts are not failed for fields their
format cannot carry, and extracts' dates are judged as of their own period."""

from __future__ import annotations

from datetime import date

import pytest

from libs.model import Source, SourceFormat
from libs.validation.catalog import ReasonCode, Severity
from libs.validation.profiles import FHIR_EOB, PROFILES, SUBMISSION, SYNPUF, Treatment, profile_for
from tests.factories import AS_OF, make_institutional_claim, make_professional_claim
from tests.validation.helpers import run, with_all_dates

R = ReasonCode


def _from(claim, fmt: SourceFormat, received: date | None = None):
    return claim.model_copy(update={"source": Source(format=fmt, file="f", received_date=received)})


def _severities(result) -> dict[ReasonCode, Severity]:
    return {issue.code: issue.severity for issue in result.issues}


def test_every_format_has_exactly_one_profile():
    formats = [fmt for profile in PROFILES for fmt in profile.formats]
    assert sorted(formats) == sorted(SourceFormat)
    assert profile_for(SourceFormat.X12_837P) is SUBMISSION
    assert profile_for("no-such-format") is SUBMISSION


def test_a_submission_without_billing_npi_and_pos_is_invalid():
    claim = make_professional_claim(billing_provider=None, place_of_service=None)
    claim = claim.model_copy(update={"lines": [line.model_copy(update={"place_of_service": None})
                                               for line in claim.lines]})
    result = run(_from(claim, SourceFormat.X12_837P))
    assert not result.is_valid
    assert _severities(result)[R.MISSING_BILLING_NPI] is Severity.ERROR
    assert _severities(result)[R.MISSING_PLACE_OF_SERVICE] is Severity.ERROR


@pytest.mark.parametrize("fmt", [SourceFormat.SYNPUF_CARRIER])
def test_a_synpuf_carrier_claim_without_npi_pos_units_or_charges_is_valid_with_warnings(fmt):
    claim = make_professional_claim(billing_provider=None, place_of_service=None, total_charge=None, payer=None)
    lines = [line.model_copy(update={"place_of_service": None, "units": None, "charge": None})
             for line in claim.lines]
    result = run(_from(claim.model_copy(update={"lines": lines}), fmt))
    assert result.is_valid, result.errors
    severities = _severities(result)
    for code in (R.MISSING_BILLING_NPI, R.MISSING_PLACE_OF_SERVICE, R.MISSING_TOTAL_CHARGE, R.UNITS_INVALID,
                 R.MISSING_LINE_CHARGE):
        assert severities[code] is Severity.WARNING, code
    assert R.MISSING_PAYER not in severities  # skipped: every DE-SynPUF claim is Medicare's
    warned = next(issue for issue in result.issues if issue.code is R.MISSING_BILLING_NPI)
    assert "research-extract" in warned.message


def test_an_institutional_synpuf_claim_without_type_of_bill_is_valid():
    claim = make_institutional_claim(type_of_bill=None)
    result = run(_from(claim, SourceFormat.SYNPUF_INPATIENT))
    assert result.is_valid, result.errors
    assert _severities(result)[R.MISSING_TYPE_OF_BILL] is Severity.WARNING


def test_an_eob_is_not_failed_for_a_missing_billing_provider_but_still_for_a_bad_code():
    claim = make_professional_claim(billing_provider=None)
    result = run(_from(claim, SourceFormat.FHIR_EOB))
    assert result.is_valid, result.errors
    bad = claim.model_copy(update={"lines": [claim.lines[0].model_copy(update={"procedure_code": "XYZ"})]})
    assert R.PROCEDURE_FORMAT in {i.code for i in run(_from(bad, SourceFormat.FHIR_EOB)).errors}


def test_an_old_extract_is_judged_as_of_its_own_period_a_submission_as_of_today():
    # ICD-10-CM codes (the factory's) were in effect in 2016; as of 2027 the claim is eleven years old.
    as_of = date(2027, 6, 1)
    old = with_all_dates(make_professional_claim(), date(2016, 3, 2))
    submission = run(_from(old, SourceFormat.X12_837P), as_of)
    assert {R.DATE_TOO_OLD, R.TIMELY_FILING_EXCEEDED} <= {i.code for i in submission.errors}
    for fmt in (SourceFormat.SYNPUF_CARRIER, SourceFormat.FHIR_EOB):
        extract = run(_from(old, fmt, received=date(2016, 4, 1)), as_of)
        codes = {i.code for i in extract.issues}
        assert R.DATE_TOO_OLD not in codes, fmt
        assert R.TIMELY_FILING_EXCEEDED not in codes, fmt  # skipped: adjudicated claims were filed in time
        assert extract.is_valid, (fmt, extract.errors)


def test_an_extract_is_still_judged_for_dates_in_the_future():
    future = with_all_dates(make_professional_claim(), date(AS_OF.year + 1, 1, 5))
    result = run(_from(future, SourceFormat.SYNPUF_CARRIER))
    assert R.DATE_IN_FUTURE in {i.code for i in result.errors}


def test_profiles_only_soften_errors_and_name_a_reason_for_each_code():
    for profile in (FHIR_EOB, SYNPUF):
        assert set(profile.treatments) == set(profile.reasons)
        for code, treatment in profile.treatments.items():
            assert treatment in (Treatment.WARN, Treatment.SKIP)
            assert profile.reasons[code]
