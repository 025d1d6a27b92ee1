"""Re-identification is role-checked and always audited; the audit log's hash chain detects tampering."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from libs.phi.audit import AuditLog, Decision, verify
from libs.phi.errors import AuditError, DecryptionError, RevealDeniedError
from libs.phi.protector import PhiProtector
from libs.settings import Settings
from tests.factories import make_professional_claim
from tests.phi.conftest import make_marker_claim


def _audit(settings: Settings) -> list[dict]:
    return [orjson.loads(line) for line in settings.security.audit_log.read_bytes().splitlines()]


def test_allowed_role_gets_plaintext_and_an_audit_record_without_the_values(protector: PhiProtector,
                                                                            settings: Settings):
    record = protector.protect(make_marker_claim())
    values = protector.reveal(record, ["patient.last_name", "patient.birth_date"], actor="alice",
                              role="phi-reader", reason="case SIU-1")
    assert values == {"patient.last_name": "ZZMARKERNAME", "patient.birth_date": "1933-03-03"}
    [entry] = _audit(settings)
    assert entry["decision"] == Decision.ALLOWED
    assert (entry["actor"], entry["role"], entry["claim_id"], entry["reason"]) == (
        "alice", "phi-reader", "PCLM0001", "case SIU-1")
    assert entry["fields"] == ["patient.last_name", "patient.birth_date"]
    assert entry["ts"]
    assert "ZZMARKER" not in orjson.dumps(entry).decode()


def test_unknown_role_is_refused_and_the_refusal_is_audited(protector: PhiProtector, settings: Settings):
    record = protector.protect(make_marker_claim())
    with pytest.raises(RevealDeniedError, match="role 'analyst' may not reveal"):
        protector.reveal(record, ["patient.last_name"], actor="bob", role="analyst", reason="curious")
    [entry] = _audit(settings)
    assert entry["decision"] == Decision.DENIED
    assert entry["actor"] == "bob"
    assert "analyst" in entry["detail"]


def test_role_may_reveal_only_its_fields(protector: PhiProtector, settings: Settings):
    record = protector.protect(make_marker_claim())
    with pytest.raises(RevealDeniedError, match=r"may not reveal 'patient\.email'"):
        protector.reveal(record, ["patient.last_name", "patient.email"], "carol", "phi-reader", "contact member")
    assert _audit(settings)[-1]["decision"] == Decision.DENIED


@pytest.mark.parametrize(("field", "message"), [
    ("patient.member_id", "tokenized"), ("patient.ssn", "dropped"), ("patient.shoe_size", "not a PHI field")])
def test_fields_that_cannot_be_revealed_are_refused(protector: PhiProtector, settings: Settings, field: str,
                                                    message: str):
    record = protector.protect(make_marker_claim())
    with pytest.raises(RevealDeniedError, match=message):
        protector.reveal(record, [field], "alice", "privacy-officer", "test")
    assert _audit(settings)[-1]["decision"] == Decision.DENIED


def test_reveal_without_a_reason_is_refused_and_audited(protector: PhiProtector, settings: Settings):
    record = protector.protect(make_marker_claim())
    with pytest.raises(RevealDeniedError, match="reason"):
        protector.reveal(record, ["patient.last_name"], "alice", "privacy-officer", "  ")
    assert _audit(settings)[-1]["decision"] == Decision.DENIED


def test_tampered_record_fails_and_the_failure_is_audited(protector: PhiProtector, settings: Settings):
    record = protector.protect(make_marker_claim())
    sealed = record["phi_sealed"]
    flipped = "A" if sealed[-3] != "A" else "B"  # one base64 character of the ciphertext changed
    record["phi_sealed"] = sealed[:-3] + flipped + sealed[-2:]
    with pytest.raises(DecryptionError, match="does not authenticate"):
        protector.reveal(record, ["patient.last_name"], "alice", "privacy-officer", "test")
    assert _audit(settings)[-1]["decision"] == Decision.FAILED


def test_records_with_one_ciphertext_per_field_are_still_revealed(protector: PhiProtector):
    # The layout before sealed blocks: each encrypted leaf held its own enc:v1 ciphertext under a per-field AAD.
    from libs.phi.envelope import associated_data  # noqa: PLC0415

    key = protector.encryptor.key_for_record()
    record = {"claim_id": "OLD1", "phi_envelope": dict(key.envelope),
              "patient": {"last_name": key.encrypt("ZZMARKERNAME", associated_data("OLD1", "patient.last_name"))}}
    assert protector.reveal(record, ["patient.last_name", "patient.first_name"], "alice", "privacy-officer",
                            "test") == {"patient.last_name": "ZZMARKERNAME", "patient.first_name": None}


def test_nothing_is_revealed_when_the_audit_record_cannot_be_written(protector: PhiProtector, tmp_path: Path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    protector.audit_log = AuditLog(blocker / "audit.jsonl")
    record = protector.protect(make_professional_claim())
    with pytest.raises(AuditError):
        protector.reveal(record, ["patient.last_name"], "alice", "privacy-officer", "test")


def _filled_log(path: Path, count: int = 4) -> AuditLog:
    log = AuditLog(path)
    for index in range(count):
        log.append(actor=f"user{index}", role="phi-reader", claim_id=f"C{index}", fields=["patient.last_name"],
                   reason="review", decision=Decision.ALLOWED)
    return log


def test_audit_chain_verifies_when_untouched(tmp_path: Path):
    path = tmp_path / "audit.jsonl"
    _filled_log(path)
    result = verify(path)
    assert result.ok
    assert result.records == 4
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4]


def test_audit_chain_verify_detects_an_edited_line(tmp_path: Path):
    path = tmp_path / "audit.jsonl"
    _filled_log(path)
    lines = path.read_bytes().splitlines()
    lines[1] = lines[1].replace(b'"allowed"', b'"denied"')
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = verify(path)
    assert not result.ok
    assert result.line == 2
    assert "edited" in (result.problem or "")


def test_audit_chain_verify_detects_a_removed_line(tmp_path: Path):
    path = tmp_path / "audit.jsonl"
    _filled_log(path)
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(lines[:1] + lines[2:]) + b"\n")
    result = verify(path)
    assert (result.ok, result.line) == (False, 2)
    assert "removed or reordered" in (result.problem or "")


def test_audit_chain_verify_detects_a_rewritten_hash(tmp_path: Path):
    path = tmp_path / "audit.jsonl"
    _filled_log(path)
    lines = path.read_bytes().splitlines()
    record = orjson.loads(lines[2])
    record["actor"] = "mallory"
    from libs.phi.audit import record_hash  # noqa: PLC0415

    record["hash"] = record_hash(record)  # consistent line, but the next record's link now breaks
    lines[2] = orjson.dumps(record)
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = verify(path)
    assert (result.ok, result.line) == (False, 4)


def test_audit_log_file_is_owner_only(tmp_path: Path):
    path = tmp_path / "audit" / "audit.jsonl"
    _filled_log(path, 1)
    assert path.stat().st_mode & 0o077 == 0
