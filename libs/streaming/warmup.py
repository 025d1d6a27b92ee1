"""Warm a fresh Spark session for the claims stream: start the Python workers and run every write path once.

Why: the first micro-batch of a fresh JVM pays for class loading, code generation, the JIT's first compilations, the
Python worker daemon's start and Delta's first commits: measured ~10 s of CPU on two cores, more than the checking of
tens of thousands of claims. A long-running stream pays it once; `make run` and the bench pay it while the claims are
being produced instead (libs.pipeline.local_run), so the drain that follows runs on the engine as it runs in
production. Nothing here touches the run's lake or topics: the warm-up writes to a scratch directory and deletes it.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812

from libs.lake import LakeTables, OnceAppender
from libs.settings import LakeSettings, Settings
from libs.streaming import frames
from libs.streaming.parse import check_messages
from libs.streaming.processor import RAW_KAFKA_SCHEMA, create_lake_tables

WARMUP_CLAIMS = 2000
WARMUP_SEED = 424242  # not the run's seed: the warm-up claims are never mistaken for the run's


def warm_up(spark: SparkSession, settings: Settings, claims: int = WARMUP_CLAIMS) -> None:
    """Check `claims` generated, protected claims and write every lake output of them to a scratch lake."""
    from libs.generator import GeneratorConfig, generate_claims  # noqa: PLC0415
    from libs.kafka.serialize import claim_to_message  # noqa: PLC0415
    from libs.phi import PhiProtector  # noqa: PLC0415

    scratch = Path(tempfile.mkdtemp(prefix="claims-warmup-"))
    try:
        protector = PhiProtector.from_settings(settings)
        config = GeneratorConfig(count=claims, seed=WARMUP_SEED)
        now = datetime.now(UTC)
        rows = [(claim.claim_id.encode(), claim_to_message(claim, protector.protect), "warmup", index % 6, index, now,
                 0) for index, (claim, _labels) in enumerate(generate_claims(config))]
        raw = spark.createDataFrame(rows, RAW_KAFKA_SCHEMA)
        tables = LakeTables.from_settings(LakeSettings(root=str(scratch / "lake"),
                                                       checkpoint_root=str(scratch / "checkpoints")))
        create_lake_tables(spark, tables)
        appender = OnceAppender("warmup")
        checked = check_messages(raw, config.anchor_date, pipeline_id="warmup").cache()
        checked.groupBy("is_valid", "error_codes").agg(F.count(F.lit(1))).collect()
        for frame, location in ((frames.bronze_frame(checked), tables.bronze),
                                (frames.quarantine_frame(checked), tables.quarantine),
                                (frames.events_frame(checked), tables.claim_events),
                                (frames.silver_frame(checked), tables.silver)):
            appender.append(frame, location, 0)
        frames.topic_messages(checked, _ScratchTopics).write.format("noop").mode("overwrite").save()
        checked.unpersist()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _ScratchTopics:
    """Topic names for the warm-up's no-op Kafka rows (nothing is sent)."""

    validated = processed = alerts = dead_letter = "warmup"
