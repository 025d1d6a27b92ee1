"""Prometheus metrics of the streaming query, fed by a StreamingQueryListener and the batch processor.

Why a listener: Spark already measures input and processing rates, batch durations and how far the Kafka source is
behind the latest offsets; the listener republishes those numbers on the app's /metrics endpoint so that Prometheus
alert rules (configs/monitoring) see them with the same names in every environment.

Why the batch processor as well: the listener's figures are rates of the last trigger; the counters below are exact
(every row of every micro-batch counted once), so `rate()` over them is what the alerts and dashboards use. The
labelled children are created up front (every outcome at 0): a series that appears only after the first rejection
would leave `rate()` and ratio alerts blind until then.

The metric names are the contract with configs/monitoring (rules, their promtool tests, the generated dashboards);
libs.monitoring.catalog reads them from this registry, so a rename here fails the monitoring tests, not production.
"""

from __future__ import annotations

import json
import logging
import time
from enum import StrEnum
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from pyspark.sql.streaming import StreamingQueryListener

from libs.streaming.processor import BatchOutcome

log = logging.getLogger(__name__)


class RowOutcome(StrEnum):
    """Where an input row of the stream went; the two outcomes partition the input (their sum is every row)."""

    VALID = "valid"
    QUARANTINED = "quarantined"


class StreamMetrics:
    """The metric families of the streaming app (names shared with configs/monitoring)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        registry = self.registry
        self.input_rate = Gauge("claims_stream_input_rows_per_second", "Input rows per second (last progress).",
                                registry=registry)
        self.processed_rate = Gauge("claims_stream_processed_rows_per_second",
                                    "Processed rows per second (last progress).", registry=registry)
        self.batch_duration = Gauge("claims_stream_batch_duration_seconds", "Duration of the last micro-batch.",
                                    registry=registry)
        self.consumer_lag = Gauge("claims_stream_consumer_lag",
                                  "Offsets between the latest and the processed offset (Spark's view, last progress).",
                                  ["topic", "partition"], registry=registry)
        self.rows = Counter("claims_stream_rows_total", "Input rows by outcome (valid + quarantined = every row).",
                            ["outcome"], registry=registry)
        self.dead_letters = Counter("claims_stream_dead_letters_total",
                                    "Rejected messages written unchanged to the dead-letter topic.", registry=registry)
        self.rejections = Counter("claims_stream_rejections_total",
                                  "Quarantined rows by reason code (a row with two codes counts under both).",
                                  ["reason"], registry=registry)
        self.alerts = Counter("claims_stream_fraud_alerts_total", "Per-claim fraud alerts raised on valid claims.",
                              registry=registry)
        self.batches = Counter("claims_stream_batches_total", "Micro-batches completed.", registry=registry)
        self.last_batch = Gauge("claims_stream_last_batch_timestamp_seconds",
                                "Unix time the last micro-batch completed (alerts on time since the last batch).",
                                registry=registry)
        self.quarantine_ratio = Gauge("claims_stream_quarantine_ratio", "Quarantined / input rows, last batch.",
                                      registry=registry)
        self.valid_ratio = Gauge("claims_stream_valid_ratio",
                                 "Valid / input rows of the last batch with input (the quality topic's valid_ratio).",
                                 registry=registry)
        for outcome in RowOutcome:
            self.rows.labels(outcome=outcome.value)

    def record_batch(self, outcome: BatchOutcome) -> None:
        """Counters from the batch processor (exact counts, unlike the listener's rates)."""
        self.rows.labels(outcome=RowOutcome.VALID.value).inc(outcome.valid)
        self.rows.labels(outcome=RowOutcome.QUARANTINED.value).inc(outcome.quarantined)
        # Every rejected message is forwarded unchanged to the dead-letter topic (libs.streaming.frames).
        self.dead_letters.inc(outcome.quarantined)
        for reason, count in outcome.reason_counts.items():
            self.rejections.labels(reason=reason).inc(count)
        self.alerts.inc(outcome.alerts)
        self.batches.inc()
        self.last_batch.set(time.time())
        if outcome.input_rows:
            self.quarantine_ratio.set(outcome.quarantined / outcome.input_rows)
            self.valid_ratio.set(outcome.valid / outcome.input_rows)

    def record_progress(self, progress: dict[str, Any]) -> None:
        """Rates, duration and per-partition lag from one StreamingQueryProgress (as its JSON dict)."""
        self.input_rate.set(float(progress.get("inputRowsPerSecond") or 0.0))
        self.processed_rate.set(float(progress.get("processedRowsPerSecond") or 0.0))
        duration_ms = (progress.get("durationMs") or {}).get("triggerExecution")
        if duration_ms is not None:
            self.batch_duration.set(float(duration_ms) / 1000.0)
        for source in progress.get("sources") or []:
            for (topic, partition), lag in partition_lag(source).items():
                self.consumer_lag.labels(topic=topic, partition=str(partition)).set(lag)


def source_offsets(value: Any) -> dict[str, dict[str, int]]:
    """A Kafka source offsets entry of a progress event ({topic: {partition: offset}}; JSON text or dict)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def partition_lag(source: dict[str, Any]) -> dict[tuple[str, int], int]:
    """Latest offset minus processed end offset, per topic partition, from a Kafka source progress entry."""
    end = source_offsets(source.get("endOffset"))
    latest = source_offsets(source.get("latestOffset"))
    lag: dict[tuple[str, int], int] = {}
    for topic, partitions in latest.items():
        for partition, latest_offset in partitions.items():
            done = end.get(topic, {}).get(partition, 0)
            lag[(topic, int(partition))] = max(int(latest_offset) - int(done), 0)
    return lag


class PrometheusQueryListener(StreamingQueryListener):
    """Publishes every query progress event to StreamMetrics."""

    def __init__(self, metrics: StreamMetrics) -> None:
        self.metrics = metrics
        self.last_progress: dict[str, Any] | None = None

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802  (Spark's listener API)
        log.info("streaming query started id=%s", event.id)

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        progress = json.loads(event.progress.json)
        self.last_progress = progress
        self.metrics.record_progress(progress)

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        return None

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        if event.exception:
            log.error("streaming query terminated with an error (id=%s)", event.id)
