"""Each fraud screen on hand-made claims: it alerts on its scenario and stays quiet on the legitimate look-alike."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from libs.codesets import load_codesets
from libs.fraud.catalog import FraudCode
from libs.fraud.rules import (
    effective_claims,
    screen_batch,
    screen_claim,
    screen_exact_duplicates,
    screen_excess_units,
    screen_excluded_provider,
    screen_impossible_day,
    screen_outlier_charge,
    screen_service_after_death,
    screen_unbundling,
    screen_upcoding,
    upcoding_score,
)
from libs.model import Claim, Provider, ServiceLine
from tests.factories import SERVICE_DATE, VALID_NPI_2, make_person, make_professional_claim

EXCLUDED_SINCE_2012 = "1290554124"
EXCLUDED_UNTIL_2021 = "1653213359"
THERAPIST_NPI = "1234567893"


@pytest.fixture(scope="module")
def codesets():
    return load_codesets()


def _line(number: int, code: str, charge: str, units: str = "1", **extra) -> ServiceLine:
    return ServiceLine(line_number=number, procedure_code=code, procedure_system="HCPCS", units=Decimal(units),
                       charge=Decimal(charge), service_date_from=extra.pop("day", SERVICE_DATE),
                       service_date_to=None, diagnosis_pointers=[1], **extra)


def _claim(claim_id: str, lines: list[ServiceLine], **overrides) -> Claim:
    total = sum((line.charge for line in lines if line.charge is not None), Decimal("0.00"))
    return make_professional_claim(claim_id=claim_id, lines=lines, total_charge=total, **overrides)


def _rules(alerts) -> list[tuple[str, FraudCode]]:
    return [(alert.claim_id, alert.rule) for alert in alerts]


# ---------------------------------------------------------------------------------------------------- per claim


def test_factory_claims_raise_no_alert(codesets):
    claims = [make_professional_claim(), make_professional_claim(claim_id="PCLM0002", total_charge=Decimal("1.00"))]
    assert screen_batch(claims, codesets) == []


def test_excluded_rendering_or_billing_npi_in_effect_is_alerted(codesets):
    rendering = make_professional_claim(rendering_provider=Provider(npi=EXCLUDED_SINCE_2012, entity_type="1"))
    billing = make_professional_claim(billing_provider=Provider(npi=EXCLUDED_SINCE_2012, entity_type="2"))
    assert _rules(screen_excluded_provider(rendering, codesets)) == [("PCLM0001", FraudCode.EXCLUDED_PROVIDER)]
    alert = screen_excluded_provider(billing, codesets)[0]
    assert alert.detail.startswith(f"billing NPI {EXCLUDED_SINCE_2012} is excluded (1128a1)")


def test_an_exclusion_that_ended_before_the_service_is_not_alerted(codesets):
    reinstated = make_professional_claim(rendering_provider=Provider(npi=EXCLUDED_UNTIL_2021, entity_type="1"))
    assert screen_excluded_provider(reinstated, codesets) == []


def test_service_after_death_is_alerted_without_revealing_the_death_date():
    death = SERVICE_DATE - timedelta(days=17)
    claim = make_professional_claim(patient=make_person(death_date=death))
    alerts = screen_service_after_death(claim)
    assert _rules(alerts) == [("PCLM0001", FraudCode.SERVICE_AFTER_DEATH)]
    assert str(death) not in alerts[0].detail
    assert "17" not in alerts[0].detail
    assert "SYN000123456" not in alerts[0].detail


def test_service_on_or_before_death_is_not_alerted_and_a_registry_is_consulted():
    on_the_day = make_professional_claim(patient=make_person(death_date=SERVICE_DATE))
    assert screen_service_after_death(on_the_day) == []
    registry = {"SYN000123456": SERVICE_DATE - timedelta(days=1)}
    assert len(screen_service_after_death(make_professional_claim(), registry)) == 1


def test_outlier_charge_is_judged_per_unit_against_the_median(codesets):
    normal = _claim("A", [_line(1, "99213", "180.00"), _line(2, "J1100", "60.00", units="10")])
    outlier = _claim("B", [_line(1, "99213", "2000.00")])  # 16x the 125.00 median
    assert screen_outlier_charge(normal, codesets) == []
    alerts = screen_outlier_charge(outlier, codesets)
    assert _rules(alerts) == [("B", FraudCode.OUTLIER_CHARGE)]
    assert "16.0x the median 125.00" in alerts[0].detail


def test_units_above_the_mue_limit_are_alerted(codesets):
    at_limit = _claim("A", [_line(1, "36415", "24.00", units="2")])  # MUE 2
    above = _claim("B", [_line(1, "99213", "250.00", units="2")])  # MUE 1
    assert screen_excess_units(at_limit, codesets) == []
    assert _rules(screen_excess_units(above, codesets)) == [("B", FraudCode.EXCESS_UNITS)]


def test_voids_are_not_screened(codesets):
    void = make_professional_claim(frequency_code="8", original_claim_id="X",
                                   patient=make_person(death_date=SERVICE_DATE - timedelta(days=3)))
    assert screen_claim(void, codesets) == []


# ---------------------------------------------------------------------------------------------------- batches


def test_exact_duplicate_alerts_the_repeat_not_the_first():
    first = make_professional_claim(claim_id="C1")
    repeat = make_professional_claim(claim_id="C2")
    alerts = screen_exact_duplicates([first, repeat])
    assert _rules(alerts) == [("C2", FraudCode.EXACT_DUPLICATE)]
    assert "as claim C1" in alerts[0].detail


def test_replacements_and_different_amounts_are_not_duplicates():
    first = make_professional_claim(claim_id="C1")
    replacement = make_professional_claim(claim_id="C2", frequency_code="7", original_claim_id="C1")
    other_amount = make_professional_claim(claim_id="C3", total_charge=Decimal("165.51"))
    assert screen_exact_duplicates([first, replacement, other_amount]) == []


def _therapy_claim(claim_id: str, member: str, day: date = SERVICE_DATE) -> Claim:
    return _claim(claim_id, [_line(1, "97110", "192.00", units="4", day=day)],  # 4 x 15 = 60 timed minutes
                  rendering_provider=Provider(npi=THERAPIST_NPI, taxonomy="225100000X", entity_type="1"),
                  patient=make_person(member_id=member), subscriber=make_person(member_id=member),
                  service_date_from=day, service_date_to=day)


def test_more_timed_minutes_than_a_day_alerts_every_claim_of_that_day(codesets):
    burst = [_therapy_claim(f"T{i}", f"M{i}") for i in range(25)]  # 1500 minutes
    other_day = _therapy_claim("T99", "M99", SERVICE_DATE + timedelta(days=1))
    alerts = screen_impossible_day([*burst, other_day], codesets)
    assert {claim_id for claim_id, _ in _rules(alerts)} == {claim.claim_id for claim in burst}
    assert "billed 1500 timed minutes" in alerts[0].detail


def test_a_full_but_possible_day_is_not_alerted_and_voided_claims_do_not_count(codesets):
    day = [_therapy_claim(f"T{i}", f"M{i}") for i in range(24)]  # exactly 1440 minutes
    assert screen_impossible_day(day, codesets) == []
    extra = _therapy_claim("T24", "M24")
    void = extra.model_copy(update={"claim_id": "V1", "frequency_code": "8", "original_claim_id": "T24"})
    assert screen_impossible_day([*day, extra, void], codesets) == []
    assert [c.claim_id for c in effective_claims([extra, void])] == []


def _visit(claim_id: str, code: str) -> Claim:
    return _claim(claim_id, [_line(1, code, "200.00")],
                  rendering_provider=Provider(npi=VALID_NPI_2, taxonomy="207Q00000X", entity_type="1"))


def test_a_provider_billing_mostly_level_five_is_flagged_on_every_visit(codesets):
    visits = [_visit(f"V{i}", "99215" if i % 10 else "99213") for i in range(40)]  # 90% level 5 vs 5% expected
    alerts = screen_upcoding(visits, codesets)
    assert len(alerts) == 40
    assert "Family Medicine" in alerts[0].detail
    assert "expects 5%" in alerts[0].detail


def test_an_expected_mix_or_too_few_visits_is_not_flagged(codesets):
    expected_mix = [_visit(f"V{i}", ("99212", "99213", "99213", "99214", "99215")[i % 5]) for i in range(100)]
    few = [_visit(f"F{i}", "99215") for i in range(10)]
    assert screen_upcoding(expected_mix, codesets) == []
    assert screen_upcoding(few, codesets) == []


def test_upcoding_score_handles_a_specialty_that_never_bills_level_five():
    excess, z = upcoding_score(visits=30, highest=20, expected_share=0.0)
    assert excess == pytest.approx(2 / 3)
    assert z == float("inf")
    assert upcoding_score(visits=30, highest=0, expected_share=0.0) == (0.0, 0.0)


def test_unbundled_pair_alerts_the_claim_with_the_bundled_code(codesets):
    same_claim = _claim("U1", [_line(1, "93000", "60.00"), _line(2, "93005", "35.00")])
    assert _rules(screen_unbundling([same_claim], codesets)) == [("U1", FraudCode.UNBUNDLING)]
    column1 = _claim("U2", [_line(1, "80053", "48.00")])
    column2 = _claim("U3", [_line(1, "80048", "35.00")])
    assert _rules(screen_unbundling([column1, column2], codesets)) == [("U3", FraudCode.UNBUNDLING)]


def test_pair_on_different_days_or_with_a_distinct_service_modifier_is_not_alerted(codesets):
    next_day = SERVICE_DATE + timedelta(days=1)
    apart = [_claim("A", [_line(1, "93000", "60.00")]),
             _claim("B", [_line(1, "93005", "35.00", day=next_day)], service_date_from=next_day,
                    service_date_to=next_day)]
    assert screen_unbundling(apart, codesets) == []
    # 45378/45330 has modifier indicator 1: modifier 59 documents a distinct procedure.
    distinct = _claim("C", [_line(1, "45378", "1250.00"), _line(2, "45330", "520.00", modifiers=["59"])])
    assert screen_unbundling([distinct], codesets) == []
    # 93000/93005 has indicator 0: no modifier lets it through.
    no_bypass = _claim("D", [_line(1, "93000", "60.00"), _line(2, "93005", "35.00", modifiers=["59"])])
    assert len(screen_unbundling([no_bypass], codesets)) == 1


def test_screen_batch_returns_alerts_in_claim_order(codesets):
    dup_a = make_professional_claim(claim_id="C1")
    outlier = _claim("C2", [_line(1, "99213", "2000.00")])
    dup_b = make_professional_claim(claim_id="C3")
    alerts = screen_batch([dup_a, outlier, dup_b], codesets)
    assert _rules(alerts) == [("C2", FraudCode.OUTLIER_CHARGE), ("C3", FraudCode.EXACT_DUPLICATE)]
    assert alerts[0].to_dict()["rule"] == "FRAUD_OUTLIER_CHARGE"
