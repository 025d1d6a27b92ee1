"""The engine's contract: every catalog code has a rule, rules report only what they declare with the catalog's
severity, messages carry no PHI, and importing the catalog stays light."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest

from libs.codesets import load_codesets
from libs.model import Claim, Diagnosis, DiagnosisSystem, Provider
from libs.validation import validate_claim, validate_claims
from libs.validation.catalog import RULES_BY_CODE, ReasonCode
from libs.validation.context import build_context
from libs.validation.rules import RULES, rules_for
from tests.factories import AS_OF, SERVICE_DATE, make_institutional_claim, make_person, make_professional_claim
from tests.validation.helpers import with_line
from tests.validation.test_rules import FAILING


def test_every_catalog_code_is_declared_by_a_rule():
    declared = {code for rule in RULES for code in rule.codes}
    assert declared == set(ReasonCode)
    assert all(rules_for(code) for code in ReasonCode)


def test_rule_names_are_unique():
    assert len({rule.name for rule in RULES}) == len(RULES)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_rule_reports_only_declared_codes_with_catalog_severity(rule):
    codesets = load_codesets()
    for param in FAILING:
        claim, as_of = param.values[0], param.values[1]
        assert isinstance(claim, Claim)
        assert isinstance(as_of, date)
        for issue in rule(claim, build_context(claim, as_of, codesets)):
            assert issue.code in rule.codes
            assert issue.severity is RULES_BY_CODE[issue.code].severity


def test_messages_never_carry_phi():
    person = make_person(member_id="SYN000123456", last_name="TESTPATIENT", first_name="ALEX",
                         birth_date=date(2027, 3, 14))
    claim = make_professional_claim(
        patient=person,
        subscriber=person,
        # PHI in the wrong fields: a name typed as codes, an SSN and a phone number typed as NPIs.
        diagnoses=[Diagnosis(code="TESTPATIENT", system=DiagnosisSystem.ICD10CM),
                   Diagnosis(code="ALEX", system=DiagnosisSystem.ICD9CM, present_on_admission="TESTPATIENT")],
        rendering_provider=Provider(npi="123456789"),
        referring_provider=Provider(npi="2125550100"),
        place_of_service="TESTPATIENT",
        type_of_bill="SYN000123456",
        frequency_code="TESTPATIENT",
    )
    claim = with_line(claim, 0, procedure_code="TESTPATIENT", modifiers=["SYN000123456"], revenue_code="ALEXQ")
    result = validate_claim(claim, AS_OF)
    assert len(result.issues) > 10
    text = " ".join(issue.message for issue in result.issues)
    for secret in ("TESTPATIENT", "ALEX", "SYN000123456", "2027-03-14", "123456789", "2125550100", "SAMPLETOWN",
                   "17111", "1 SYNTHETIC WAY"):
        assert secret not in text


def test_codes_are_quoted_in_messages():
    result = validate_claim(with_line(make_professional_claim(), 0, procedure_code="9921"), AS_OF)
    assert "'9921'" in result.issues[0].message
    assert "line 1" in result.issues[0].message


def test_issues_come_in_rule_order():
    claim = make_professional_claim(billing_provider=None, total_charge=Decimal("1"))
    codes = validate_claim(claim, AS_OF).codes
    assert codes == [ReasonCode.MISSING_BILLING_NPI, ReasonCode.TOTAL_CHARGE_MISMATCH]


def test_validate_claims_streams_one_result_per_claim():
    claims = [make_professional_claim(), make_institutional_claim(lines=[]), make_professional_claim(claim_id="X2")]
    results = list(validate_claims(iter(claims), AS_OF))
    assert [r.claim_id for r in results] == ["PCLM0001", "ICLM0001", "X2"]
    assert [r.is_valid for r in results] == [True, False, True]


def test_the_rules_do_not_mutate_the_claim():
    claim = make_professional_claim(service_date_from=SERVICE_DATE, total_charge=Decimal("2"))
    before = claim.model_dump()
    validate_claim(claim, AS_OF)
    assert claim.model_dump() == before


def test_importing_the_catalog_does_not_load_the_code_sets():
    code = ("import sys, libs.validation, libs.validation.catalog; "
            "assert 'libs.codesets' not in sys.modules and 'simple_icd_10_cm' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
