"""`claims produce FILE...` on every sample format, through the real CLI into the real broker: every claim of the
file is in the raw topic once, PHI protected, with a correlation id per record; rejections are in the dead letter."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from apps.cli.main import app
from libs.adapters.registry import read_claims
from libs.kafka.topics import load_topics
from libs.model import Claim, Rejection
from libs.phi.view import ProtectedClaim
from libs.settings import REPO_ROOT, Settings
from tests.ingest.helpers import Message, ingest_settings, read_topic

pytestmark = pytest.mark.kafka

FIXTURES = REPO_ROOT / "tests" / "fixtures"
SAMPLE_FILES = sorted(
    [*FIXTURES.glob("x12/*"), *FIXTURES.glob("fhir/*"), *FIXTURES.glob("json/*"),
     *(path for path in FIXTURES.glob("synpuf/*.csv") if path.name != "beneficiary.csv")],
    key=str)


def _cli_env(settings: Settings) -> dict[str, str]:
    return {
        "CLAIMS__KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "CLAIMS__KAFKA__TOPICS_FILE": str(settings.kafka.topics_file),
        "CLAIMS__SECURITY__LOCAL_KEY_FILE": str(settings.security.local_key_file),
        "CLAIMS__SECURITY__AUDIT_LOG": str(settings.security.audit_log),
    }


def _produce(settings: Settings, tmp_path: Path, *paths: Path) -> tuple[int, str, dict[str, object]]:
    report_file = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["produce", *map(str, paths), "--metrics-port", "0", "--no-progress",
                                      "--report-json", str(report_file)], env=_cli_env(settings))
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return result.exit_code, result.output, report


def _plaintext_member_ids(claims: list[Claim]) -> set[str]:
    return {person.member_id for claim in claims for person in (claim.patient, claim.subscriber)
            if person is not None and person.member_id}


def _correlation(message: Message) -> tuple[str, int]:
    run_id, index = message.headers["correlation_id"].decode().rsplit(":", 1)
    return run_id, int(index)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_claims_produce_file_sends_every_claim_protected(kafka_broker, tmp_path, path):
    settings = ingest_settings(kafka_broker, tmp_path)
    expected = list(read_claims([path]))
    claims = [record for record in expected if isinstance(record, Claim)]
    rejections = [record for record in expected if isinstance(record, Rejection)]
    assert claims, f"{path} should hold at least one claim"

    exit_code, output, report = _produce(settings, tmp_path, path)

    assert exit_code == 0, output
    assert (report["delivered"], report["failed"], report["rejections_delivered"]) == (len(claims), 0,
                                                                                       len(rejections))
    topics = load_topics(settings.kafka.topics_file)
    messages = read_topic(settings.kafka.bootstrap_servers, topics.raw, len(claims))
    assert sorted(m.key.decode() for m in messages) == sorted(claim.claim_id for claim in claims)
    for message in messages:
        protected = ProtectedClaim.from_json(message.value)  # the strict wire model the stream parses
        assert protected.claim_id == message.key.decode()
    raw_bytes = b"".join(message.value for message in messages)
    leaked = [member for member in _plaintext_member_ids(claims) if member.encode() in raw_bytes]
    assert leaked == []
    # One correlation id for the whole command, one index per record (claims and rejections), each used once.
    dead = read_topic(settings.kafka.bootstrap_servers, topics.dead_letter, len(rejections)) if rejections else []
    ids = [_correlation(message) for message in [*messages, *dead]]
    assert {run_id for run_id, _ in ids} == {report["correlation_id"]}
    assert sorted(index for _, index in ids) == list(range(1, len(expected) + 1))
    assert len(dead) == len(rejections)
    assert sorted(orjson.loads(m.value)["reason"] for m in dead) == sorted(r.reason for r in rejections)


def test_several_files_of_different_formats_in_one_command(kafka_broker, tmp_path):
    settings = ingest_settings(kafka_broker, tmp_path)
    paths = [FIXTURES / "x12" / "837p_multi.837", FIXTURES / "fhir" / "bundle.json", FIXTURES / "json" / "claim.json"]
    expected = [record for record in read_claims(paths) if isinstance(record, Claim)]

    exit_code, output, report = _produce(settings, tmp_path, *paths)

    assert exit_code == 0, output
    assert report["delivered"] == len(expected)
    messages = read_topic(settings.kafka.bootstrap_servers, load_topics(settings.kafka.topics_file).raw, len(expected))
    assert sorted(m.key.decode() for m in messages) == sorted(claim.claim_id for claim in expected)


def test_a_missing_or_unrecognisable_file_stops_the_command_before_sending(kafka_broker, tmp_path):
    settings = ingest_settings(kafka_broker, tmp_path)
    exit_code, output, _ = _produce(settings, tmp_path, FIXTURES / "x12" / "837p_multi.837", tmp_path / "gone.837")
    assert exit_code == 2
    assert "found no such file" in output
    exit_code, output, _ = _produce(settings, tmp_path, FIXTURES / "synpuf" / "beneficiary.csv")
    assert exit_code == 2
    assert "beneficiary summary file" in output
    raw = load_topics(settings.kafka.topics_file).raw
    assert read_topic(settings.kafka.bootstrap_servers, raw, 0, timeout=2) == []
