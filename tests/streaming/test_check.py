"""The stream's message checker without Spark: every message gets a verdict, with reasons, fields and no PHI.

`check_message` is what the stream's Python workers run on each raw message (libs.streaming.check); these tests pin
its verdicts on poison messages and on protected claims, and the Arrow batch it builds for Spark.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import orjson
import pyarrow as pa
import pytest

from libs.codesets import load_codesets
from libs.fraud.catalog import FraudCode
from libs.model import Claim, ServiceLine
from libs.phi import PhiProtector
from libs.settings import load_settings
from libs.streaming.check import (
    MAX_PARSE_BYTES,
    VERDICT_COLUMNS,
    ClaimChecker,
    MessageReason,
    check_message,
)
from tests.factories import SERVICE_DATE, make_person, make_professional_claim

AS_OF = date(2026, 11, 30)
CODESETS = load_codesets()


@pytest.fixture(scope="module")
def protector(tmp_path_factory: pytest.TempPathFactory) -> PhiProtector:
    home = tmp_path_factory.mktemp("check-keys")
    settings = load_settings(security={"local_key_file": home / "keyring.json", "audit_log": home / "audit.jsonl"})
    return PhiProtector.from_settings(settings)


def _message(protector: PhiProtector, claim: Claim) -> bytes:
    return orjson.dumps(protector.protect(claim))


def _good(claim_id: str = "G1") -> dict:
    """The smallest message that parses into a protected claim (whether the rules accept it is another matter)."""
    return {"claim_id": claim_id, "claim_type": "professional", "total_charge": "10.00", "lines": [],
            "source": {"format": "json"}}


POISON_CASES: list[tuple[str, bytes | None, MessageReason | None]] = [
    ("null value", None, MessageReason.EMPTY),
    ("empty value", b"", MessageReason.EMPTY),
    ("oversize", b'{"claim_id": "BIG", "pad": "' + b"x" * MAX_PARSE_BYTES + b'"}', MessageReason.TOO_LARGE),
    ("plain text", b"this is not json", MessageReason.NOT_JSON),
    ("truncated json", b'{"claim_id": "T1", "claim_ty', MessageReason.NOT_JSON),
    ("json array", b'[{"claim_id": "A1"}]', MessageReason.NOT_JSON),
    ("json number", b"42", MessageReason.NOT_JSON),
    ("amount not a number", orjson.dumps({**_good("W1"), "total_charge": "abc"}), MessageReason.SCHEMA_MISMATCH),
    ("lines not an array", orjson.dumps({**_good("W2"), "lines": "x"}), MessageReason.SCHEMA_MISMATCH),
    ("integer as text", orjson.dumps({**_good("W3"), "lines": [{"line_number": "1"}]}), MessageReason.SCHEMA_MISMATCH),
    ("unknown field", orjson.dumps({**_good("W4"), "shoe_size": 9}), MessageReason.SCHEMA_MISMATCH),
    ("padded amount", orjson.dumps({**_good("W5"), "total_charge": " 10.00"}), MessageReason.SCHEMA_MISMATCH),
    ("claim id missing", orjson.dumps({k: v for k, v in _good().items() if k != "claim_id"}),
     MessageReason.MISSING_CLAIM_ID),
    ("claim id blank", orjson.dumps(_good("   ")), MessageReason.MISSING_CLAIM_ID),
    ("claim id a number", orjson.dumps({**_good(), "claim_id": 42}), MessageReason.MISSING_CLAIM_ID),
    ("claim type unknown", orjson.dumps({**_good("D1"), "claim_type": "dental"}), MessageReason.BAD_CLAIM_TYPE),
    ("claim type missing", orjson.dumps({k: v for k, v in _good("D2").items() if k != "claim_type"}),
     MessageReason.BAD_CLAIM_TYPE),
    ("good", orjson.dumps(_good("G1")), None),
    ("good with leading whitespace", b"  \n" + orjson.dumps(_good("G2")), None),
]


@pytest.mark.parametrize(("name", "value", "reason"), POISON_CASES, ids=[case[0] for case in POISON_CASES])
def test_every_poison_message_gets_its_reason_and_a_located_finding(name: str, value: bytes | None,
                                                                   reason: MessageReason | None) -> None:
    verdict = check_message(value, AS_OF, CODESETS)
    assert verdict.reason == reason, name
    if reason is None:
        return
    assert not verdict.is_valid
    assert verdict.errors == [reason.value]
    [finding] = verdict.findings
    assert (finding.code, finding.severity) == (reason.value, "error")
    assert finding.field
    assert finding.message.startswith("expected")


def test_a_schema_mismatch_names_every_bad_path_and_never_the_input() -> None:
    message = {**_good("W9"), "total_charge": "TESTSECRET", "lines": [{"line_number": "TESTSECRET2"}]}
    verdict = check_message(orjson.dumps(message), AS_OF, CODESETS)
    assert verdict.reason is MessageReason.SCHEMA_MISMATCH
    [finding] = verdict.findings
    assert "lines[0].line_number" in finding.message
    assert "total_charge" in finding.message
    assert "TESTSECRET" not in finding.message
    # A rejected message still names its claim, so quarantine rows can be traced.
    assert verdict.identity == {"claim_id": "W9"}


def test_a_protected_claim_is_judged_by_the_rules_enriched_and_screened(protector: PhiProtector) -> None:
    claim = make_professional_claim(claim_id="E1")
    verdict = check_message(_message(protector, claim), AS_OF, CODESETS)
    assert verdict.reason is None
    assert verdict.is_valid, verdict.findings
    assert verdict.claim is not None
    assert verdict.claim.claim_id == "E1"
    enrichment = verdict.enrichment
    assert enrichment is not None
    assert enrichment.billing_specialty == "Family Medicine"  # taxonomy 207Q00000X
    assert enrichment.principal_diagnosis == "E119"
    assert (enrichment.line_count, enrichment.total_units, enrichment.em_level) == (2, Decimal(2), 3)
    assert enrichment.age_band == "65-79"  # born 1958-03-14, served 2026-06-15: 68, from phi_derived
    assert (enrichment.first_service_date, enrichment.service_month) == (SERVICE_DATE, "2026-06")
    assert verdict.alerts == []


def test_rules_that_need_phi_judge_the_derived_facts_of_a_protected_record(protector: PhiProtector) -> None:
    born_later = make_professional_claim(claim_id="B1", patient=make_person(birth_date=date(2026, 6, 20)))
    died_before = make_professional_claim(claim_id="D1", patient=make_person(death_date=date(2026, 1, 1)))
    assert check_message(_message(protector, born_later), AS_OF, CODESETS).errors == ["BIRTH_AFTER_SERVICE"]
    dead = check_message(_message(protector, died_before), AS_OF, CODESETS)
    assert dead.is_valid
    assert [rule for rule, _detail in dead.alerts] == [FraudCode.SERVICE_AFTER_DEATH.value]
    assert all("2026-01-01" not in detail for _rule, detail in dead.alerts)  # the date of death is PHI


def _line(number: int, code: str, units: str, charge: str) -> ServiceLine:
    return ServiceLine(line_number=number, procedure_code=code, procedure_system="HCPCS", units=Decimal(units),
                       unit_type="UN", charge=Decimal(charge), service_date_from=SERVICE_DATE,
                       service_date_to=SERVICE_DATE, diagnosis_pointers=[1])


def test_per_claim_screens_fire_per_rule_and_never_for_voids(protector: PhiProtector) -> None:
    clean = make_professional_claim(claim_id="CLEAN")
    assert clean.billing_provider is not None
    claims = {
        "OUTLIER": make_professional_claim(claim_id="OUTLIER", lines=[_line(1, "99213", "1", "5000.00")],
                                           total_charge=Decimal("5000.00")),
        "EXCESS": make_professional_claim(claim_id="EXCESS", lines=[_line(1, "83036", "4", "160.00")],
                                          total_charge=Decimal("160.00")),
        "EXCLUDED": make_professional_claim(  # on the synthetic exclusion list since 2012
            claim_id="EXCLUDED", billing_provider=clean.billing_provider.model_copy(update={"npi": "1290554124"})),
        "VOID": make_professional_claim(claim_id="VOID", frequency_code="8", original_claim_id="OUTLIER",
                                        lines=[_line(1, "99213", "1", "5000.00")], total_charge=Decimal("5000.00")),
        "CLEAN": clean,
    }
    rules = {cid: [rule for rule, _ in check_message(_message(protector, claim), AS_OF, CODESETS).alerts]
             for cid, claim in claims.items()}
    assert rules == {"OUTLIER": [FraudCode.OUTLIER_CHARGE.value], "EXCESS": [FraudCode.EXCESS_UNITS.value],
                     "EXCLUDED": [FraudCode.EXCLUDED_PROVIDER.value], "VOID": [], "CLEAN": []}


def test_the_arrow_batch_keeps_the_input_columns_and_adds_every_verdict_column(protector: PhiProtector) -> None:
    values = [_message(protector, make_professional_claim(claim_id="A1")), b"not json", None]
    batch = pa.RecordBatch.from_arrays([pa.array([b"A1", None, None]), pa.array(values, type=pa.binary())],
                                       names=["kafka_key", "value"])
    out = ClaimChecker(AS_OF, pipeline_id="P", batch_id=7).check_batch(batch, CODESETS)
    assert out.schema.names == ["kafka_key", "value", *(name for name, _, _ in VERDICT_COLUMNS), "pipeline_id",
                                "batch_id", "processed_at"]
    assert out.column(1).to_pylist() == values  # the message itself passes through unchanged
    rows = out.to_pylist()
    assert [row["message_reason"] for row in rows] == [None, "MESSAGE_NOT_JSON", "MESSAGE_EMPTY"]
    assert [row["is_valid"] for row in rows] == [True, False, False]
    assert (rows[0]["claim_id"], rows[0]["total_charge"], rows[0]["billing_specialty"]) == (
        "A1", Decimal("165.5000"), "Family Medicine")
    assert rows[0]["findings"] == []  # findings are kept for rejected messages (quarantine)
    assert rows[1]["findings"][0]["code"] == "MESSAGE_NOT_JSON"
    assert {row["pipeline_id"] for row in rows} == {"P"}
    assert {row["batch_id"] for row in rows} == {7}
