"""The analytics routes through a real uvicorn server over a hand-computed DuckDB warehouse: figures, filters,
paging, refusals (401/403/422/503), the audit record, no PHI or member token in any answer, stream lag from a real
Prometheus endpoint, and the dashboard's page and vendored assets."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

import orjson
import pytest

from libs.api.auth import Role
from libs.api.stream_lag import LagSource, default_sources
from libs.api.warehouse import AnalyticsWarehouse
from libs.kafka.broker import free_port
from libs.model.phi import phi_fields
from libs.settings import WarehouseKind, WarehouseSettings
from libs.warehouse.load import BatchRun, connect_duckdb, record_run_duckdb
from tests.api.conftest import AnalyticsServer
from tests.warehouse.redshift_data_fake import RedshiftDataFake

ROUTES = ("/v1/analytics/summary", "/v1/analytics/providers", "/v1/analytics/quality", "/v1/analytics/fraud")
TOKENS = ("tok:v1:member-a", "tok:v1:member-b", "tok:v1:member-c", "tok:v1:member-d")
NPI_A, NPI_B = "1000000001", "1000000002"
CLAIM_COLUMNS = ("claim_id", "claim_type", "frequency_code", "is_voided", "billing_npi", "payer_id", "line_count",
                 "total_charge", "member_token", "fraud_codes", "source_format", "ingest_date", "phi_ciphertext")
# Feb 1: C1 (professional, P1, NPI A, 200, upcoding), C2 (institutional, P1, NPI B, 1000), C3 (professional, P2,
# NPI A, 300, outlier + upcoding), C4 voided (counts nowhere). Feb 2: C5 (professional, P1, NPI B, 50, upcoding).
CLAIMS = [
    ("C1", "professional", "1", False, NPI_A, "P1", 1, 200, TOKENS[0], "FRAUD_UPCODING", "x12-837p", date(2026, 2, 1)),
    ("C2", "institutional", "1", False, NPI_B, "P1", 1, 1000, TOKENS[1], None, "x12-837i", date(2026, 2, 1)),
    ("C3", "professional", "1", False, NPI_A, "P2", 1, 300, TOKENS[2], "FRAUD_OUTLIER_CHARGE,FRAUD_UPCODING",
     "x12-837p", date(2026, 2, 1)),
    ("C4", "professional", "1", True, NPI_A, "P1", 1, 999, TOKENS[3], "FRAUD_UPCODING", "x12-837p", date(2026, 2, 1)),
    ("C5", "professional", "1", False, NPI_B, "P1", 1, 50, TOKENS[0], "FRAUD_UPCODING", "fhir-claim", date(2026, 2, 2)),
]
SEALED = '{"sealed": "c2VhbGVkLXBoaS1ibG9jaw==", "envelope": "d3JhcHBlZC1rZXk="}'


def write_warehouse(path: Path) -> None:
    """The hand-computed warehouse above, with its intake counts, quarantine reasons and one batch run."""
    connection = connect_duckdb(path)
    try:
        placeholders = ", ".join("?" for _ in CLAIM_COLUMNS)
        connection.executemany(f"INSERT INTO claims ({', '.join(CLAIM_COLUMNS)}) VALUES ({placeholders})",
                               [(*row, SEALED) for row in CLAIMS])
        connection.execute("INSERT INTO intake_daily VALUES ('2026-02-01', 'x12-837p', 2, 1, 0, 0, now()), "
                           "('2026-02-01', 'x12-837i', 1, 0, 0, 0, now()), "
                           "('2026-02-02', 'fhir-claim', 1, 1, 0, 0, now())")
        connection.execute("INSERT INTO quarantine_summary VALUES "
                           "('2026-02-01', 'NPI_FORMAT', 'error', 'x12-837p', 1, NULL, NULL, now()), "
                           "('2026-02-01', 'MISSING_DIAGNOSIS', 'error', 'x12-837p', 1, NULL, NULL, now()), "
                           "('2026-02-02', 'ICD10_UNKNOWN', 'error', 'fhir-claim', 1, NULL, NULL, now())")
        connection.execute(f"INSERT INTO providers (npi, specialty, claim_count) VALUES ('{NPI_A}', "
                           "'family medicine', 3)")
    finally:
        connection.close()
    record_run_duckdb(path, BatchRun(batch_run_id="run-2026-02-02", pipeline="batch", status="succeeded",
                                     started_at=datetime(2026, 2, 3, 2, 0), run_date=date(2026, 2, 2), valid_rows=4,
                                     quarantined_rows=2))


@pytest.fixture
def api(serve_analytics: Callable[..., AnalyticsServer]) -> AnalyticsServer:
    server = serve_analytics()
    write_warehouse(server.settings.warehouse.duckdb_path)
    return server


def _get(api: AnalyticsServer, path: str, *roles: Role, **params: object) -> dict:
    with api.client() as client:
        response = client.get(path, params=params, headers=api.headers(*(roles or (Role.ANALYST,))))
    assert response.status_code == 200, response.text
    return response.json()


def test_summary_counts_standing_claims_by_day_type_and_payer(api: AnalyticsServer):
    rows = _get(api, "/v1/analytics/summary")["rows"]
    assert [(r["intake_date"], r["claim_type"], r["payer_id"], r["claims"], r["billed_amount"]) for r in rows] == [
        ("2026-02-02", "professional", "P1", 1, 50.0),
        ("2026-02-01", "institutional", "P1", 1, 1000.0),
        ("2026-02-01", "professional", "P1", 1, 200.0),  # C4 is voided: not counted, not billed
        ("2026-02-01", "professional", "P2", 1, 300.0),
    ]
    assert rows[0]["valid_ratio"] == pytest.approx(0.5)  # Feb 2: 1 valid, 1 quarantined
    assert [r["valid_ratio"] for r in rows[1:]] == [pytest.approx(0.75)] * 3  # Feb 1: 3 valid, 1 quarantined


def test_summary_filters(api: AnalyticsServer):
    feb1 = _get(api, "/v1/analytics/summary", **{"from": "2026-02-01", "to": "2026-02-01"})["rows"]
    assert {r["intake_date"] for r in feb1} == {"2026-02-01"}
    assert len(feb1) == 3
    p2 = _get(api, "/v1/analytics/summary", payer_id="P2")["rows"]
    assert [(r["claim_type"], r["billed_amount"]) for r in p2] == [("professional", 300.0)]
    institutional = _get(api, "/v1/analytics/summary", claim_type="institutional")["rows"]
    assert [r["billed_amount"] for r in institutional] == [1000.0]


def test_providers_rank_billing_providers_with_alert_counts(api: AnalyticsServer):
    rows = _get(api, "/v1/analytics/providers")["rows"]
    assert [(r["npi"], r["claims"], r["billed_amount"], r["alerted_claims"], r["alerts"]) for r in rows] == [
        (NPI_B, 2, 1050.0, 1, 1), (NPI_A, 2, 500.0, 2, 3)]  # C3 has two alerts; voided C4 counts nowhere
    assert rows[1]["specialty"] == "family medicine"
    by_alerts = _get(api, "/v1/analytics/providers", order_by="alerts")["rows"]
    assert [r["npi"] for r in by_alerts] == [NPI_A, NPI_B]
    feb2 = _get(api, "/v1/analytics/providers", **{"from": "2026-02-02"})["rows"]
    assert [(r["npi"], r["claims"], r["billed_amount"]) for r in feb2] == [(NPI_B, 1, 50.0)]
    assert _get(api, "/v1/analytics/providers", min_claims=3)["rows"] == []


def test_quality_gives_valid_ratio_and_top_reasons_by_day_and_format(api: AnalyticsServer):
    rows = _get(api, "/v1/analytics/quality")["rows"]
    assert [(r["intake_date"], r["source_format"], r["valid_claims"], r["quarantined_claims"]) for r in rows] == [
        ("2026-02-02", "fhir-claim", 1, 1), ("2026-02-01", "x12-837i", 1, 0), ("2026-02-01", "x12-837p", 2, 1)]
    assert [r["valid_ratio"] for r in rows] == [pytest.approx(0.5), pytest.approx(1.0), pytest.approx(2 / 3)]
    assert [reason["reason_code"] for reason in rows[2]["top_reasons"]] == ["MISSING_DIAGNOSIS", "NPI_FORMAT"]
    assert rows[1]["top_reasons"] == []
    top1 = _get(api, "/v1/analytics/quality", source_format="x12-837p", top=1)["rows"]
    assert [[reason["reason_code"] for reason in r["top_reasons"]] for r in top1] == [["MISSING_DIAGNOSIS"]]


def test_fraud_counts_alerts_by_rule_and_day(api: AnalyticsServer):
    rows = _get(api, "/v1/analytics/fraud")["rows"]
    assert [(r["intake_date"], r["rule"], r["alerts"], r["billed_amount"]) for r in rows] == [
        ("2026-02-02", "FRAUD_UPCODING", 1, 50.0),
        ("2026-02-01", "FRAUD_UPCODING", 2, 500.0),
        ("2026-02-01", "FRAUD_OUTLIER_CHARGE", 1, 300.0),
    ]
    outlier = _get(api, "/v1/analytics/fraud", rule="FRAUD_OUTLIER_CHARGE")["rows"]
    assert [(r["intake_date"], r["alerts"]) for r in outlier] == [("2026-02-01", 1)]


@pytest.mark.parametrize("route", ROUTES)
def test_pages_walk_every_row_once(api: AnalyticsServer, route: str):
    everything = _get(api, route, limit=1000)["rows"]
    assert len(everything) >= 2  # the walk below must cross pages
    walked: list[dict] = []
    path: str | None = f"{route}?limit=1"
    with api.client() as client:
        while path is not None:
            page = client.get(path, headers=api.headers(Role.ANALYST)).json()
            assert len(page["rows"]) == 1
            walked += page["rows"]
            assert page["has_more"] is (page["next"] is not None)
            path = page["next"]
    assert walked == everything


@pytest.mark.parametrize("route", [*ROUTES, "/v1/stream/lag"])
def test_refusals_without_token_with_bad_token_and_wrong_role(api: AnalyticsServer, route: str):
    with api.client() as client:
        anonymous = client.get(route)
        forged = client.get(route, headers={"Authorization": "Bearer not.a.jwt"})
        ingest = client.get(route, headers=api.headers(Role.INGEST))
        officer = client.get(route, headers=api.headers(Role.PRIVACY_OFFICER))
        admin = client.get(route, headers=api.headers(Role.ADMIN))
    assert (anonymous.status_code, forged.status_code) == (401, 401)
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert (ingest.status_code, officer.status_code) == (403, 403)
    assert "expected a token with role analyst" in ingest.json()["detail"]
    assert admin.status_code == 200


@pytest.mark.parametrize(("route", "params", "named"), [
    ("/v1/analytics/summary", {"from": "2026-02-02", "to": "2026-02-01"}, "from/to"),
    ("/v1/analytics/summary", {"limit": 0}, "limit"),
    ("/v1/analytics/fraud", {"limit": 1001}, "limit"),
    ("/v1/analytics/quality", {"offset": -1}, "offset"),
    ("/v1/analytics/quality", {"top": 21}, "top"),
    ("/v1/analytics/providers", {"order_by": "name"}, "order_by"),
    ("/v1/analytics/fraud", {"from": "yesterday"}, "from"),
])
def test_bad_parameters_are_422_naming_the_parameter(api: AnalyticsServer, route: str, params: dict, named: str):
    with api.client() as client:
        response = client.get(route, params=params, headers=api.headers(Role.ANALYST))
    assert response.status_code == 422
    assert named in response.json()["detail"]


def test_no_answer_carries_phi_or_member_tokens(api: AnalyticsServer):
    bodies = []
    with api.client() as client:
        for route in ROUTES:
            response = client.get(route, params={"limit": 1000}, headers=api.headers(Role.ANALYST))
            assert response.status_code == 200
            assert response.json()["rows"]  # the check below must not pass on empty answers
            bodies.append(response.text)
    text = "\n".join(bodies)
    for token in TOKENS:
        assert token not in text
    assert "tok:" not in text
    assert SEALED.split('"')[3] not in text  # the sealed PHI block
    keys = {key for body in bodies for row in orjson.loads(body)["rows"] for key in row}
    phi_leaves = {field.path.rsplit(".", 1)[-1] for field in phi_fields()}
    assert not keys & phi_leaves, keys & phi_leaves
    assert not [key for key in keys if "member" in key or "phi" in key or "patient" in key]


def test_missing_warehouse_is_503_naming_the_batch_command(serve_analytics: Callable[..., AnalyticsServer]):
    server = serve_analytics()
    assert not server.settings.warehouse.duckdb_path.exists()
    with server.client() as client:
        for route in ROUTES:
            response = client.get(route, headers=server.headers(Role.ANALYST))
            assert response.status_code == 503
            detail = response.json()["detail"]
            assert "claims batch --date YYYY-MM-DD" in detail
            assert "\n" not in detail
    assert not server.settings.warehouse.duckdb_path.exists()  # reading never creates an empty warehouse


@pytest.fixture
def writer_holding_the_lock(api: AnalyticsServer) -> Iterator[None]:
    """Another process with the warehouse open read-write (as a running batch has it)."""
    script = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); "
              "time.sleep(120)")
    process = subprocess.Popen([sys.executable, "-c", script, str(api.settings.warehouse.duckdb_path)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        yield
    finally:
        process.kill()
        process.wait(timeout=30)


def test_warehouse_locked_by_a_batch_is_503_with_retry_after(api: AnalyticsServer, writer_holding_the_lock: None):
    with api.client() as client:
        response = client.get("/v1/analytics/summary", headers=api.headers(Role.ANALYST))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "being written by a batch run" in response.json()["detail"]


def test_analytics_requests_are_audited(api: AnalyticsServer):
    with api.client() as client:
        client.get("/v1/analytics/fraud", headers=api.headers(Role.ANALYST, subject="analyst-7"))
        client.get("/v1/analytics/summary", headers=api.headers(Role.INGEST, subject="bot-3"))
    audit = api.settings.security.audit_log
    deadline = time.monotonic() + 30
    while not (audit.exists() and len(audit.read_bytes().splitlines()) >= 2):
        assert time.monotonic() < deadline, "audit records not written"
        time.sleep(0.05)
    records = [orjson.loads(line) for line in audit.read_bytes().splitlines()]
    # Each record is written after its response, in a worker thread: the two may land in either order.
    assert sorted((r["actor"], r["route"], r["status"]) for r in records) == [
        ("analyst-7", "/v1/analytics/fraud", 200), ("bot-3", "/v1/analytics/summary", 403)]


def test_batches_list_reads_the_ledger_read_only(api: AnalyticsServer):
    answer = _get(api, "/v1/batches")
    assert answer["ledger_note"] is None
    assert [(run["batch_run_id"], run["status"], run["run_date"]) for run in answer["ledger"]] == [
        ("run-2026-02-02", "succeeded", "2026-02-02")]


def test_stream_lag_from_the_stream_metrics_endpoint(serve_analytics: Callable[..., AnalyticsServer],
                                                     stream_endpoint: str):
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    server = serve_analytics(lag_sources=[LagSource("exporter", dead, "claims_kafka_consumer_lag"),
                                          LagSource("stream", stream_endpoint, "claims_stream_consumer_lag")])
    lag = _get(server, "/v1/stream/lag")  # type: ignore[arg-type]
    assert (lag["available"], lag["source"], lag["lag_messages"], lag["partitions"]) == (True, "stream", 12, 2)


def test_no_stream_metrics_is_said_plainly(serve_analytics: Callable[..., AnalyticsServer]):
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    server = serve_analytics(lag_sources=[LagSource("stream", dead, "claims_stream_consumer_lag")])
    lag = _get(server, "/v1/stream/lag")  # type: ignore[arg-type]
    assert (lag["available"], lag["lag_messages"]) == (False, None)
    assert lag["detail"].startswith("no stream metrics")
    assert dead in lag["detail"]


def test_default_lag_sources_are_the_exporter_then_the_stream(api: AnalyticsServer):
    sources = default_sources(api.settings.monitoring)
    assert [source.name for source in sources] == ["exporter", "stream"]
    assert sources[1].url.endswith(f":{api.settings.monitoring.streaming_metrics_port}/metrics")


def test_dashboard_page_and_vendored_libraries_are_served(api: AnalyticsServer):
    with api.client() as client:
        page = client.get("/dashboard")
        script = client.get("/static/dashboard/dashboard.js")
        vega = client.get("/static/vendor/vega.min.js")
        other = client.get("/static/vendor/jquery.js")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert 'src="/static/vendor/vega-embed.min.js"' in page.text
    assert "https://" not in page.text  # nothing from a CDN
    assert script.status_code == 200
    assert vega.status_code == 200
    assert vega.headers["content-type"].startswith("text/javascript")
    assert other.status_code == 404


def test_missing_chart_libraries_name_the_make_target(serve_analytics: Callable[..., AnalyticsServer],
                                                      tmp_path: Path):
    server = serve_analytics(web_assets=tmp_path / "no-assets")
    with server.client() as client:
        page = client.get("/dashboard")
        vega = client.get("/static/vendor/vega.min.js")
    for response in (page, vega):
        assert response.status_code == 503
        assert "make web-assets" in response.json()["detail"]


def test_in_aws_the_same_routes_answer_from_redshift(serve_analytics: Callable[..., AnalyticsServer],
                                                     api: AnalyticsServer):
    """warehouse.kind redshift: the routes run the same queries through the Data API (a stand-in answering from the
    same warehouse file) and answer what the DuckDB server answers; a failing statement is a 503 naming the cluster."""
    local = api.settings
    settings = local.model_copy(update={"warehouse": WarehouseSettings(
        kind=WarehouseKind.REDSHIFT, redshift_cluster_id="claims-dev",
        redshift_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:claims-admin")})
    fake = RedshiftDataFake(local.warehouse.duckdb_path)
    redshift = serve_analytics(settings=settings,
                               warehouse=AnalyticsWarehouse(settings, redshift_client=fake.client))
    for route in ROUTES:
        assert _get(redshift, route) == _get(api, route), route
    assert _get(redshift, "/v1/batches")["ledger"] == _get(api, "/v1/batches")["ledger"]
    assert {request["ClusterIdentifier"] for request in fake.requests if "ClusterIdentifier" in request} == {
        "claims-dev"}
    fake.fail_next = "ERROR: permission denied for relation claims"
    with redshift.client() as client:
        response = client.get("/v1/analytics/summary", headers=redshift.headers(Role.ANALYST))
    assert response.status_code == 503
    assert "claims-dev" in response.json()["detail"]
    assert "permission denied" in response.json()["detail"]


def test_a_batch_asked_for_without_its_dependencies_is_refused_at_once(api: AnalyticsServer):
    """No stream tables in the lake: 503 in seconds with the line `claims batch` prints (naming the fix), the refusal
    in the batch_runs ledger, and no job started."""
    started = time.monotonic()
    with api.client() as client:
        response = client.post("/v1/batches", json={"date": "2026-02-02"}, headers=api.headers(Role.OPERATOR))
    assert response.status_code == 503, response.text
    assert time.monotonic() - started < 10
    detail = response.json()["detail"]
    assert detail.startswith("expected ")
    assert "make run" in detail
    listed = _get(api, "/v1/batches", Role.OPERATOR)
    assert listed["jobs"] == []
    refused = [run for run in listed["ledger"] if run["status"] == "failed"]
    assert [(run["run_date"], run["error"]) for run in refused] == [("2026-02-02", detail)]
