"""The stream side of the correlation id: from each record's Kafka header into the stream's logs.

The producer (libs.kafka.producer) gives every record a `correlation_id` header `<run or request id>:<index>`. With
the Kafka source's `includeHeaders` on, `correlation_id_column()` turns the header into a plain string column, which
the stream carries next to the Kafka coordinates; `log_batch_correlations` then writes, per micro-batch:

- one INFO line per run or request id present in the batch: how many of its records arrived, their index range and
  how many were quarantined (a 100,000-claim run costs a handful of lines per batch, not one per claim);
- one INFO line per quarantined record, with its full correlation id, claim id, partition, offset and reason codes
  (a rejected claim is what someone comes looking for);
- at DEBUG, one line per record (full id, claim id, partition, offset, outcome): `--log-level debug` to trace every
  claim of a run.

The per-run summary comes from the stream's own per-batch count (libs.streaming.processor adds `run_aggregates()` to
it); listing the quarantined records is one small query on the batch's cached, checked frame (no second read from
Kafka). Claim ids and reason codes are not PHI; the lines still go through the PHI scrubber like every log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F  # noqa: N812

from libs.phi.logging import get_logger

HEADER = "correlation_id"  # libs.kafka.serialize.CORRELATION_HEADER
COLUMN = "correlation_id"
MAX_REJECTIONS_LOGGED = 500  # per batch; the rest are counted (the quarantine table has every one)


def correlation_id_column(headers: str = "headers") -> Column:
    """The `correlation_id` header of a Kafka source row as a string (null without the header or headers).

    `try_element_at` rather than `[0]`: under Spark 4's ANSI mode an out-of-range index is an error, and a record
    from an older producer has no such header.
    """
    return F.expr(f"CAST(try_element_at(filter({headers}, h -> h.key = '{HEADER}'), 1).value AS STRING)")


@dataclass(frozen=True)
class RunInBatch:
    """The records of one run or request in one micro-batch."""

    run_id: str | None
    records: int
    first_index: int | None
    last_index: int | None
    quarantined: int


def run_id_column() -> Column:
    """The run or request part of the correlation id (`<run id>:<index>`); null without the header."""
    return F.expr(f"try_element_at(split({COLUMN}, ':'), 1)")


def record_index_column() -> Column:
    """The record's index in its run (1..n); null without the header."""
    return F.expr(f"try_cast(try_element_at(split({COLUMN}, ':'), 2) AS BIGINT)")


def run_aggregates() -> list[Column]:
    """What `runs_from_rows` needs of a groupBy that has `run_id` and `is_valid` among its keys (besides `rows`).

    The stream's processor adds them to the one count it already runs per micro-batch, so the per-run summary costs
    no Spark job of its own.
    """
    return [F.min(record_index_column()).alias("first_index"), F.max(record_index_column()).alias("last_index")]


def runs_from_rows(rows: list[Any]) -> list[RunInBatch]:
    """Fold grouped rows (run_id, is_valid, rows, first_index, last_index) into one RunInBatch per run id."""
    runs: dict[str | None, dict[str, Any]] = {}
    for row in rows:
        run = runs.setdefault(row["run_id"], {"records": 0, "quarantined": 0, "first": None, "last": None})
        count = int(row["rows"])
        run["records"] += count
        run["quarantined"] += 0 if row["is_valid"] else count
        if row["first_index"] is not None:
            run["first"] = row["first_index"] if run["first"] is None else min(run["first"], row["first_index"])
            run["last"] = row["last_index"] if run["last"] is None else max(run["last"], row["last_index"])
    ordered = sorted(runs.items(), key=lambda item: (item[0] is None, item[0] or ""))
    return [RunInBatch(run_id=run_id, records=run["records"], first_index=run["first"], last_index=run["last"],
                       quarantined=run["quarantined"]) for run_id, run in ordered]


def runs_in_batch(checked: DataFrame) -> list[RunInBatch]:
    """Per run id: records, index range and quarantined count (records without the header have run id None)."""
    rows = (checked.groupBy(run_id_column().alias("run_id"), "is_valid")
            .agg(F.count(F.lit(1)).alias("rows"), *run_aggregates()).collect())
    return runs_from_rows(rows)


def _rejected(checked: DataFrame) -> DataFrame:
    return checked.where(~F.col("is_valid")).select(
        COLUMN, "kafka_partition", "kafka_offset", "kafka_key", "error_codes")


def _record_fields(row: Any) -> dict[str, Any]:
    return {"correlation_id": row[COLUMN], "claim_id": row["kafka_key"], "kafka_partition": row["kafka_partition"],
            "kafka_offset": row["kafka_offset"]}


def log_batch_correlations(checked: DataFrame, batch_id: int, *, runs: list[RunInBatch] | None = None,
                           logger: Any = None, max_rejections: int = MAX_REJECTIONS_LOGGED) -> list[RunInBatch]:
    """Log the batch's correlation ids (see the module docstring); returns the per-run summary.

    `checked` needs the columns correlation_id, kafka_partition, kafka_offset, kafka_key, is_valid and error_codes
    (the stream's checked frame, with correlation_id carried from `correlation_id_column()`).
    """
    log = logger or get_logger("claims.stream.correlation")
    runs = runs_in_batch(checked) if runs is None else runs
    for run in runs:
        log.info("records received", batch_id=batch_id, correlation_id=run.run_id, records=run.records,
                 first_record=run.first_index, last_record=run.last_index, quarantined=run.quarantined)
    quarantined = sum(run.quarantined for run in runs)
    if quarantined:
        rejected = _rejected(checked).orderBy("kafka_partition", "kafka_offset").limit(max_rejections).collect()
        for row in rejected:
            log.info("record quarantined", batch_id=batch_id, **_record_fields(row),
                     reasons=list(row["error_codes"] or []))
        if quarantined > len(rejected):
            log.info("more records quarantined", batch_id=batch_id, not_listed=quarantined - len(rejected))
    if logging.getLogger("claims.stream.correlation").isEnabledFor(logging.DEBUG):
        columns = (COLUMN, "kafka_partition", "kafka_offset", "kafka_key", "is_valid")
        for row in checked.select(*columns).orderBy("kafka_partition", "kafka_offset").collect():
            log.debug("record received", batch_id=batch_id, **_record_fields(row),
                      outcome="valid" if row["is_valid"] else "quarantined")
    return runs
