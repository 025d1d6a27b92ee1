"""Protected records from the Delta silver table, for `claims export --deidentified` and `claims reveal`.

Why a reader here: libs.phi works on JSON records (what the producer sent); silver holds the same protected record
plus analytics columns. This module turns silver rows back into those records - JSON mode, so dates are ISO
strings and amounts numbers, exactly what Deidentifier and PhiProtector.reveal expect - without libs.phi knowing
about Spark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

from libs.model import Claim
from libs.phi.deidentify import Deidentifier, DeidentifyError
from libs.phi.export import ExportSummary
from libs.phi.protector import PHI_DERIVED_KEY, PHI_ENVELOPE_KEY

RECORD_COLUMNS = (*Claim.model_fields, PHI_DERIVED_KEY, PHI_ENVELOPE_KEY)


def silver_records(silver: DataFrame) -> Iterator[dict[str, Any]]:
    """Each silver row as the protected JSON record the producer sent (model fields, phi_derived, phi_envelope)."""
    columns = [name for name in RECORD_COLUMNS if name in silver.columns]
    for row in silver.select(F.to_json(F.struct(*columns)).alias("record")).toLocalIterator():
        yield orjson.loads(row["record"])


def export_silver_deidentified(spark: SparkSession, silver_location: str, out: Path,
                               deidentifier: Deidentifier) -> ExportSummary:
    """Write every silver claim de-identified (Safe Harbor) as NDJSON to `out`; rejections carry the claim's row."""
    silver = spark.read.format("delta").load(silver_location)
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
