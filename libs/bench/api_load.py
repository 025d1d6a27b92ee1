"""The API under load, for `make bench`: NDJSON ingestion into Kafka and analytics latency, with locust.

Two bounded phases against one `claims api` server on a free loopback port:

1. ingestion: IngestUser posts NDJSON bodies of `batch_size` generated claims back to back; a request counts only if
   every record came back acknowledged by Kafka (202, one `accepted` entry per line). The rate is the growth of the
   raw topic's end offsets (the broker's count) over the phase's wall time. Target: >= 3,000 claims/s.
2. analytics: AnalyticsUser (an analyst or a dashboard: 0.1-0.5 s between requests) reads
   /v1/analytics/{summary,providers,quality,fraud} with varied date ranges, orders and pages over a warehouse of
   `warehouse_claims` claims (a given DuckDB file, e.g. the batch's, or one built from generated claims by
   libs.api.sample_warehouse through the warehouse loader). Target: p99 <= 250 ms.

Locust runs as a subprocess (`locust -f libs/bench/api_locustfile.py --headless`): importing locust monkey-patches
the process for gevent, which the bench's Kafka and Spark clients must not see. The server is a subprocess too
(`claims api --workers N`), so the load generator and the server do not share a GIL. Every request is authenticated
and audited as in production; the per-client rate limit is lifted for the run (one client sends everything).
Timings are for `make bench` only, never asserted in tests.

    figures = run_api_load(ApiLoadConfig(work_dir=Path(".local/bench/work/api")))
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from libs.settings import REPO_ROOT, KafkaSettings

LOCUSTFILE = Path(__file__).with_name("api_locustfile.py")
INGEST_TARGET_CLAIMS_PER_SECOND = 3000.0
ANALYTICS_TARGET_P99_MS = 250.0
SERVER_START_SECONDS = 60.0


class ApiLoadError(RuntimeError):
    """The load run could not be carried out (server or locust did not start or finish); the message says which."""


@dataclass(frozen=True)
class ApiLoadConfig:
    """What to run. `bootstrap`: a running broker (None: start a local one in work_dir); `warehouse`: an existing
    DuckDB file to read (None: build one of `warehouse_claims` generated claims)."""

    work_dir: Path
    bootstrap: str | None = None
    warehouse: Path | None = None
    warehouse_claims: int = 100_000
    batch_size: int = 500
    bodies: int = 20
    ingest_users: int = 4
    ingest_seconds: int = 20
    analytics_users: int = 8
    analytics_seconds: int = 20
    server_workers: int = 2  # `claims api --workers`: ingestion is CPU-bound Python, one process per core
    seed: int = 7


def _write_bodies(directory: Path, *, bodies: int, batch_size: int, seed: int) -> int:
    """`bodies` NDJSON files of `batch_size` generated claims each (the generator's canonical JSON)."""
    from libs.generator.config import GeneratorConfig  # noqa: PLC0415
    from libs.generator.engine import claim_json, generate_records  # noqa: PLC0415

    directory.mkdir(parents=True, exist_ok=True)
    records = generate_records(GeneratorConfig(count=bodies * batch_size, seed=seed, defect_rate=0.0))
    for number in range(bodies):
        lines = [claim_json(next(records)[0]) for _ in range(batch_size)]
        (directory / f"body-{number:03d}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    return bodies * batch_size


def _environment(work: Path, bootstrap: str, topics_file: Path, warehouse: Path) -> dict[str, str]:
    """The server's settings as CLAIMS__ variables: everything under `work`, the rate limit lifted."""
    return {**os.environ,
            "CLAIMS__KAFKA__BOOTSTRAP_SERVERS": bootstrap, "CLAIMS__KAFKA__TOPICS_FILE": str(topics_file),
            "CLAIMS__WAREHOUSE__DUCKDB_PATH": str(warehouse),
            "CLAIMS__SECURITY__LOCAL_KEY_FILE": str(work / "keys" / "keyring.json"),
            "CLAIMS__SECURITY__AUDIT_LOG": str(work / "audit" / "audit.jsonl"),
            "CLAIMS__API__IDEMPOTENCY_DB": str(work / "idempotency.sqlite3"),
            "CLAIMS__API__RATE_LIMIT_PER_SECOND": "1000000", "CLAIMS__API__RATE_LIMIT_BURST": "1000000",
            "CLAIMS__LAKE__ROOT": str(work / "lake"), "CLAIMS__LAKE__CHECKPOINT_ROOT": str(work / "checkpoints")}


@contextmanager
def _server(work: Path, environment: dict[str, str], workers: int) -> Iterator[str]:
    """`claims api` on a free loopback port until the block ends; its log in work/api.log."""
    from libs.kafka.broker import free_port  # noqa: PLC0415

    port = free_port()
    log = (work / "api.log").open("wb")
    process = subprocess.Popen(  # noqa: S603  (our own CLI, fixed arguments)
        [sys.executable, "-m", "apps.cli.main", "api", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):  # noqa: S310  (loopback http)
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    msg = (f"expected `claims api` to answer on {url} within {SERVER_START_SECONDS:.0f} s; "
                           f"see {log.name}")
                    raise ApiLoadError(msg) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _locust(url: str, user: str, *, users: int, seconds: int, csv_prefix: Path, environment: dict[str, str]) -> float:
    """Run one bounded headless locust phase; returns its wall seconds. Stats land in <csv_prefix>_stats.csv."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
               "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s", "--stop-timeout", "10",
               "--csv", str(csv_prefix), "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0", user]
    started = time.perf_counter()
    with (csv_prefix.parent / f"{csv_prefix.name}.log").open("wb") as log:
        finished = subprocess.run(command, cwd=REPO_ROOT, env=environment, stdout=log,  # noqa: S603
                                  stderr=subprocess.STDOUT, timeout=seconds + 120, check=False)
    if finished.returncode != 0:
        msg = f"locust {user} exited {finished.returncode}; see {csv_prefix}.log"
        raise ApiLoadError(msg)
    return time.perf_counter() - started


def _stats(csv_prefix: Path) -> dict[str, dict[str, Any]]:
    """Name -> requests, failures and latency percentiles (ms) from locust's stats CSV."""
    rows: dict[str, dict[str, Any]] = {}
    with Path(f"{csv_prefix}_stats.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["Name"]] = {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                                 "p50_ms": float(row["50%"]), "p95_ms": float(row["95%"]),
                                 "p99_ms": float(row["99%"]), "max_ms": float(row["Max Response Time"]),
                                 "requests_per_second": float(row["Requests/s"])}
    return rows


def _warehouse(config: ApiLoadConfig) -> tuple[Path, int, str]:
    """The warehouse to read, its claim count and where it came from."""
    import duckdb  # noqa: PLC0415

    if config.warehouse is not None and config.warehouse.is_file():
        with duckdb.connect(str(config.warehouse), read_only=True) as connection:
            row = connection.execute("SELECT COUNT(*) FROM claims WHERE is_voided = FALSE").fetchone()
        return config.warehouse, int(row[0]) if row else 0, f"existing {config.warehouse}"
    from libs.api.sample_warehouse import build_sample_warehouse  # noqa: PLC0415

    path = config.work_dir / "warehouse" / "claims.duckdb"
    started = time.perf_counter()
    sample = build_sample_warehouse(path, count=config.warehouse_claims, seed=config.seed, days=30)
    return path, sample.claims, (f"{config.warehouse_claims:,} generated claims loaded by the warehouse loader in "
                                 f"{time.perf_counter() - started:.1f} s")


@contextmanager
def _broker(config: ApiLoadConfig) -> Iterator[str]:
    if config.bootstrap is not None:
        yield config.bootstrap
        return
    from libs.kafka.broker import LocalKafka  # noqa: PLC0415

    with LocalKafka(home=config.work_dir / "kafka", port=0, controller_port=0) as broker:
        yield broker.bootstrap


def run_api_load(config: ApiLoadConfig) -> dict[str, Any]:
    """Both phases; a figures dict with `stages` (StageResult fields: name, claims, seconds, note) for the report."""
    from libs.api.auth import LocalTokenIssuer, Role  # noqa: PLC0415
    from libs.kafka.admin import ensure_topics  # noqa: PLC0415
    from libs.kafka.offsets import topic_message_count  # noqa: PLC0415
    from libs.kafka.topics import load_topics, prefixed_topics_file  # noqa: PLC0415
    from libs.settings import load_settings  # noqa: PLC0415

    work = config.work_dir
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    body_claims = _write_bodies(work / "bodies", bodies=config.bodies, batch_size=config.batch_size, seed=config.seed)
    warehouse, warehouse_claims, warehouse_source = _warehouse(config)
    days = _days(warehouse)
    with _broker(config) as bootstrap:
        topics_file = prefixed_topics_file(work / "topics.json", f"apiload-{os.getpid()}", KafkaSettings().topics_file)
        kafka = KafkaSettings(bootstrap_servers=bootstrap, topics_file=topics_file)
        ensure_topics(kafka, topics_file)
        environment = _environment(work, bootstrap, topics_file, warehouse)
        with _server(work, environment, config.server_workers) as url:
            settings = load_settings(kafka=kafka, security={"local_key_file": work / "keys" / "keyring.json",
                                                            "audit_log": work / "audit" / "audit.jsonl"})
            token = LocalTokenIssuer(settings).issue("bench-load", [Role.INGEST, Role.ANALYST], 3600)
            locust_env = {**environment, "CLAIMS_BENCH_TOKEN": token, "CLAIMS_BENCH_BODIES": str(work / "bodies"),
                          "CLAIMS_BENCH_DAYS": ",".join(days)}
            raw_topic = load_topics(topics_file).raw
            before = topic_message_count(kafka, raw_topic)
            ingest_wall = _locust(url, "IngestUser", users=config.ingest_users, seconds=config.ingest_seconds,
                                  csv_prefix=work / "ingest", environment=locust_env)
            acknowledged = topic_message_count(kafka, raw_topic) - before
            analytics_wall = _locust(url, "AnalyticsUser", users=config.analytics_users,
                                     seconds=config.analytics_seconds, csv_prefix=work / "analytics",
                                     environment=locust_env)
    ingest = _stats(work / "ingest")
    analytics = _stats(work / "analytics")
    post = ingest.get("POST /v1/claims", {})
    # Conservative: every claim the raw topic gained during the phase over the phase's whole wall time (locust's start
    # and stop included); the in-window figure counts the requests locust saw succeed over --run-time.
    rate = acknowledged / ingest_wall if ingest_wall else 0.0
    in_window = post.get("requests", 0) - post.get("failures", 0)
    aggregated = analytics.get("Aggregated", {})
    return {
        "ingest": {"claims_acknowledged": acknowledged, "seconds": config.ingest_seconds,
                   "claims_per_second": round(rate, 1), "target_claims_per_second": INGEST_TARGET_CLAIMS_PER_SECOND,
                   "claims_per_second_in_window": round(in_window * config.batch_size / config.ingest_seconds, 1),
                   "met": rate >= INGEST_TARGET_CLAIMS_PER_SECOND, "batch_size": config.batch_size,
                   "users": config.ingest_users, "requests": post.get("requests", 0),
                   "failures": post.get("failures", 0), "p50_ms": post.get("p50_ms"), "p99_ms": post.get("p99_ms"),
                   "locust_wall_seconds": round(ingest_wall, 1), "distinct_body_claims": body_claims},
        "analytics": {"warehouse_claims": warehouse_claims, "warehouse": warehouse_source,
                      "users": config.analytics_users, "seconds": config.analytics_seconds,
                      "requests": aggregated.get("requests", 0), "failures": aggregated.get("failures", 0),
                      "p50_ms": aggregated.get("p50_ms"), "p95_ms": aggregated.get("p95_ms"),
                      "p99_ms": aggregated.get("p99_ms"), "target_p99_ms": ANALYTICS_TARGET_P99_MS,
                      "met": (aggregated.get("p99_ms") or 1e9) <= ANALYTICS_TARGET_P99_MS,
                      "requests_per_second": aggregated.get("requests_per_second"),
                      "per_route": {name: row for name, row in analytics.items() if name != "Aggregated"},
                      "locust_wall_seconds": round(analytics_wall, 1)},
        "machine": {"cpus": os.cpu_count(), "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "config": {key: str(value) if isinstance(value, Path) else value for key, value in asdict(config).items()},
        "stages": [{"name": f"api ingest (NDJSON x{config.batch_size}, acknowledged)", "claims": acknowledged,
                    "seconds": round(ingest_wall, 3),
                    "note": f"POST /v1/claims, {config.ingest_users} locust users, {config.server_workers} uvicorn "
                            "workers, audited"}],
    }


def _days(warehouse: Path) -> list[str]:
    """The warehouse's intake days (the analytics users' date filters)."""
    import duckdb  # noqa: PLC0415

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute("SELECT DISTINCT intake_date FROM intake_daily ORDER BY 1").fetchall()
    return [row[0].isoformat() for row in rows]
