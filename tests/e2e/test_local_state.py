"""After `claims run` (what `make run` calls), the other commands find its state with no extra settings.

The sequence of the issue, with the real commands in subprocesses on a local directory of their own: a small run
(it ends with the daily batch), then with no broker `claims batch --date <today>` fails fast naming the broker, then
`claims kafka up` (the same defaults: the broker the run used, its data directory and port) and the batch succeeds on
the run's lake and reaches the run's topics, then `claims batch status` shows both runs; `claims run` again refuses
to mix its counts with the earlier state, and `--fresh` starts over while keeping the keyring.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from libs.kafka.topics import load_topics
from libs.settings import REPO_ROOT, KafkaSettings
from tests.cli.helpers import local_env, processes_of, run_claims, wait_for
from tests.kafka.helpers import message_count

pytestmark = [pytest.mark.kafka, pytest.mark.spark]

TODAY = datetime.now(UTC).date().isoformat()
TOPICS = load_topics(REPO_ROOT / "configs" / "kafka" / "topics.json")


def test_after_run_the_batch_needs_only_a_broker_and_finds_the_runs_lake_and_topics(tmp_path: Path) -> None:
    env = local_env(tmp_path)
    bootstrap = env["CLAIMS__KAFKA__BOOTSTRAP_SERVERS"]
    try:
        run = run_claims(env, "run", "--count", "300", "--no-progress")
        assert run.code == 0, run.stderr[-2000:]
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["reconciled"] is True
        assert summary["batch"]["failed"] is None
        assert summary["batch"]["dates"] == [TODAY]
        assert summary["batch"]["claims_loaded"] == summary["current"]
        assert summary["batch"]["member_months"] > 0  # the generated population's, so PMPM has a denominator
        assert "daily batch" in run.stdout
        assert (tmp_path / "lake" / "silver" / "claims" / "_delta_log").is_dir()  # the default lake, not a run's own
        assert (tmp_path / "warehouse" / "claims.duckdb").is_file()
        # The broker it started is stopped; Spark's JVM ends with the interpreter.
        wait_for(lambda: not processes_of(tmp_path), 60, "no process of the run left")

        no_broker = run_claims(env, "batch", "--date", TODAY)
        assert no_broker.code == 2
        assert no_broker.seconds < 30
        (line,) = no_broker.error_lines
        assert line.startswith(f"error: expected a Kafka broker at {bootstrap}")
        assert "`make kafka-up`" in line

        up = run_claims(env, "kafka", "up")
        assert up.code == 0, up.stdout + up.stderr
        assert f"data: {tmp_path}/kafka/data" in " ".join(up.stdout.split())
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        alerts_before = message_count(kafka, TOPICS.alerts)
        assert alerts_before == summary["topics"][TOPICS.alerts]  # the run's topics, kept in the broker's data

        batch = run_claims(env, "batch", "--date", TODAY)
        assert batch.code == 0, batch.stderr[-2000:]
        table = " ".join(batch.stdout.split())
        assert f"claims loaded │ {summary['current']:,}" in table
        published = int(table.split(f"published to {TOPICS.alerts} │ ")[1].split()[0].replace(",", ""))
        assert message_count(kafka, TOPICS.alerts) == alerts_before + published

        status = run_claims(env, "batch", "status")
        assert status.code == 0
        lines = status.stdout.splitlines()
        assert f"{TODAY}  succeeded  claims {summary['current']}" in lines[0]
        assert "failed" in lines[1]
        assert "expected a Kafka broker" in lines[1]

        again = run_claims(env, "kafka", "down")
        assert again.code == 0
        refused = run_claims(env, "run", "--count", "300", "--no-progress")
        assert refused.code == 2
        assert "`make run FRESH=1`" in refused.error_lines[-1]

        keyring = (tmp_path / "keys" / "keyring.json").read_bytes()
        fresh = run_claims(env, "run", "--count", "300", "--fresh", "--no-progress")
        assert fresh.code == 0, fresh.stderr[-2000:]
        assert "--fresh: deleted" in fresh.stderr
        assert (tmp_path / "keys" / "keyring.json").read_bytes() == keyring  # kept: earlier exports rely on it
        assert json.loads((tmp_path / "run" / "summary.json").read_text())["reconciled"] is True
    finally:
        run_claims(env, "kafka", "down")
