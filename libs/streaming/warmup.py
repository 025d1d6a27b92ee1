"""Warm a fresh Spark session for the claims stream: the query's whole path, once, on scratch topics and a scratch lake.

Why: the first micro-batch of a fresh JVM pays for class loading, code generation, the JIT's first compilations, the
Python worker daemon's start, the Kafka source's and sink's first connections and Delta's first commits: measured
~10 s of CPU on two cores, more than the checking of tens of thousands of claims. A long-running stream pays it once;
`make run` pays it while the claims are being produced instead (libs.pipeline.local_run), so the drain that follows
runs on the engine as it runs in production.

The warm-up is the real query (libs.streaming.query.start_claims_query, availableNow) on WARMUP_CLAIMS generated
claims produced to topics of their own (`claims-warmup-<id>-<topic>`) and a scratch lake; the topics and the lake are
deleted afterwards, so nothing of it reaches the run's topics, lake or counts.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path

from pyspark.sql import SparkSession

from libs.settings import LakeSettings, Settings

WARMUP_CLAIMS = 5000  # enough rows that every per-row method is compiled (C1 compiles after ~1,500 calls)
WARMUP_SEED = 424242  # not the run's seed: the warm-up claims are never mistaken for the run's


def warm_up(spark: SparkSession, settings: Settings, claims: int = WARMUP_CLAIMS) -> None:
    """Produce `claims` generated claims to scratch topics and drain them with the real query into a scratch lake."""
    from libs.kafka.admin import delete_topics, ensure_topics  # noqa: PLC0415
    from libs.kafka.topics import prefixed_topics_file  # noqa: PLC0415
    from libs.streaming.query import start_claims_query  # noqa: PLC0415

    scratch = Path(tempfile.mkdtemp(prefix="claims-warmup-"))
    topics_file = prefixed_topics_file(scratch / "topics.json", f"claims-warmup-{uuid.uuid4().hex[:8]}",
                                       settings.kafka.topics_file)
    kafka = settings.kafka.model_copy(update={"topics_file": topics_file})
    scratch_settings = settings.model_copy(update={
        "kafka": kafka,
        "lake": LakeSettings(root=str(scratch / "lake"), checkpoint_root=str(scratch / "checkpoints")),
    })
    try:
        ensure_topics(kafka, topics_file)
        _produce(scratch_settings, claims)
        running = start_claims_query(spark, scratch_settings, available_now=True)
        running.query.awaitTermination()
        running.stop()
        failure = running.query.exception()
        if failure is not None:
            msg = f"the stream's warm-up failed: {failure}"
            raise RuntimeError(msg)
    finally:
        with contextlib.suppress(Exception):  # a scratch topic left behind is harmless; the run goes on
            delete_topics(kafka, topics_file)
        shutil.rmtree(scratch, ignore_errors=True)


def _produce(settings: Settings, claims: int) -> None:
    """The warm-up claims into the scratch raw topic, in this thread (a few thousand: no worker processes)."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from libs.ingest import produce_generated  # noqa: PLC0415

    # A registry of its own: the warm-up's claims are not the run's, and must not count in the producer's metrics.
    report = produce_generated(settings, claims, WARMUP_SEED, workers=0, registry=CollectorRegistry())
    if not report.ok:
        msg = f"the stream's warm-up: {report.failed} of {claims} claims not delivered to the scratch topic"
        raise RuntimeError(msg)
