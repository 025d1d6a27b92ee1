"""A warehouse of generated claims for the dashboard's browser test, its screenshot and the API load bench.

Why not the daily batch: the batch reads silver through Spark, which the browser test and `claims api screenshot`
should not need just to have something to draw, and the bench wants 100,000 claims in seconds. So the claims come
from the project's generator (libs.generator, the same claims `make run` produces, defects and fraud scenarios
labelled), are mapped to the warehouse's key columns, staged as Parquet and merged by the warehouse's own loader
(libs.warehouse.load.load_duckdb, with a batch_runs ledger row), exactly as a batch load writes them. Labels stand in
for the stream and the screens: a defect label quarantines the claim under its reason code, a fraud label becomes
the claim's fraud code. Claims spread over `days` intake days ending at `last_day`.

No PHI is written: member tokens are opaque hashes and the sealed PHI column stays empty.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from libs.codesets import load_codesets
from libs.generator.config import GeneratorConfig
from libs.generator.engine import generate_records
from libs.generator.labels import LabelKind
from libs.model.claim import SourceFormat
from libs.warehouse.dialect import table_columns
from libs.warehouse.load import BatchRun, load_duckdb

SAMPLE_LAST_DAY = date(2026, 11, 28)
PROFESSIONAL_FORMATS = ((SourceFormat.X12_837P, 7), (SourceFormat.FHIR_CLAIM, 2), (SourceFormat.JSON, 1))


@dataclass(frozen=True)
class SampleWarehouse:
    """What was loaded: standing claims, quarantined claims, fraud-alerted claims, the days covered."""

    path: Path
    claims: int
    quarantined: int
    alerted: int
    first_day: date
    last_day: date


def _source_format(claim: dict[str, Any], number: int) -> str:
    """Institutional claims arrive as 837I; professional ones as 837P, FHIR or JSON (7:2:1), by claim number."""
    if claim["claim_type"] == "institutional":
        return SourceFormat.X12_837I.value
    slot = number % sum(weight for _, weight in PROFESSIONAL_FORMATS)
    for source, weight in PROFESSIONAL_FORMATS:
        if slot < weight:
            return source.value
        slot -= weight
    return SourceFormat.X12_837P.value


def _token(member_id: str | None) -> str | None:
    return None if not member_id else "tok:sample:" + hashlib.sha256(member_id.encode()).hexdigest()[:32]


def _claim_row(claim: dict[str, Any], *, day: date, source: str, fraud: list[str], run_id: str) -> dict[str, Any]:
    diagnoses = claim.get("diagnoses") or [{}]
    person = claim.get("patient") or claim.get("subscriber") or {}
    return {
        "claim_id": claim["claim_id"], "claim_type": claim["claim_type"], "frequency_code": claim["frequency_code"],
        "original_claim_id": claim.get("original_claim_id"), "is_voided": False,
        "billing_npi": (claim.get("billing_provider") or {}).get("npi"),
        "rendering_npi": (claim.get("rendering_provider") or {}).get("npi"),
        "payer_id": (claim.get("payer") or {}).get("payer_id"),
        "place_of_service": claim.get("place_of_service"), "type_of_bill": claim.get("type_of_bill"),
        "service_date_from": claim.get("service_date_from"), "service_date_to": claim.get("service_date_to"),
        "principal_diagnosis_code": diagnoses[0].get("code"), "diagnosis_system": diagnoses[0].get("system"),
        "line_count": len(claim.get("lines") or []), "total_charge": claim.get("total_charge"),
        "member_token": _token(person.get("member_id")), "fraud_codes": ",".join(sorted(fraud)) or None,
        "source_format": source, "received_date": day, "ingest_date": day, "batch_run_id": run_id,
        "loaded_at": datetime.now(UTC).replace(tzinfo=None),
    }


def _write(directory: Path, table: str, rows: list[dict[str, Any]]) -> Path:
    """Stage `rows` as one Parquet file with every column of `table` (absent ones null)."""
    columns = table_columns()[table]
    directory.mkdir(parents=True)
    arrays = {name: [row.get(name) for row in rows] for name in columns}
    pq.write_table(pa.table(arrays), directory / "part-0.parquet")
    return directory


def build_sample_warehouse(path: Path, *, count: int, seed: int = 7, days: int = 14,
                           last_day: date = SAMPLE_LAST_DAY) -> SampleWarehouse:
    """Generate `count` claims and load them into the DuckDB warehouse at `path` (created or merged into)."""
    first_day = last_day - timedelta(days=days - 1)
    run_id = f"sample-{seed}-{count}"
    codesets = load_codesets()
    claims: list[dict[str, Any]] = []
    providers: dict[str, dict[str, Any]] = {}
    intake: Counter[tuple[date, str, str]] = Counter()  # (day, format, valid|quarantined|replacement|void)
    reasons: Counter[tuple[date, str, str]] = Counter()
    config = GeneratorConfig(count=count, seed=seed, defect_rate=0.06, fraud_rate=0.03, anchor_date=last_day)
    for number, (claim, labels) in enumerate(generate_records(config, codesets)):
        day = first_day + timedelta(days=number % days)
        source = _source_format(claim, number)
        defects = [label.rule for label in labels if label.kind is LabelKind.DEFECT]
        if defects:
            intake[(day, source, "quarantined")] += 1
            reasons.update((day, rule, source) for rule in defects)
            continue
        if claim["frequency_code"] == "8":
            intake[(day, source, "void")] += 1
            continue
        intake[(day, source, "valid")] += 1
        if claim["frequency_code"] == "7":
            intake[(day, source, "replacement")] += 1
        fraud = [label.rule for label in labels if label.kind is LabelKind.FRAUD]
        claims.append(_claim_row(claim, day=day, source=source, fraud=fraud, run_id=run_id))
        billing = claim.get("billing_provider") or {}
        if billing.get("npi") and billing["npi"] not in providers:
            providers[billing["npi"]] = {
                "npi": billing["npi"], "name": billing.get("name"), "entity_type": billing.get("entity_type"),
                "taxonomy": billing.get("taxonomy"), "claim_count": 0,
                "specialty": codesets.specialty_by_taxonomy.get(billing.get("taxonomy") or "")}
    now = datetime.now(UTC).replace(tzinfo=None)
    daily = [{"intake_date": day, "source_format": source, "valid_claims": intake[(day, source, "valid")],
              "quarantined_claims": intake[(day, source, "quarantined")],
              "replacements": intake[(day, source, "replacement")], "voids": intake[(day, source, "void")],
              "updated_at": now} for day, source in sorted({(d, s) for d, s, _ in intake})]
    quarantine = [{"summary_date": day, "reason_code": rule, "severity": "error", "source_format": source,
                   "claim_count": n, "updated_at": now} for (day, rule, source), n in sorted(reasons.items())]
    run = BatchRun(batch_run_id=run_id, pipeline="batch", status="succeeded", started_at=now, run_date=last_day,
                   finished_at=now, duration_seconds=0.0, input_rows=count, valid_rows=len(claims),
                   quarantined_rows=sum(reasons.values()))
    with tempfile.TemporaryDirectory(prefix="sample-warehouse-") as stage:
        staged = {"claims": _write(Path(stage) / "claims", "claims", claims),
                  "intake_daily": _write(Path(stage) / "intake_daily", "intake_daily", daily),
                  "quarantine_summary": _write(Path(stage) / "quarantine", "quarantine_summary", quarantine),
                  "providers": _write(Path(stage) / "providers", "providers",
                                      [{**row, "updated_at": now} for row in providers.values()])}
        load_duckdb(path, staged, run=run)
    return SampleWarehouse(path, len(claims), sum(n for (_, _, kind), n in intake.items() if kind == "quarantined"),
                           sum(1 for row in claims if row["fraud_codes"]), first_day, last_day)
