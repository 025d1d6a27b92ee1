"""Protected records from the lake, for `claims export --deidentified` and `claims reveal`.

Why a reader here: libs.phi works on JSON records (what the producer sent), and silver keeps exactly that record in
`claim_json`. This module hands the current claims' records (libs.lake.readers.current_claims) to libs.phi without
libs.phi knowing about Spark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pyspark.sql import DataFrame, SparkSession

from libs.lake import LakeTables, current_claims, read_delta
from libs.phi.deidentify import Deidentifier, DeidentifyError
from libs.phi.export import ExportSummary


def silver_records(silver: DataFrame) -> Iterator[dict[str, Any]]:
    """Each silver row's protected record, as the producer sent it, in claim id order."""
    for row in silver.orderBy("claim_id").select("claim_json").toLocalIterator():
        yield orjson.loads(row["claim_json"])


def export_silver_deidentified(spark: SparkSession, tables: LakeTables, out: Path,
                               deidentifier: Deidentifier) -> ExportSummary:
    """Write every current claim de-identified (Safe Harbor) as NDJSON to `out`; rejections carry the claim's row."""
    silver = current_claims(read_delta(spark, tables.silver), read_delta(spark, tables.claim_events))
    silver_location = tables.silver
    summary = ExportSummary()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as sink:
        for number, record in enumerate(silver_records(silver), start=1):
            summary.read += 1
            try:
                sink.write(orjson.dumps(deidentifier.deidentify(record)) + b"\n")
            except DeidentifyError as exc:
                summary.rejections.append({"location": f"{silver_location} row {number}",
                                           "reason": exc.reason.value, "message": str(exc)})
                continue
            summary.written += 1
    rejects = out.with_name(out.name + ".rejects.ndjson")
    if summary.rejections:
        rejects.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in summary.rejections))
    elif rejects.exists():
        rejects.unlink()  # a stale rejects file from an earlier run would misreport this one
    return summary
