"""POST /v1/claims through a real uvicorn server into the real broker: the project's X12, FHIR and JSON fixtures land
in the raw topic exactly as answered; every error status; no PHI in any answer."""

from __future__ import annotations

import time

import orjson
import pytest

from libs.adapters.registry import read_claims
from libs.api.auth import LocalTokenIssuer, Role
from libs.ingest.idempotency import IdempotencyStore, fingerprint
from libs.kafka.broker import free_port
from libs.kafka.topics import load_topics
from libs.model import Claim
from libs.settings import REPO_ROOT, KafkaSettings
from tests.api.conftest import Server
from tests.factories import make_person, make_professional_claim
from tests.ingest.helpers import ingest_settings, read_topic

pytestmark = pytest.mark.kafka

FIXTURES = REPO_ROOT / "tests" / "fixtures"
DOCUMENTS = [
    ("x12/837p_multi.837", "application/edi-x12"),
    ("x12/837i_institutional.837", "application/edi-x12"),
    ("fhir/bundle.json", "application/fhir+json"),
    ("fhir/eob_institutional.json", "application/fhir+json"),
    ("json/claims_array.json", "application/json"),
    ("json/claims.ndjson", "application/x-ndjson"),
]


def _post(api: Server, body: bytes, content_type: str, *roles: Role, **headers: str) -> tuple[int, dict]:
    with api.client() as client:
        response = client.post("/v1/claims", content=body,
                               headers=api.headers(*(roles or (Role.INGEST,)), **{"Content-Type": content_type},
                                                   **headers))
    return response.status_code, response.json()


def test_x12_fhir_and_json_fixtures_reach_the_raw_topic_as_answered(api: Server):
    raw = load_topics(api.settings.kafka.topics_file).raw
    accepted: list[dict] = []
    for fixture, content_type in DOCUMENTS:
        path = FIXTURES / fixture
        claims = [record for record in read_claims([path]) if isinstance(record, Claim)]
        status, answer = _post(api, path.read_bytes(), content_type, **{"X-Correlation-ID": f"t-{path.stem}"})
        assert status == 202, answer
        assert sorted(a["claim_id"] for a in answer["accepted"]) == sorted(c.claim_id for c in claims), fixture
        assert answer["correlation_id"] == f"t-{path.stem}"
        assert answer["failed"] == []
        accepted += [{**entry, "correlation": f"t-{path.stem}:{entry['index']}"} for entry in answer["accepted"]]
    messages = read_topic(api.settings.kafka.bootstrap_servers, raw, len(accepted))
    landed = {(m.key.decode(), m.partition, m.offset, m.headers["correlation_id"].decode()) for m in messages}
    assert landed == {(a["claim_id"], a["partition"], a["offset"], a["correlation"]) for a in accepted}
    assert len(messages) == len(accepted)


def test_rejected_records_are_answered_with_reason_and_location(api: Server):
    status, answer = _post(api, (FIXTURES / "json" / "claims_array.json").read_bytes(), "application/json")
    assert status == 202
    assert answer["rejected"]
    for entry in answer["rejected"]:
        assert entry["reason"]
        assert entry["location"].startswith("element ")
    dead = load_topics(api.settings.kafka.topics_file).dead_letter
    assert len(read_topic(api.settings.kafka.bootstrap_servers, dead, len(answer["rejected"]))) == len(
        answer["rejected"])


def test_no_phi_in_any_answer(api: Server):
    markers = {"last_name": "ZZAPILAST", "first_name": "ZZAPIFIRST", "member_id": "ZZAPIMEMBER9"}
    person = make_person(**markers)
    good = make_professional_claim(claim_id="PHI-API-1", patient=person, subscriber=person)
    broken = {**good.model_dump(mode="json"), "claim_id": "", "lines": "ZZAPILAST"}  # rejected, PHI inside
    body = orjson.dumps([good.model_dump(mode="json"), broken])
    with api.client() as client:
        headers = api.headers(Role.INGEST, **{"Content-Type": "application/json"})
        response = client.post("/v1/claims", content=body, headers=headers)
    assert response.status_code == 202
    assert [a["claim_id"] for a in response.json()["accepted"]] == ["PHI-API-1"]
    assert response.json()["rejected"][0]["reason"] == "JSON_INVALID_CLAIM"
    for marker in markers.values():
        assert marker not in response.text


# ---------------------------------------------------------------------------------------------- error statuses


def test_400_for_a_body_that_cannot_be_read(api: Server):
    status, answer = _post(api, b'[{"claim_id": ', "application/json")
    assert status == 400
    assert "invalid JSON" in answer["detail"]
    status, answer = _post(api, b"not x12 at all", "application/edi-x12")
    assert (status, "ISA segment" in answer["detail"]) == (400, True)


def test_400_for_a_bad_correlation_id_or_idempotency_key(api: Server):
    body = (FIXTURES / "json" / "claim.json").read_bytes()
    status, answer = _post(api, body, "application/json", **{"X-Correlation-ID": "has:colon"})
    assert (status, "X-Correlation-ID" in answer["detail"]) == (400, True)
    status, answer = _post(api, body, "application/json", **{"Idempotency-Key": "x" * 300})
    assert (status, "Idempotency-Key" in answer["detail"]) == (400, True)


def test_401_without_a_token_or_with_a_bad_one(api: Server):
    body = (FIXTURES / "json" / "claim.json").read_bytes()
    with api.client() as client:
        missing = client.post("/v1/claims", content=body, headers={"Content-Type": "application/json"})
        token = api.token(Role.INGEST)
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        tampered = client.post("/v1/claims", content=body, headers={"Content-Type": "application/json",
                                                                    "Authorization": f"Bearer {forged}"})
        stale = LocalTokenIssuer(api.settings, clock=lambda: time.time() - 7200).issue("late", [Role.INGEST], 60)
        expired = client.post("/v1/claims", content=body, headers={"Content-Type": "application/json",
                                                                   "Authorization": f"Bearer {stale}"})
        malformed = client.post("/v1/claims", content=body, headers={"Content-Type": "application/json",
                                                                     "Authorization": "Bearer x.y.z"})
    for response in (missing, tampered, expired, malformed):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "found none" in missing.json()["detail"]
    assert "expired" in expired.json()["detail"]


def test_403_for_a_token_without_the_ingest_role(api: Server):
    body = (FIXTURES / "json" / "claim.json").read_bytes()
    status, answer = _post(api, body, "application/json", Role.ANALYST)
    assert status == 403
    assert "expected a token with role ingest" in answer["detail"]
    status, _ = _post(api, body, "application/json", Role.ADMIN)  # admin holds every role but privacy officer
    assert status == 202


def test_409_while_a_request_with_the_same_key_runs(api: Server):
    body = (FIXTURES / "json" / "claim.json").read_bytes()
    store = IdempotencyStore(api.settings.api.idempotency_db)
    store.begin("tester", "busy-key", fingerprint("application/json", body))  # another request holds it
    status, answer = _post(api, body, "application/json", **{"Idempotency-Key": "busy-key"})
    assert status == 409
    assert "still being processed" in answer["detail"]


def test_413_for_a_body_over_the_limit(serve):
    api = serve(max_body_bytes=4096)
    status, answer = _post(api, (FIXTURES / "json" / "claims_array.json").read_bytes(), "application/json")
    assert status == 413
    assert "at most 4,096 bytes" in answer["detail"]


def test_415_for_an_unknown_media_type(api: Server):
    status, answer = _post(api, b"claims", "text/csv")
    assert status == 415
    assert "application/edi-x12" in answer["detail"]


def test_422_when_no_record_is_a_claim_and_for_a_key_reused_for_another_body(api: Server):
    status, answer = _post(api, b'[1, "two", {"claim_id": ""}]', "application/json")
    assert status == 422
    assert [entry["reason"] for entry in answer["rejected"]] == ["JSON_NOT_AN_OBJECT", "JSON_NOT_AN_OBJECT",
                                                                  "JSON_INVALID_CLAIM"]
    first = (FIXTURES / "json" / "claim.json").read_bytes()
    assert _post(api, first, "application/json", **{"Idempotency-Key": "k-reuse"})[0] == 202
    status, answer = _post(api, first + b"\n", "application/json", **{"Idempotency-Key": "k-reuse"})
    assert status == 422
    assert "different one" in answer["detail"]


def test_idempotent_retry_is_answered_from_the_first_request_and_sends_nothing(api: Server):
    body = (FIXTURES / "x12" / "837p_multi.837").read_bytes()
    first = _post(api, body, "application/edi-x12", **{"Idempotency-Key": "k-retry"})
    second = _post(api, body, "application/edi-x12", **{"Idempotency-Key": "k-retry"})
    assert first[0] == second[0] == 202
    assert second[1]["replayed"] is True
    assert second[1]["accepted"] == first[1]["accepted"]
    raw = load_topics(api.settings.kafka.topics_file).raw
    messages = read_topic(api.settings.kafka.bootstrap_servers, raw, len(first[1]["accepted"]) + 1, timeout=5)
    assert len(messages) == len(first[1]["accepted"])


def test_429_when_a_client_sends_too_much(serve):
    from libs.api.ratelimit import RateLimiter  # noqa: PLC0415

    api = serve(limiter=RateLimiter(rate=0.01, burst=2))
    body = (FIXTURES / "json" / "claim.json").read_bytes()
    statuses = [_post(api, body, "application/json", subject="hammer")[0] for _ in range(3)]
    assert statuses[:2] == [202, 202]
    with api.client() as client:
        limited = client.post("/v1/claims", content=body, headers=api.headers(
            Role.INGEST, subject="hammer", **{"Content-Type": "application/json"}))
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert statuses[2] == 429
    # Another client is not held back by the first one's bucket.
    assert _post(api, body, "application/json", subject="calm")[0] == 202


def test_503_when_kafka_does_not_answer_says_which_records_were_not_sent(serve, kafka_broker, tmp_path):
    settings = ingest_settings(kafka_broker, tmp_path / "down")
    down = settings.model_copy(update={
        "kafka": KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topics_file=settings.kafka.topics_file),
        "api": settings.api.model_copy(update={"kafka_delivery_timeout_seconds": 2.0})})
    api = serve(down)
    path = FIXTURES / "json" / "claims_array.json"
    with api.client() as client:
        response = client.post("/v1/claims", content=path.read_bytes(),
                               headers=api.headers(Role.INGEST, **{"Content-Type": "application/json"}))
    status, answer = response.status_code, response.json()
    assert status == 503
    assert response.headers["Retry-After"] == "5"
    assert "found none answering" in answer["detail"]
    assert answer["accepted"] == []
    expected = list(read_claims([path]))
    assert sorted(entry["index"] for entry in answer["failed"]) == list(range(1, len(expected) + 1))
    assert {entry["reason"] for entry in answer["failed"]} == {"KAFKA_UNAVAILABLE"}
