"""Generated runs: the same claims for a (count, seed) whatever the number of producer processes, each exactly once,
PHI protected, with the run's correlation id and every record index; no protector, no run."""

from __future__ import annotations

from typing import Any

import pytest

from libs.generator import GeneratorConfig, generate_claims, generate_records
from libs.ingest import ProtectorUnavailableError, generated_claims, load_protector, produce_generated
from libs.ingest.generated import encode_record
from libs.kafka.topics import load_topics
from libs.model import Claim
from libs.phi.view import ProtectedClaim
from libs.settings import Settings
from tests.ingest.helpers import Message, ingest_settings, read_topic

pytestmark = pytest.mark.kafka

COUNT, SEED = 2_500, 3  # above IN_PROCESS_BELOW and several chunks per worker


def test_the_fast_path_yields_exactly_the_generators_claims():
    # Every kind of record (defects, fraud scenarios, replacements, voids) survives the JSON hand-over unchanged.
    heavy = GeneratorConfig(count=800, seed=SEED, defect_rate=0.4, fraud_rate=0.2, replacement_rate=0.1,
                            void_rate=0.05)
    for record, _labels in generate_records(heavy):
        assert Claim.model_validate_json(encode_record(record)) == Claim.model_validate(record)
    assert list(generated_claims(600, SEED)) == [c for c, _ in generate_claims(GeneratorConfig(count=600, seed=SEED))]


def _run(kafka_broker: Any, tmp_path: Any, workers: int) -> tuple[Settings, list[Message], Any]:
    """One run on topics of its own; every run of a test shares one keyring, so tokens are comparable."""
    settings = ingest_settings(kafka_broker, tmp_path / f"w{workers}")
    settings = settings.model_copy(update={"security": settings.security.model_copy(
        update={"local_key_file": tmp_path / "shared-keyring.json"})})
    report = produce_generated(settings, COUNT, SEED, workers=workers)
    messages = read_topic(settings.kafka.bootstrap_servers, load_topics(settings.kafka.topics_file).raw, COUNT)
    return settings, messages, report


def _without_ciphertext(message: Message) -> dict[str, Any]:
    """The protected record minus the per-run random parts (sealed block nonce and data key)."""
    return ProtectedClaim.from_json(message.value).model_dump(exclude={"phi_sealed", "phi_envelope"})


def test_the_same_claims_whatever_the_number_of_worker_processes(kafka_broker, tmp_path):
    runs = {workers: _run(kafka_broker, tmp_path, workers) for workers in (0, 1, 2)}
    expected_ids = [claim.claim_id for claim in generated_claims(COUNT, SEED)]
    records: dict[int, dict[str, dict[str, Any]]] = {}
    for workers, (_settings, messages, report) in runs.items():
        assert (report.sent, report.delivered, report.failed, report.ok) == (COUNT, COUNT, 0, True), workers
        assert sorted(m.key.decode() for m in messages) == sorted(expected_ids), workers
        indexes = sorted(int(m.headers["correlation_id"].decode().rsplit(":", 1)[1]) for m in messages)
        assert indexes == list(range(1, COUNT + 1)), workers
        assert {m.headers["correlation_id"].decode().rsplit(":", 1)[0] for m in messages} == {report.correlation_id}
        records[workers] = {m.key.decode(): _without_ciphertext(m) for m in messages}
    assert records[1] == records[0]
    assert records[2] == records[0]


def test_sealed_phi_opens_to_the_same_values_in_every_run(kafka_broker, tmp_path):
    opened = []
    for workers in (0, 2):
        settings, messages, _report = _run(kafka_broker, tmp_path, workers)
        protector = load_protector(settings)
        by_id = {m.key.decode(): ProtectedClaim.from_json(m.value).model_dump(mode="json", exclude_none=True)
                 for m in messages}
        sample = sorted(by_id)[:: COUNT // 5]
        opened.append({claim_id: protector.reveal(by_id[claim_id], ["patient.last_name", "patient.birth_date"],
                                                  actor="test", role="privacy-officer", reason="determinism test")
                       for claim_id in sample})
    assert opened[0] == opened[1]
    assert all(values["patient.last_name"] for values in opened[0].values())


def test_no_protector_means_no_claim_is_produced(kafka_broker, tmp_path):
    settings = ingest_settings(kafka_broker, tmp_path)
    broken = settings.model_copy(update={"security": settings.security.model_copy(
        update={"phi_policy_file": tmp_path / "no-such-policy.json"})})
    with pytest.raises(ProtectorUnavailableError, match="refusing to produce unprotected claims"):
        produce_generated(broken, 100, SEED)
    raw = load_topics(settings.kafka.topics_file).raw
    assert read_topic(settings.kafka.bootstrap_servers, raw, 0, timeout=2) == []


def test_a_stop_request_ends_generation_and_flushes_what_was_sent(kafka_broker, tmp_path):
    settings = ingest_settings(kafka_broker, tmp_path)
    progress: list[int] = []
    report = produce_generated(settings, 20_000, SEED, workers=1, on_progress=lambda r: progress.append(r.sent),
                               should_stop=lambda: len(progress) >= 2)
    assert report.interrupted
    assert 0 < report.delivered < 20_000
    assert report.sent == report.delivered
    raw = load_topics(settings.kafka.topics_file).raw
    assert len(read_topic(settings.kafka.bootstrap_servers, raw, report.delivered)) == report.delivered
