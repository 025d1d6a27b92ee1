"""The validation rules as Spark expressions, yielding the same reason codes as the Python rules in libs.validation.

Why a second engine: the streaming path validates hundreds of thousands of claims per batch inside the JVM, where a
Python UDF would cost a serialisation round trip per row. Each expression below mirrors one rule module of
libs.validation (required, npi, diagnoses, lines, header, dates, amounts) and cites its semantics; the parity test
(tests/streaming/test_validation_parity.py) runs the same generated claims, defects included, through both engines and
compares the codes claim by claim, so the two cannot drift silently.

Rules that need a PHI value run on the producer's non-identifying `phi_derived` block instead (the birth-date rule
uses the age at the first service date, negative when the birth date is later).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

from libs.codesets import ICD10_EFFECTIVE
from libs.streaming.refdata import SparkRefData, in_table
from libs.validation.catalog import RULES, ReasonCode, Severity
from libs.validation.context import MAX_CLAIM_AGE_YEARS, years_before

R = ReasonCode
PROFESSIONAL, INSTITUTIONAL = "professional", "institutional"
ICD10, ICD9 = "ICD-10-CM", "ICD-9-CM"
SYNPUF_FORMATS = ("synpuf-carrier", "synpuf-inpatient", "synpuf-outpatient")
# Java regexes; `\z` is the true end of input (`$` would also accept a trailing newline).
NPI_PATTERN = r"^[12][0-9]{9}\z"
HCPCS_PATTERN = r"^(?:[0-9]{5}|[0-9]{4}[FTUM]|[A-V][0-9]{4})\z"
ICD9_PATTERN = r"^(?:[0-9]{3}(?:\.?[0-9]{1,2})?|V[0-9]{2}(?:\.?[0-9]{1,2})?|E[0-9]{3}(?:\.?[0-9])?)\z"
POA_VALUES = ("Y", "N", "U", "W", "1")
HEADER_PROVIDER_ROLES = (
    "billing_provider", "rendering_provider", "attending_provider", "referring_provider", "facility",
)
TIMELY_FILING_DAYS = 365


def _zero() -> Column:
    return F.lit(0).cast("decimal(18,4)")


def blank(value: Column) -> Column:
    """Null, empty or only spaces (libs.validation.registry.blank)."""
    return value.isNull() | (F.trim(value) == "")


def falsy(value: Column) -> Column:
    """Python truthiness of an optional string: None or ''."""
    return value.isNull() | (value == "")


def _any(array: Column, predicate: Callable[[Column], Column]) -> Column:
    """`exists` that treats a null array as empty and a null predicate result as false."""
    return F.coalesce(F.exists(F.coalesce(array, F.array()), lambda x: F.coalesce(predicate(x), F.lit(False))),
                      F.lit(False))


def _all(array: Column, predicate: Callable[[Column], Column]) -> Column:
    return F.coalesce(F.forall(F.coalesce(array, F.array()), lambda x: F.coalesce(predicate(x), F.lit(False))),
                      F.lit(True))


def _size(array: Column) -> Column:
    return F.coalesce(F.size(array), F.lit(0)).cast("int")


class ClaimColumns:
    """Shorthands and per-claim derived dates (libs.validation.context.build_context)."""

    def __init__(self, claim: Column) -> None:
        self.claim = claim
        self.lines = F.coalesce(claim["lines"], F.array())
        self.diagnoses = F.coalesce(claim["diagnoses"], F.array())
        line_dates = F.flatten(F.transform(self.lines, lambda ln: F.array(ln["service_date_from"],
                                                                         ln["service_date_to"])))
        all_dates = F.concat(F.array(claim["service_date_from"], claim["service_date_to"]), line_dates)
        self.first_service_date = F.array_min(all_dates)
        self.last_service_date = F.array_max(all_dates)
        self.diagnosis_date = F.coalesce(claim["service_date_to"], F.array_max(line_dates), claim["service_date_from"])
        self.is_professional = claim["claim_type"] == PROFESSIONAL
        self.is_institutional = claim["claim_type"] == INSTITUTIONAL

    def line_date(self, line: Column) -> Column:
        """The date a line's codes are judged on: its own from date, else the statement from date."""
        return F.coalesce(line["service_date_from"], self.claim["service_date_from"])


def required_rules(c: ClaimColumns) -> dict[ReasonCode, Column]:
    """libs.validation.required."""
    claim = c.claim
    header_pos_missing = blank(claim["place_of_service"])
    every_line_has_pos = (_size(c.lines) > 0) & _all(c.lines, lambda ln: ~blank(ln["place_of_service"]))
    return {
        R.MISSING_BILLING_NPI: blank(claim["billing_provider"]["npi"]),
        R.MISSING_MEMBER_ID: falsy(claim["patient"]["member_id"]) & falsy(claim["subscriber"]["member_id"]),
        R.MISSING_DIAGNOSIS: _size(claim["diagnoses"]) == 0,
        R.MISSING_LINES: _size(claim["lines"]) == 0,
        R.MISSING_TOTAL_CHARGE: claim["total_charge"].isNull(),
        R.MISSING_PLACE_OF_SERVICE: c.is_professional & header_pos_missing & ~every_line_has_pos,
        R.MISSING_TYPE_OF_BILL: c.is_institutional & blank(claim["type_of_bill"]),
        R.MISSING_PAYER: blank(claim["payer"]["payer_id"]),
        R.MISSING_SERVICE_DATE: claim["service_date_from"].isNull()
        & _any(c.lines, lambda ln: ln["service_date_from"].isNull()),
        R.MISSING_PROCEDURE_CODE: c.is_professional & _any(c.lines, lambda ln: blank(ln["procedure_code"])),
        R.MISSING_REVENUE_CODE: c.is_institutional & _any(c.lines, lambda ln: blank(ln["revenue_code"])),
        R.MISSING_LINE_CHARGE: _any(c.lines, lambda ln: ln["charge"].isNull()),
    }


def npi_format_ok(npi: Column) -> Column:
    """10 ASCII digits starting with 1 or 2."""
    return npi.rlike(NPI_PATTERN)


def npi_luhn_ok(npi: Column) -> Column:
    """Luhn check digit over 80840 + the first nine digits (libs.validation.npi.npi_luhn_ok)."""

    def step(acc: Column, position: Column) -> Column:
        digit = F.substring(npi, 9 - position, 1).cast("int")  # position 0 is the rightmost digit of the base
        doubled = F.when(digit * 2 > 9, digit * 2 - 9).otherwise(digit * 2)
        return acc + F.when(position % 2 == 0, doubled).otherwise(digit)

    total = F.aggregate(F.sequence(F.lit(0), F.lit(8)), F.lit(24), step)
    return ((10 - total % 10) % 10) == F.substring(npi, 10, 1).cast("int")


def npi_rules(c: ClaimColumns) -> dict[ReasonCode, Column]:
    """libs.validation.npi: format is an error, the check digit a warning (only for well-formed NPIs)."""
    header = [c.claim[role]["npi"] for role in HEADER_PROVIDER_ROLES]
    line_npis = F.transform(c.lines, lambda ln: ln["rendering_provider"]["npi"])
    npis = F.filter(F.concat(F.array(*header), line_npis), lambda n: ~blank(n))
    return {
        R.NPI_FORMAT: _any(npis, lambda n: ~npi_format_ok(n)),
        R.NPI_CHECK_DIGIT: _any(npis, lambda n: npi_format_ok(n) & ~npi_luhn_ok(n)),
    }


def diagnosis_rules(c: ClaimColumns) -> dict[ReasonCode, Column]:
    """libs.validation.diagnoses, except the ICD-10 table lookups (see `icd10_flags`)."""
    after_cutover = c.diagnosis_date >= F.lit(ICD10_EFFECTIVE)
    judged = c.diagnosis_date.isNotNull()
    return {
        R.ICD9_FORMAT: _any(c.diagnoses, lambda d: (d["system"] == ICD9) & ~F.coalesce(d["code"], F.lit(""))
                            .rlike(ICD9_PATTERN)),
        R.ICD9_AFTER_CUTOVER: judged & after_cutover & _any(c.diagnoses, lambda d: d["system"] == ICD9),
        R.ICD10_BEFORE_EFFECTIVE: judged & ~after_cutover & _any(c.diagnoses, lambda d: d["system"] == ICD10),
        R.POA_INVALID: _any(c.diagnoses, lambda d: ~blank(d["present_on_admission"])
                            & ~d["present_on_admission"].isin(*POA_VALUES)),
        R.ICD10_UNKNOWN: F.coalesce(F.col("_icd10_unknown"), F.lit(False)),
        R.ICD10_NOT_BILLABLE: F.coalesce(F.col("_icd10_not_billable"), F.lit(False)),
    }


def line_rules(c: ClaimColumns, ref: SparkRefData) -> dict[ReasonCode, Column]:
    """libs.validation.lines."""
    n_diagnoses = _size(c.claim["diagnoses"])

    def bad_procedure(ln: Column) -> Column:
        is_hcpcs = ln["procedure_system"].isNull() | (ln["procedure_system"] == "HCPCS")
        return ~blank(ln["procedure_code"]) & is_hcpcs & ~ln["procedure_code"].rlike(HCPCS_PATTERN)

    def bad_modifiers(ln: Column) -> Column:
        modifiers = F.coalesce(ln["modifiers"], F.array())
        unknown = _any(modifiers, lambda m: ~in_table(ref.modifiers, m, c.line_date(ln)))
        return (_size(modifiers) > 4) | unknown

    def bad_pointers(ln: Column) -> Column:
        pointers = F.coalesce(ln["diagnosis_pointers"], F.array())
        return (_size(pointers) > 4) | _any(pointers, lambda p: (p < 1) | (p > n_diagnoses))

    return {
        R.PROCEDURE_FORMAT: _any(c.lines, bad_procedure),
        R.MODIFIER_INVALID: _any(c.lines, bad_modifiers),
        R.REVENUE_CODE_INVALID: _any(c.lines, lambda ln: ~blank(ln["revenue_code"])
                                     & ~in_table(ref.revenue_codes, ln["revenue_code"], c.line_date(ln))),
        R.UNITS_INVALID: _any(c.lines, lambda ln: ln["units"].isNull() | (ln["units"] <= 0)),
        R.DIAGNOSIS_POINTER_INVALID: _any(c.lines, bad_pointers),
    }


def normalized_type_of_bill(type_of_bill: Column) -> Column:
    """3 digits, accepting a 4-digit form with a leading zero; null for any other shape."""
    digits = F.trim(type_of_bill)
    digits = F.when((F.length(digits) == 4) & digits.startswith("0"), F.substring(digits, 2, 3)).otherwise(digits)
    return F.when(digits.rlike(r"^[0-9]{3}\z"), digits)


def header_rules(c: ClaimColumns, ref: SparkRefData) -> dict[ReasonCode, Column]:
    """libs.validation.header (the birth-date rule reads `phi_derived`)."""
    claim = c.claim
    pos, tob = claim["place_of_service"], claim["type_of_bill"]
    header_pos_on = F.coalesce(claim["service_date_from"], c.first_service_date)
    digits = normalized_type_of_bill(tob)
    on = c.first_service_date
    tob_digits_bad = (
        ~in_table(ref.tob_facility, F.substring(digits, 1, 1), on)
        | ~in_table(ref.tob_classification, F.substring(digits, 2, 1), on)
        | ~in_table(ref.frequency_codes, F.substring(digits, 3, 1), on)
    )
    frequency = claim["frequency_code"]
    professional_mismatch = ~blank(tob) | _any(c.lines, lambda ln: ~blank(ln["revenue_code"]))
    institutional_mismatch = ~blank(pos) | _any(c.lines, lambda ln: ~blank(ln["place_of_service"]))
    return {
        R.POS_INVALID: (~blank(pos) & ~in_table(ref.place_of_service, pos, header_pos_on))
        | _any(c.lines, lambda ln: ~blank(ln["place_of_service"])
               & ~in_table(ref.place_of_service, ln["place_of_service"], c.line_date(ln))),
        R.TOB_INVALID: ~blank(tob) & (digits.isNull() | tob_digits_bad),
        R.FREQUENCY_CODE_INVALID: ~in_table(ref.frequency_codes, frequency, on),
        R.MISSING_ORIGINAL_CLAIM_REF: frequency.isin("7", "8") & blank(claim["original_claim_id"]),
        R.CLAIM_TYPE_FIELDS_MISMATCH: F.when(c.is_professional, professional_mismatch).otherwise(
            institutional_mismatch),
        R.TOB_FREQUENCY_MISMATCH: digits.isNotNull() & (F.substring(digits, 3, 1) != frequency),
        R.BIRTH_AFTER_SERVICE: on.isNotNull() & (claim["phi_derived"]["patient_age_years"] < 0),
    }


def date_rules(c: ClaimColumns, as_of: date) -> dict[ReasonCode, Column]:
    """libs.validation.dates, relative to `as_of`."""
    claim = c.claim
    start, end = claim["service_date_from"], claim["service_date_to"]

    def outside(ln: Column) -> Column:
        line_start = ln["service_date_from"]
        line_end = F.coalesce(ln["service_date_to"], line_start)
        return line_start.isNotNull() & ((start.isNotNull() & (line_start < start))
                                         | (end.isNotNull() & (line_end > end)))

    filed = F.coalesce(claim["source"]["received_date"], F.lit(as_of))
    return {
        R.DATE_RANGE_INVERTED: F.coalesce(start > end, F.lit(False))
        | _any(c.lines, lambda ln: ln["service_date_from"] > ln["service_date_to"]),
        R.LINE_DATE_OUTSIDE_HEADER: (start.isNotNull() | end.isNotNull()) & _any(c.lines, outside),
        R.DATE_IN_FUTURE: F.coalesce(c.last_service_date > F.lit(as_of), F.lit(False)),
        R.DATE_TOO_OLD: F.coalesce(c.first_service_date < F.lit(years_before(as_of, MAX_CLAIM_AGE_YEARS)),
                                   F.lit(False)),
        R.TIMELY_FILING_EXCEEDED: F.coalesce(F.datediff(filed, c.last_service_date) > TIMELY_FILING_DAYS,
                                             F.lit(False)),
    }


def _exceeds(amount: Column, limit: Column, reversal: Column) -> Column:
    return F.when(reversal, F.abs(amount) > F.abs(limit)).otherwise(amount > limit)


def amount_rules(c: ClaimColumns) -> dict[ReasonCode, Column]:
    """libs.validation.amounts, with the FHIR EOB reversal and SynPUF tolerance behaviours."""
    claim = c.claim
    total, allowed, paid = claim["total_charge"], claim["allowed_amount"], claim["paid_amount"]
    fmt = claim["source"]["format"]
    header_negative = (total < 0) | (allowed < 0) | (paid < 0)
    line_negative = _any(c.lines, lambda ln: (ln["charge"] < 0) | (ln["allowed_amount"] < 0) | (ln["paid_amount"] < 0))
    charges = F.filter(F.transform(c.lines, lambda ln: ln["charge"]), lambda ch: ch.isNotNull())
    line_sum = F.aggregate(charges, _zero(), lambda acc, ch: (acc + ch).cast("decimal(18,4)"))
    difference = F.bround(F.abs(total - line_sum), 2)
    synpuf_tolerance = F.greatest(F.lit(10).cast("decimal(18,4)") * _size(charges),
                                  F.abs(total) * F.lit(0.05).cast("decimal(4,2)"))
    tolerance = F.when(fmt.isin(*SYNPUF_FORMATS), synpuf_tolerance).otherwise(_zero())
    total_mismatch = total.isNotNull() & (_size(charges) > 0) & (line_sum != total) & (difference > tolerance)

    def line_allowed_over(ln: Column) -> Column:
        return _exceeds(ln["allowed_amount"], ln["charge"], ln["charge"] < 0)

    def line_paid_over(ln: Column) -> Column:
        reversal = F.coalesce(ln["charge"] < 0, F.lit(False)) | (ln["allowed_amount"] < 0)
        return _exceeds(ln["paid_amount"], ln["allowed_amount"], reversal)

    return {
        R.AMOUNT_NEGATIVE: F.coalesce(header_negative, F.lit(False))
        | (F.coalesce(fmt != "fhir-eob", F.lit(True)) & line_negative),
        R.TOTAL_CHARGE_MISMATCH: F.coalesce(total_mismatch, F.lit(False)),
        R.ALLOWED_EXCEEDS_BILLED: F.coalesce(_exceeds(allowed, total, total < 0), F.lit(False))
        | _any(c.lines, line_allowed_over),
        R.PAID_EXCEEDS_ALLOWED: F.coalesce(_exceeds(paid, allowed, allowed < 0), F.lit(False))
        | _any(c.lines, line_paid_over),
    }


def rule_columns(claim: Column, ref: SparkRefData, as_of: date) -> dict[ReasonCode, Column]:
    """Every reason code with the boolean expression that fires it."""
    c = ClaimColumns(claim)
    rules = {
        **required_rules(c),
        **npi_rules(c),
        **diagnosis_rules(c),
        **line_rules(c, ref),
        **header_rules(c, ref),
        **date_rules(c, as_of),
        **amount_rules(c),
    }
    missing = set(ReasonCode) - set(rules)
    if missing:
        msg = f"Spark validation lacks expressions for {sorted(missing)}"
        raise RuntimeError(msg)
    return rules


def icd10_flags(parsed: DataFrame, ref: SparkRefData) -> DataFrame:
    """Per message: whether any ICD-10-CM diagnosis is unknown, or known but not billable (a broadcast join)."""
    diagnoses = parsed.filter(F.col("message_reason").isNull()).select(
        "kafka_partition", "kafka_offset", F.explode(F.coalesce(F.col("claim.diagnoses"), F.array())).alias("d")
    ).filter(F.col("d.system") == ICD10)
    normalized = F.regexp_replace(F.upper(F.trim(F.col("d.code"))), r"\.", "")
    looked_up = diagnoses.withColumn("icd10_key", normalized).join(
        ref.icd10, F.col("icd10_key") == F.col("icd10_code"), "left"
    )
    return looked_up.groupBy("kafka_partition", "kafka_offset").agg(
        F.max(F.col("icd10_code").isNull()).alias("_icd10_unknown"),
        F.max(F.col("icd10_code").isNotNull() & ~F.col("icd10_billable")).alias("_icd10_not_billable"),
    )


SEVERITY = {rule.code: rule.severity for rule in RULES}


def validate_messages(parsed: DataFrame, ref: SparkRefData, as_of: date) -> DataFrame:
    """Add `error_codes`, `warning_codes`, `reason_codes` (what quarantine records) and `is_valid`.

    Messages that did not parse carry their message reason as the only error code.
    """
    flags = icd10_flags(parsed, ref)
    frame = parsed.join(F.broadcast(flags), ["kafka_partition", "kafka_offset"], "left")
    rules = rule_columns(F.col("claim"), ref, as_of)

    def codes(severity: Severity) -> Column:
        fired = [F.when(condition, F.lit(code.value))
                 for code, condition in rules.items() if SEVERITY[code] is severity]
        return F.filter(F.array(*fired), lambda code: code.isNotNull())

    reason = F.col("message_reason")
    no_codes = F.array().cast("array<string>")
    return (
        frame.withColumn("error_codes", F.when(reason.isNull(), codes(Severity.ERROR)).otherwise(F.array(reason)))
        .withColumn("warning_codes", F.when(reason.isNull(), codes(Severity.WARNING)).otherwise(no_codes))
        .withColumn("reason_codes", F.col("error_codes"))
        .withColumn("is_valid", F.size("error_codes") == 0)
        .drop("_icd10_unknown", "_icd10_not_billable")
    )
