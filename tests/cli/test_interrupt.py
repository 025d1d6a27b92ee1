"""Ctrl-C on a long command: it stops cleanly, with one line and no traceback, and leaves no process behind.

SIGINT is sent to the command's process only (what a terminal's Ctrl-C sends it), at a point where it holds the
resources that must be released: a running streaming query (Spark's JVM), and for `claims run` the broker it started.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.kafka.admin import ensure_topics
from libs.kafka.broker import LocalKafka
from libs.settings import KafkaSettings
from tests.cli.helpers import interrupt_when, local_env, processes_of, start_claims, wait_for
from tests.kafka.helpers import write_topics_file

pytestmark = [pytest.mark.kafka, pytest.mark.spark]


@pytest.mark.parametrize("args", [(), ("--available-now",)], ids=["continuous", "available-now"])
def test_ctrl_c_stops_the_stream_and_its_jvm_without_a_traceback(tmp_path: Path, kafka_broker: LocalKafka,
                                                                  args: tuple[str, ...]) -> None:
    topics_file = write_topics_file(tmp_path, partitions=1)
    ensure_topics(KafkaSettings(bootstrap_servers=kafka_broker.bootstrap), topics_file)
    local = tmp_path / "local"
    env = local_env(local, bootstrap=kafka_broker.bootstrap, topics_file=topics_file)
    output = tmp_path / "stream.out"
    process = start_claims(env, "stream", *args, log=output)
    code = interrupt_when(process, lambda: any((local / "checkpoints").glob("*/metadata")),
                          "the streaming query to start", output)
    text = output.read_text()
    assert code in (0, 130), text
    assert "Traceback" not in text
    assert "micro-batches" in text or "interrupted: stopped cleanly" in text
    wait_for(lambda: not processes_of(local), 60, "no process of the command left (Spark's JVM included)")


def test_ctrl_c_during_run_stops_the_broker_it_started_and_spark(tmp_path: Path) -> None:
    env = local_env(tmp_path)
    output = tmp_path.parent / f"{tmp_path.name}-run.out"
    process = start_claims(env, "run", "--count", "300", "--no-progress", log=output)
    spark_log = tmp_path / "run" / "logs" / "spark.log"  # created as Spark's JVM starts, after the broker
    broker_pid = tmp_path / "kafka" / "broker.pid"
    code = interrupt_when(process, lambda: spark_log.exists() and broker_pid.exists(),
                          "the run to start its broker and Spark", output)
    text = output.read_text()
    assert code == 130, text
    assert "Traceback" not in text
    assert text.strip().splitlines()[-1].startswith("interrupted: stopped cleanly")
    assert not (tmp_path / "kafka" / "broker.pid").exists()
    wait_for(lambda: not processes_of(tmp_path), 60, "no process of the run left (its broker and Spark's JVM)")
