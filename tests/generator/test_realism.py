"""Clean generated claims look like a real payer's intake and are valid by construction."""

from __future__ import annotations

import random
import statistics
from collections import Counter
from datetime import timedelta
from decimal import Decimal

from libs.generator import GeneratorConfig
from libs.generator.npi import make_npi, npi_check_digit, npi_luhn_ok
from libs.generator.population import CITIES, FIRST_NAMES, LAST_NAME_ROOTS, build_population
from libs.generator.reference import billable_diagnoses
from libs.model import ClaimType
from tests.generator.conftest import CLEAN_CONFIG


def _npis(claim):
    providers = [claim.billing_provider, claim.rendering_provider, claim.attending_provider]
    return [p.npi for p in providers if p is not None and p.npi]


def test_npi_check_digit_matches_the_published_example():
    # CMS's worked example: base 123456789 with prefix 80840 has check digit 3.
    assert npi_check_digit("123456789") == "3"
    assert npi_luhn_ok(make_npi("298765432"))
    assert not npi_luhn_ok("1234567890")


def test_every_provider_npi_is_ten_digits_and_passes_luhn(clean_sample):
    npis = [npi for claim, _ in clean_sample for npi in _npis(claim)]
    assert npis
    assert all(len(npi) == 10 and npi[0] in "12" and npi_luhn_ok(npi) for npi in npis)


def test_every_diagnosis_is_a_billable_icd10cm_code(clean_sample, codesets):
    codes = {dx.code for claim, _ in clean_sample for dx in claim.diagnoses}
    assert len(codes) > 20
    assert all(codesets.icd10cm.is_billable(code) for code in codes)


def test_profile_codes_that_became_headers_are_replaced_by_billable_children(codesets):
    # M54.5 was expanded in 2021 and R51 in 2020: neither is billable any more.
    assert billable_diagnoses(("M545", "R51", "I10"), codesets) == ("M5450", "M5451", "M5459", "R510", "R519", "I10")


def test_service_and_receipt_dates_fall_before_the_anchor_date(clean_sample):
    anchor = CLEAN_CONFIG.anchor_date
    earliest = anchor - timedelta(days=CLEAN_CONFIG.window_days)
    for claim, _ in clean_sample:
        assert earliest <= claim.service_date_from <= claim.service_date_to < anchor
        received = claim.source.received_date
        assert received is not None
        assert claim.service_date_to < received <= anchor
        assert all(claim.service_date_from <= line.service_date_from <= claim.service_date_to for line in claim.lines)


def test_mix_of_professional_and_institutional_bills_with_real_codes(clean_sample, codesets):
    types = Counter(claim.claim_type for claim, _ in clean_sample)
    assert types[ClaimType.PROFESSIONAL] > 3 * types[ClaimType.INSTITUTIONAL] > 0
    bills = Counter(claim.type_of_bill[:2] for claim, _ in clean_sample if claim.type_of_bill)
    assert {"11", "13"} <= set(bills)
    for claim, _ in clean_sample:
        if claim.claim_type is ClaimType.INSTITUTIONAL:
            assert claim.place_of_service is None
            assert all(codesets.revenue_codes.is_valid(line.revenue_code) for line in claim.lines)
            if claim.type_of_bill.startswith("11"):
                assert claim.admission_date == claim.service_date_from
                assert claim.drg_code
        else:
            assert codesets.place_of_service.is_valid(claim.place_of_service, claim.service_date_from)
            assert all(line.revenue_code is None and line.procedure_code for line in claim.lines)


def test_totals_add_up_and_units_respect_the_mue_limits(clean_sample, codesets):
    for claim, _ in clean_sample:
        assert claim.total_charge == sum(line.charge for line in claim.lines)
        for line in claim.lines:
            assert line.units > 0
            limit = codesets.mue_limit(line.procedure_code) if line.procedure_code else None
            assert limit is None or line.units <= limit


def test_charges_are_right_skewed_around_the_procedure_median(clean_sample):
    office_visits = [line.charge for claim, _ in clean_sample for line in claim.lines
                     if line.procedure_code == "99213" and claim.claim_type is ClaimType.PROFESSIONAL]
    assert len(office_visits) > 100
    median = statistics.median(office_visits)
    assert Decimal("110") < median < Decimal("140")  # the table's median is 125.00
    assert statistics.mean(office_visits) > median  # lognormal: the mean sits above the median
    assert len(set(office_visits)) > 0.9 * len(office_visits)  # real cents, not a price list


def test_replacements_and_voids_reference_an_earlier_generated_claim(clean_sample):
    seen: set[str] = set()
    follow_ups: Counter[str] = Counter()
    for claim, _ in clean_sample:
        if claim.frequency_code in ("7", "8"):
            follow_ups[claim.frequency_code] += 1
            assert claim.original_claim_id in seen
            if claim.type_of_bill:
                assert claim.type_of_bill[-1] == claim.frequency_code
        else:
            assert claim.original_claim_id is None
        seen.add(claim.claim_id)
    assert follow_ups["7"] > 10
    assert follow_ups["8"] > 5


def test_source_locates_each_claim_in_the_run(clean_sample):
    for number, (claim, _) in enumerate(clean_sample, start=1):
        assert claim.source.format.value == "synthetic"
        assert claim.source.locator == f"claim {number}"
        assert claim.claim_id == f"SYN{CLEAN_CONFIG.seed}-{number:09d}"


def test_members_are_obviously_synthetic(clean_sample):
    for claim, _ in clean_sample[:300]:
        for person in (claim.patient, claim.subscriber):
            assert person.first_name in FIRST_NAMES
            assert person.last_name.startswith(LAST_NAME_ROOTS)
            assert "SYNTHETIC" in person.address.line1
            assert person.address.city in CITIES
            assert person.phone.startswith("55555501")


def test_clean_claims_never_serve_a_member_after_death(clean_sample):
    deceased = [claim for claim, _ in clean_sample if claim.patient.death_date is not None]
    assert deceased  # the population has deaths to screen against
    assert all(claim.service_date_to <= claim.patient.death_date for claim in deceased)


def test_population_has_eligibility_spans_deaths_and_every_specialty(codesets):
    config = GeneratorConfig(count=20_000, seed=3)
    population = build_population(random.Random(3), config, codesets, scenario_count=8)
    assert {p.profile.specialty for p in population.practitioners} == {s.specialty for s in codesets.specialties}
    assert sum(p.upcoder for p in population.practitioners) >= 1
    assert population.deceased_members
    for member in population.members:
        start, end = member.service_span(population.window_start, population.window_end)
        assert start <= end, "every member can have claims in the window"
        if member.death_date is not None:
            assert member.eligibility_end == member.death_date
    excluded = {entry.code for entry in codesets.excluded_providers.rows()}
    assert not excluded & {p.npi for p in population.practitioners}


def test_a_claim_lists_at_most_one_code_per_diagnosis_category(clean_sample):
    for claim, _ in clean_sample:
        categories = [dx.code[:3] for dx in claim.diagnoses]
        assert len(categories) == len(set(categories))
