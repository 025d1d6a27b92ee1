"""The log scrubber: PHI-named keys, PHI-looking text, objects and exceptions never reach a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
import structlog
from pydantic import ValidationError

from libs.model import Claim
from libs.phi.errors import DecryptionError
from libs.phi.logging import configure_logging, get_logger, safe_exception_message, scrub_text, scrub_value
from libs.phi.protector import PhiProtector
from tests.phi.conftest import MARKERS, make_marker_claim


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(stream=stream)
    yield stream
    root.handlers, root.level = saved
    structlog.reset_defaults()


def _assert_no_markers(text: str) -> None:
    for marker in MARKERS:
        assert marker not in text, marker


def test_log_line_carrying_a_plaintext_claim_is_scrubbed(log_stream: io.StringIO):
    claim = make_marker_claim()
    get_logger("test").info("claim received", claim=claim.model_dump(mode="json"), model=claim)
    line = log_stream.getvalue()
    _assert_no_markers(line)
    event = orjson.loads(line)
    assert event["event"] == "claim received"
    assert event["claim"]["patient"]["last_name"] == "[REDACTED]"
    assert event["claim"]["billing_provider"]["npi"] == "1234567893"
    assert event["model"]["patient"]["address"]["state"] == "PA"


def test_log_line_carrying_a_protected_record_keeps_tokens_and_shortens_ciphertext(log_stream: io.StringIO,
                                                                                  protector: PhiProtector):
    record = protector.protect(make_marker_claim())
    get_logger("test").info("claim protected", record=record)
    event = orjson.loads(log_stream.getvalue())
    _assert_no_markers(log_stream.getvalue())
    assert event["record"]["patient"]["member_id"] == record["patient"]["member_id"]
    assert "last_name" not in event["record"]["patient"]  # sealed away, not in the claim
    assert event["record"]["phi_sealed"] == "enc:…"


def test_exception_text_is_withheld_and_traceback_keeps_only_locations(log_stream: io.StringIO):
    try:
        raise ValueError("member ZZMARKERNAME born 1933-03-03 phone 5550001234")
    except ValueError:
        get_logger("test").exception("parse failed")
    line = log_stream.getvalue()
    _assert_no_markers(line)
    event = orjson.loads(line)
    assert event["exception_type"] == "ValueError"
    assert "withheld" in event["exception"]
    assert any("test_logging.py" in frame for frame in event["traceback"])


def test_stdlib_logging_goes_through_the_same_scrubber(log_stream: io.StringIO):
    try:
        raise KeyError("ZZMARKER01")
    except KeyError:
        logging.getLogger("kafka").exception("member %s dob 03/03/1933 ssn 078-05-1120", "ZZMARKERNAME@x.org")
    line = log_stream.getvalue()
    _assert_no_markers(line)
    assert "ZZMARKER" not in line


def test_message_patterns_are_redacted_but_npis_survive():
    text = scrub_text("npi 1234567893 called from 555-000-1234, ssn 078-05-1120, dob: 1933-03-03, "
                      "mail zzmarker@example.com, NM1*IL*1*ZZMARKERNAME*ALEX~DMG*D8*19330303*F~")
    _assert_no_markers(text)
    assert "1234567893" in text
    assert "[PHONE]" in text
    assert "[SSN]" in text
    assert "[DATE]" in text
    assert "[EMAIL]" in text


def test_phi_named_keys_are_redacted_at_any_depth_and_unknown_objects_become_type_names():
    scrubbed = scrub_value({"ctx": {"member_id": "ZZMARKER01", "patient_dob": "1933-03-03", "count": 3},
                            "items": [{"first_name": "ZZMARKERFIRST"}], "obj": object()})
    assert scrubbed == {"ctx": {"member_id": "[REDACTED]", "patient_dob": "[REDACTED]", "count": 3},
                        "items": [{"first_name": "[REDACTED]"}], "obj": "<object>"}


def test_safe_exception_message_never_carries_phi():
    try:
        Claim.model_validate({"claim_id": "C1", "claim_type": "professional", "source": {"format": "json"},
                              "patient": {"birth_date": "ZZMARKER-1933-03-03"}})
    except ValidationError as exc:
        message = safe_exception_message(exc)
    _assert_no_markers(message)
    assert "patient.birth_date: date_from_datetime_parsing" in message
    assert safe_exception_message(RuntimeError("ZZMARKERNAME")) == "RuntimeError (message withheld: it may contain PHI)"
    assert safe_exception_message(DecryptionError("claim C1 patient.last_name: bad")) == (
        "DecryptionError: claim C1 patient.last_name: bad")
    assert "ZZMARKER" not in safe_exception_message(FileNotFoundError(2, "No such file", "in.ndjson"))
