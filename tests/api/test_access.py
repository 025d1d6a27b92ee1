"""Roles, the audit trail, re-identification, batch runs, health, readiness, metrics and the OpenAPI document,
through a real uvicorn server."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from libs.api.auth import Role
from libs.kafka.topics import load_topics
from libs.phi.audit import verify
from libs.settings import REPO_ROOT
from tests.api.batch_targets import GATE_FILE
from tests.api.conftest import Server
from tests.ingest.helpers import read_topic

pytestmark = pytest.mark.kafka

FIXTURES = REPO_ROOT / "tests" / "fixtures"


def _audit(api: Server) -> list[dict]:
    return [orjson.loads(line) for line in api.settings.security.audit_log.read_bytes().splitlines()]


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_every_request_is_audited_after_the_response_refused_ones_too(api: Server):
    body = (FIXTURES / "x12" / "837p_multi.837").read_bytes()
    with api.client() as client:
        refused = client.post("/v1/claims", content=body, headers={"Content-Type": "application/edi-x12"})
        forbidden = client.get("/v1/batches", headers=api.headers(Role.INGEST, subject="ingest-bot"))
        accepted = client.post("/v1/claims", content=body, headers=api.headers(
            Role.INGEST, subject="ingest-bot", **{"Content-Type": "application/edi-x12", "X-Correlation-ID": "c-42"}))
        missing = client.get("/v1/nothing-here", headers=api.headers(Role.ANALYST, subject="curious"))
        client.get("/healthz")
    _wait_for(lambda: len(_audit(api)) >= 4)
    records = _audit(api)
    assert [(r["actor"], r["route"], r["status"]) for r in records] == [
        ("anonymous", "/v1/claims", 401),
        ("ingest-bot", "/v1/batches", 403),
        ("ingest-bot", "/v1/claims", 202),
        ("curious", "unmatched", 404),
    ]
    assert refused.status_code == 401
    assert forbidden.status_code == 403
    assert missing.status_code == 404
    ingest = records[2]
    assert ingest["event"] == "api.request"
    assert ingest["roles"] == ["ingest"]
    assert ingest["correlation_id"] == "c-42"
    assert ingest["claim_ids"] == [entry["claim_id"] for entry in accepted.json()["accepted"]]
    assert verify(api.settings.security.audit_log).ok  # one hash chain, as `claims audit verify` checks it


def test_privacy_officer_reveals_and_both_audit_records_are_written(api: Server):
    body = (FIXTURES / "json" / "claim.json").read_bytes()
    with api.client() as client:
        posted = client.post("/v1/claims", content=body, headers=api.headers(Role.INGEST,
                                                                              **{"Content-Type": "application/json"}))
        claim_id = posted.json()["accepted"][0]["claim_id"]
        [message] = read_topic(api.settings.kafka.bootstrap_servers,
                               load_topics(api.settings.kafka.topics_file).raw, 1)
        request = {"record": orjson.loads(message.value), "fields": ["patient.last_name"], "reason": "case 17"}
        revealed = client.post("/v1/reveal", json=request, headers=api.headers(Role.PRIVACY_OFFICER, subject="po"))
        by_admin = client.post("/v1/reveal", json=request, headers=api.headers(Role.ADMIN, subject="root"))
        by_ingest = client.post("/v1/reveal", json=request, headers=api.headers(Role.INGEST, subject="bot"))
    assert revealed.status_code == 200
    answer = revealed.json()
    assert (answer["claim_id"], answer["masked"]) == (claim_id, True)  # masked outside production
    assert answer["values"]["patient.last_name"]
    assert by_admin.status_code == 403  # re-identification takes the privacy officer's own role
    assert by_ingest.status_code == 403
    _wait_for(lambda: sum(r.get("route") == "/v1/reveal" for r in _audit(api)) == 3)
    records = _audit(api)
    reveals = [r for r in records if r["event"] == "phi.reveal"]
    assert [(r["actor"], r["claim_id"], r["decision"]) for r in reveals] == [("po", claim_id, "allowed")]
    requests = [r for r in records if r.get("route") == "/v1/reveal"]
    # Refused before the body is read: those requests touched no claim.
    assert [(r["actor"], r["status"], r["claim_ids"]) for r in requests] == [
        ("po", 200, [claim_id]), ("root", 403, []), ("bot", 403, [])]
    assert verify(api.settings.security.audit_log).ok


def test_batch_runs_202_with_a_status_url_409_while_that_date_runs(api: Server):
    operator = api.headers(Role.OPERATOR, subject="ops")
    with api.client() as client:
        started = client.post("/v1/batches", json={"date": "2026-10-30"}, headers=operator)
        again = client.post("/v1/batches", json={"date": "2026-10-30"}, headers=operator)
        other_day = client.post("/v1/batches", json={"date": "2026-10-29"}, headers=operator)
        by_analyst = client.post("/v1/batches", json={"date": "2026-10-28"}, headers=api.headers(Role.ANALYST))
        status_url = started.json()["status_url"]
        _wait_for(lambda: client.get(status_url, headers=operator).json()["status"] == "running")
        lake = Path(api.settings.lake.root)
        lake.mkdir(parents=True, exist_ok=True)
        (lake / GATE_FILE).touch()
        _wait_for(lambda: client.get(status_url, headers=operator).json()["status"] == "succeeded")
        done = client.get(status_url, headers=api.headers(Role.ANALYST)).json()
        listed = client.get("/v1/batches", headers=api.headers(Role.ANALYST)).json()
        unknown = client.get("/v1/batches/job-nope", headers=operator)
    assert started.status_code == 202
    assert started.headers["Location"] == status_url
    assert again.status_code == 409
    assert again.json()["job"]["job_id"] == started.json()["job_id"]
    assert other_day.status_code == 202
    assert by_analyst.status_code == 403
    assert (done["run_date"], done["batch_run_id"], done["counts"]) == (
        "2026-10-30", "batch-2026-10-30-test", {"silver_claims": 3, "inserted": 3})
    assert {job["job_id"] for job in listed["jobs"]} == {started.json()["job_id"], other_day.json()["job_id"]}
    assert unknown.status_code == 404


def test_health_readiness_metrics_and_openapi(api: Server):
    with api.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        not_ready = client.get("/readyz")
        Path(api.settings.lake.root).mkdir(parents=True, exist_ok=True)
        api.settings.warehouse.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
        duckdb.connect(str(api.settings.warehouse.duckdb_path)).close()
        ready = client.get("/readyz")
        body = (FIXTURES / "json" / "claims_array.json").read_bytes()
        posted = client.post("/v1/claims", content=body, headers=api.headers(Role.INGEST,
                                                                              **{"Content-Type": "application/json"}))
        metrics = client.get("/metrics").text
        openapi = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["kafka"]["ok"] is True
    assert not_ready.json()["detail"] == "unreachable: lake, warehouse"
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics) for s in family.samples}
    answer = posted.json()
    assert samples[("claims_api_claims_total", (("outcome", "accepted"),))] == len(answer["accepted"])
    assert samples[("claims_api_claims_total", (("outcome", "rejected"),))] == len(answer["rejected"])
    assert samples[("claims_api_requests_total", (("method", "POST"), ("route", "/v1/claims"),
                                                  ("status", "202")))] == 1
    assert ("claims_api_request_duration_seconds_count", (("method", "GET"), ("route", "/readyz"))) in samples
    assert {"/v1/claims", "/v1/batches", "/v1/batches/{job_id}", "/v1/reveal", "/healthz", "/readyz",
            "/metrics"} <= set(openapi["paths"])
    assert "application/edi-x12" in openapi["paths"]["/v1/claims"]["post"]["requestBody"]["content"]
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
