"""The batch frames on a small protected lake, the fraud screens over silver, and the job end to end (twice)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from libs.batch import frames, fraud
from libs.batch.job import run_batch
from libs.codesets import load_codesets
from libs.fraud.catalog import FraudCode
from libs.kafka.admin import ensure_topics
from libs.kafka.topics import load_topics
from libs.lake import current_claims, read_delta
from libs.settings import KafkaSettings, WarehouseSettings, load_settings
from libs.warehouse.dialect import table_columns
from libs.warehouse.load import batch_runs_duckdb
from tests.batch.conftest import DAY, Lake
from tests.kafka.helpers import message_count, read_all, write_topics_file

pytestmark = pytest.mark.spark
NOW = datetime(2026, 10, 31, 2, 0, tzinfo=UTC)


def test_claims_frame_has_the_warehouse_columns_and_only_protected_phi(silver: DataFrame, lake: Lake) -> None:
    first_id = silver.select("claim_id").collect()[0]["claim_id"]
    alerts = silver.sparkSession.createDataFrame([(first_id, "FRAUD_X")], "claim_id string, rule string")
    claims = frames.claims_frame(silver, alerts=alerts, batch_run_id="run-1", raw_topic="raw", loaded_at=NOW)
    rows = claims.collect()

    assert claims.columns == table_columns()["claims"]
    assert len(rows) == silver.count() > 0
    assert sum(1 for r in rows if r["fraud_codes"] == "FRAUD_X") == 1
    assert all(r["member_token"] is None or r["member_token"].startswith("tok:") for r in rows)
    with_phi = next(r for r in rows if r["phi_ciphertext"])
    document = json.loads(with_phi["phi_ciphertext"])
    assert document["sealed"].startswith("enc:")
    # The sealed block and its envelope are enough for an audited reveal of the person's name.
    record = {"claim_id": with_phi["claim_id"], "phi_envelope": document["envelope"],
              "phi_sealed": document["sealed"]}
    revealed = lake.protector.reveal(record, ["patient.last_name"], actor="t", role="phi-reader", reason="test")
    original = next(c for c in lake.claims if c.claim_id == with_phi["claim_id"])
    assert original.patient is not None
    assert revealed == {"patient.last_name": original.patient.last_name}


def test_lines_providers_and_quarantine_summary(spark: SparkSession, silver: DataFrame, lake: Lake) -> None:
    lines = frames.claim_lines_frame(silver, loaded_at=NOW)
    providers = frames.providers_frame(silver, updated_at=NOW)
    quarantine = spark.read.format("delta").load(lake.tables.quarantine)
    bronze = spark.read.format("delta").load(lake.tables.bronze)
    summary = frames.quarantine_summary_frame(quarantine, frames.source_formats(bronze), updated_at=NOW)

    assert lines.columns == table_columns()["claim_lines"]
    line_total = silver.select(F.sum(F.size("lines"))).collect()[0][0]
    assert lines.count() == line_total - frames.duplicate_line_count(silver)
    assert providers.columns == table_columns()["providers"]
    billing = {r["billing_provider"]["npi"] for r in silver.select("billing_provider").collect()} - {None}
    assert billing <= {r["npi"] for r in providers.select("npi").collect()}
    errors = quarantine.select(F.sum(F.size("reason_codes"))).collect()[0][0]
    rows = summary.collect()
    assert summary.columns == table_columns()["quarantine_summary"]
    assert errors > 0
    assert sum(r["claim_count"] for r in rows if r["severity"] == "error") == errors
    assert {r["summary_date"] for r in rows} == {DAY}
    assert {r["source_format"] for r in rows} == {"synthetic"}


def test_fraud_screens_run_on_silver_and_name_no_phi(silver: DataFrame) -> None:
    alerts = fraud.screen_day_alerts(silver, load_codesets(), batch_run_id="run-1",
                                     created_at=datetime(2026, 12, 1, tzinfo=UTC)).collect()

    duplicate = next(a for a in alerts if a["rule"] == FraudCode.EXACT_DUPLICATE.value
                     and a["claim_id"].endswith("-DUP"))
    assert duplicate["screen"] == fraud.SCREEN_BATCH
    assert {a["batch_run_id"] for a in alerts} == {"run-1"}
    # Members are compared by token and never named; no ciphertext leaks into a detail either.
    assert not [a["detail"] for a in alerts if "tok:" in a["detail"] or "enc:" in a["detail"]]


@pytest.mark.kafka
def test_the_job_loads_the_warehouse_and_a_rerun_changes_nothing(
    spark: SparkSession, lake: Lake, kafka_settings: KafkaSettings, tmp_path: Path,
) -> None:
    topics_file = write_topics_file(tmp_path, partitions=1)
    kafka = KafkaSettings(bootstrap_servers=kafka_settings.bootstrap_servers, topics_file=topics_file)
    ensure_topics(kafka, topics_file)
    settings = load_settings(kafka=kafka, lake=lake.settings,
                             warehouse=WarehouseSettings(duckdb_path=tmp_path / "wh.duckdb"))

    first = run_batch(spark, settings, DAY)
    second = run_batch(spark, settings, DAY)
    other_day = run_batch(spark, settings, datetime(2026, 1, 1, tzinfo=UTC).date())

    silver_count = current_claims(read_delta(spark, lake.tables.silver), read_delta(spark, lake.tables.claim_events)
                                  ).count()
    assert first.counts["silver_claims"] == silver_count
    assert first.counts["inserted"] > silver_count  # claims, their lines, providers, quarantine summary
    assert second.counts["inserted"] == second.counts["updated"] == second.counts["deleted"] == 0
    assert other_day.counts["silver_claims"] == other_day.counts["inserted"] == 0
    alerts_topic = load_topics(topics_file).alerts
    published = read_all(kafka, alerts_topic, expected=first.published_alerts)
    assert first.published_alerts > 0
    assert second.published_alerts == 0
    assert message_count(kafka, alerts_topic) == first.published_alerts
    assert all(json.loads(value)["screen"] == "batch" for _, value in published)
    gold = spark.read.format("delta").load(lake.tables.gold_alerts)
    assert gold.count() == first.alerts == second.alerts
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM claims").fetchone() == (silver_count,)
        flagged = connection.execute("SELECT claim_id FROM claims WHERE fraud_codes LIKE '%FRAUD_EXACT_DUPLICATE%'")
        assert any(claim_id.endswith("-DUP") for (claim_id,) in flagged.fetchall())
    runs = batch_runs_duckdb(tmp_path / "wh.duckdb")
    assert [r.status for r in runs] == ["succeeded"] * 3
    assert runs[-1].run_date == DAY
    assert runs[-1].valid_rows == silver_count
