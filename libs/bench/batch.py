# ruff: noqa: S608  (table names come from TABLES, paths from the bench work dir)
"""Bench stage: the daily batch's marts in Spark against DuckDB running the same marts' SQL on the same Parquet.

Why this comparison (issue 11, item 5): the marts are written once (libs/analytics/sql/marts.sql) and transpiled;
DuckDB on one machine is the reference for how fast that SQL can run on the data, and the batch must stay within 3x
of it. Both engines read the same Parquet files (the warehouse tables of `count` generated claims, with the
generator population's member months, its providers and the code sets' specialties), in the same run, on the same
machine, and both materialise every mart (DuckDB as tables, Spark as Parquet: the batch's stage format).

Inputs are built column-wise: generated claims are gathered into Python lists per chunk, turned into Arrow tables
and inserted into a DuckDB file that has the warehouse schema (so every column has the warehouse's type), then each
table is COPYed to Parquet. Row-by-row `executemany` took minutes per million rows; Arrow inserts take seconds.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from libs.analytics.eligibility import eligibility_from_population, generated_population
from libs.analytics.marts import marts
from libs.codesets import CodeSets, load_codesets
from libs.enrichment import em_level
from libs.generator import GeneratorConfig, generate_claims
from libs.model import Claim

TABLES = ("claims", "claim_lines", "eligibility", "intake_daily", "field_quality", "quarantine_summary", "providers",
          "ref_specialties")
TARGET_RATIO = 3.0
CHUNK = 100_000
SOURCE_FORMATS = {"professional": "x12-837p", "institutional": "x12-837i"}
# The bench's Spark settings for the marts: joins against the small tables (and the claims' id/date columns) are
# broadcast, and AQE coalesces shuffles to what two cores can use. The inputs are NOT cached: each mart reads only the
# few Parquet columns it needs, while a cache materialises every column of claims and lines first (measured: the
# first mart then takes 4-10x longer and the whole run about twice as long).
SPARK_MART_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    "spark.sql.autoBroadcastJoinThreshold": str(64 * 1024 * 1024),
    "spark.sql.files.maxPartitionBytes": str(64 * 1024 * 1024),
}


def bench_token(member_id: str) -> str:
    """A stand-in member token for the bench's synthetic members (a digest, like the producer's HMAC token)."""
    return "tok:bench:" + hashlib.blake2b(member_id.encode("utf-8"), digest_size=16).hexdigest()


@dataclass
class _Columns:
    """Column lists of one table, filled row by row and emptied into an Arrow table per chunk."""

    names: tuple[str, ...]
    values: dict[str, list[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = {name: [] for name in self.names}

    def add(self, *row: Any) -> None:
        for name, value in zip(self.names, row, strict=True):
            self.values[name].append(value)

    def __len__(self) -> int:
        return len(self.values[self.names[0]])

    def take(self) -> pa.Table:
        table = pa.table(self.values)
        self.__post_init__()
        return table


CLAIM_COLUMNS = ("claim_id", "claim_type", "frequency_code", "is_voided", "rendering_npi", "payer_id",
                 "place_of_service", "type_of_bill", "service_date_from", "service_date_to",
                 "principal_diagnosis_code", "diagnosis_system", "line_count", "total_charge", "paid_amount",
                 "member_token", "source_format", "ingest_date", "em_level")
LINE_COLUMNS = ("claim_id", "line_number", "procedure_code", "revenue_code", "units", "charge", "service_date_from")


def _add_claim(claims: _Columns, lines: _Columns, claim: Claim, codesets: CodeSets,
               token: Callable[[str], str]) -> None:
    member = claim.member_key()
    kind = claim.claim_type.value
    claims.add(claim.claim_id, kind, claim.frequency_code, claim.frequency_code == "8",
               claim.rendering_provider.npi if claim.rendering_provider else None,
               claim.payer.payer_id if claim.payer else None, claim.place_of_service, claim.type_of_bill,
               claim.service_date_from, claim.service_date_to,
               claim.diagnoses[0].code if claim.diagnoses else None,
               claim.diagnoses[0].system.value if claim.diagnoses and claim.diagnoses[0].system else None,
               len(claim.lines), claim.total_charge, claim.paid_amount, token(member) if member else None,
               SOURCE_FORMATS.get(kind, kind), claim.source.received_date if claim.source else None,
               em_level(claim, codesets))
    for line in claim.lines:
        lines.add(claim.claim_id, line.line_number, line.procedure_code, line.revenue_code, line.units, line.charge,
                  line.service_date_from)


def _insert(connection: duckdb.DuckDBPyConnection, table: str, batch: pa.Table) -> None:
    connection.register("bench_batch", batch)
    columns = ", ".join(batch.column_names)
    connection.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM bench_batch")
    connection.unregister("bench_batch")


def _claim_chunks(config: GeneratorConfig, codesets: CodeSets,
                  token: Callable[[str], str]) -> Iterator[tuple[pa.Table, pa.Table]]:
    claims, lines = _Columns(CLAIM_COLUMNS), _Columns(LINE_COLUMNS)
    for claim, _labels in generate_claims(config, codesets):
        _add_claim(claims, lines, claim, codesets, token)
        if len(claims) >= CHUNK:
            yield claims.take(), lines.take()
    if len(claims):
        yield claims.take(), lines.take()


def _insert_reference(connection: duckdb.DuckDBPyConnection, config: GeneratorConfig, codesets: CodeSets,
                      token: Callable[[str], str]) -> None:
    """Member months, providers and specialties of the generator's population (what a real run loads too)."""
    population = generated_population(config, codesets)
    months = _Columns(("member_token", "payer_id", "eligibility_month", "age_band", "gender", "state", "source"))
    for row in eligibility_from_population(population, token):
        months.add(row.member_token, row.payer_id, row.eligibility_month, row.age_band, row.gender, row.state,
                   row.source)
    _insert(connection, "eligibility", months.take())
    providers = _Columns(("npi", "name", "entity_type", "taxonomy", "specialty"))
    for practitioner in population.practitioners:
        providers.add(practitioner.npi, practitioner.name, "1", practitioner.profile.taxonomy,
                      practitioner.profile.specialty)
    _insert(connection, "providers", providers.take())
    specialties = _Columns(("taxonomy", "specialty", "expected_level5_share"))
    for profile in codesets.specialties:
        weights = profile.em_level_weights
        specialties.add(profile.taxonomy, profile.specialty, float(weights.get(5, 0.0) / (sum(weights.values()) or 1)))
    _insert(connection, "ref_specialties", specialties.take())


def _insert_daily(connection: duckdb.DuckDBPyConnection) -> None:
    """intake_daily and field_quality per ingest day and source format, as the batch computes them (no rejects)."""
    connection.execute(
        "INSERT INTO intake_daily (intake_date, source_format, valid_claims, quarantined_claims, replacements, voids) "
        "SELECT ingest_date, source_format, COUNT(*), 0, SUM(CASE WHEN frequency_code = '7' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN frequency_code = '8' THEN 1 ELSE 0 END) FROM claims GROUP BY ingest_date, source_format")
    from libs.validation.catalog import RULES  # noqa: PLC0415

    fields = sorted({spec.field for spec in RULES if spec.field})
    connection.register("bench_fields", pa.table({"field_name": fields}))
    connection.execute(
        "INSERT INTO field_quality (intake_date, source_format, field_name, valid_count, invalid_count, "
        "missing_count) SELECT i.intake_date, i.source_format, f.field_name, i.valid_claims, 0, 0 "
        "FROM intake_daily AS i CROSS JOIN bench_fields AS f")
    connection.unregister("bench_fields")


def write_inputs(directory: Path, count: int, seed: int, codesets: CodeSets | None = None) -> dict[str, int]:
    """The warehouse tables of `count` generated claims as Parquet (`<table>.parquet`); returns rows per table."""
    from libs.warehouse.load import connect_duckdb  # noqa: PLC0415

    codesets = codesets or load_codesets()
    config = GeneratorConfig(count=count, seed=seed)
    directory.mkdir(parents=True, exist_ok=True)
    database = directory / "inputs.duckdb"
    database.unlink(missing_ok=True)
    connection = connect_duckdb(database)
    try:
        for claims, lines in _claim_chunks(config, codesets, bench_token):
            _insert(connection, "claims", claims)
            _insert(connection, "claim_lines", lines)
        _insert_reference(connection, config, codesets, bench_token)
        _insert_daily(connection)
        rows: dict[str, int] = {}
        for table in TABLES:
            connection.execute(f"COPY {table} TO '{directory / table}.parquet' (FORMAT PARQUET)")
            counted = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
            rows[table] = int(counted[0]) if counted else 0
    finally:
        connection.close()
    database.unlink(missing_ok=True)
    return rows


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its reaped children (/proc), None where /proc is not there.

    Why: on a shared machine the wall time of a niced run measures the neighbours as much as the engine; the CPU
    time each engine spent on the same work does not depend on them.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _jvm_pid(spark: Any) -> int | None:
    gateway = getattr(spark.sparkContext, "_gateway", None)
    process = getattr(gateway, "proc", None)
    return int(process.pid) if process is not None else None


def run_duckdb(directory: Path) -> tuple[float, dict[str, float]]:
    """Seconds for DuckDB to compute every mart from the Parquet files (total, and per mart)."""
    connection = duckdb.connect()
    for table in TABLES:
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{directory / table}.parquet')")
    per_mart: dict[str, float] = {}
    started = time.perf_counter()
    for mart in marts():
        mart_started = time.perf_counter()
        connection.execute(f"CREATE TABLE {mart.name} AS {mart.select_sql}")
        per_mart[mart.name] = round(time.perf_counter() - mart_started, 3)
    seconds = time.perf_counter() - started
    connection.close()
    return seconds, per_mart


def run_spark(spark: Any, directory: Path, *, cache_inputs: bool = False) -> tuple[float, dict[str, float]]:
    """Seconds for Spark to compute every mart (the same SQL, transpiled) from the Parquet files and write it.

    The clock includes reading the Parquet (and caching it when `cache_inputs`): DuckDB's time includes its reads.
    """
    previous = {key: spark.conf.get(key, None) for key in SPARK_MART_CONF}
    for key, value in SPARK_MART_CONF.items():
        spark.conf.set(key, value)
    try:
        return _time_spark_marts(spark, directory, cache_inputs=cache_inputs)
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _time_spark_marts(spark: Any, directory: Path, *, cache_inputs: bool) -> tuple[float, dict[str, float]]:
    per_mart: dict[str, float] = {}
    started = time.perf_counter()
    frames = []
    for table in TABLES:
        frame = spark.read.parquet(str(directory / f"{table}.parquet"))
        if cache_inputs and table in {"claims", "claim_lines"}:
            frame = frame.cache()
            frames.append(frame)
        frame.createOrReplaceTempView(table)
    for mart in marts():
        mart_started = time.perf_counter()
        spark.sql(mart.sql("spark")).write.mode("overwrite").parquet(str(directory / "spark" / mart.name))
        per_mart[mart.name] = round(time.perf_counter() - mart_started, 3)
    seconds = time.perf_counter() - started
    for frame in frames:
        frame.unpersist()
    return seconds, per_mart


def batch_vs_duckdb(spark: Any, work_dir: Path, count: int = 1_000_000, seed: int = 7) -> dict[str, Any]:
    """Generate `count` claims, stage them as Parquet, time both engines; the figures for the bench report.

    Each engine runs once untimed on the same files first (Spark: a warm JVM, as the daily batch's session is after
    its screens; both: the files in the page cache), then once timed.
    """
    directory = work_dir / "batch-marts"
    input_started = time.perf_counter()
    rows = write_inputs(directory, count, seed)
    input_seconds = time.perf_counter() - input_started
    run_spark(spark, directory)  # warm-up: JIT, Parquet reader classes, the SQL parser
    run_duckdb(directory)
    jvm = _jvm_pid(spark)
    jvm_before = process_cpu_seconds(jvm) if jvm is not None else None
    spark_seconds, spark_marts = run_spark(spark, directory)
    jvm_after = process_cpu_seconds(jvm) if jvm is not None else None
    cpu_before = time.process_time()
    duckdb_seconds, duckdb_marts = run_duckdb(directory)
    duckdb_cpu = time.process_time() - cpu_before
    ratio = spark_seconds / duckdb_seconds if duckdb_seconds > 0 else float("inf")
    spark_cpu = jvm_after - jvm_before if jvm_before is not None and jvm_after is not None else None
    return {"count": count, "rows": rows, "input_seconds": round(input_seconds, 1),
            "spark_seconds": round(spark_seconds, 3), "duckdb_seconds": round(duckdb_seconds, 3),
            "spark_marts": spark_marts, "duckdb_marts": duckdb_marts,
            "spark_cpu_seconds": None if spark_cpu is None else round(spark_cpu, 2),
            "duckdb_cpu_seconds": round(duckdb_cpu, 2),
            "cpu_ratio": None if spark_cpu is None or duckdb_cpu <= 0 else round(spark_cpu / duckdb_cpu, 2),
            "ratio": round(ratio, 2), "target_ratio": TARGET_RATIO, "met": ratio <= TARGET_RATIO}
