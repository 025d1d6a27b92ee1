"""Issue #5: claims whose PHI fields hold known marker values go through the whole pipeline - producer, Kafka,
Spark streaming, Delta lake, batch job, warehouse - and no marker appears anywhere afterwards: in any message of any
topic, in any Delta table (read with Spark and as raw bytes), in the DuckDB warehouse (queried and as raw bytes), in
the de-identified export or in any log (structured JSON logs, caplog, and the process's stdout/stderr, which include
the Spark driver's log4j output). An audited reveal still recovers a marker from silver: the data is protected, not
lost.

The test cannot pass vacuously: it checks that the scanner finds the markers in the unprotected claims, and that
the pipeline delivered claims to silver, quarantine, the dead-letter topic and the warehouse.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812
from typer.testing import CliRunner

from apps.cli.main import app as cli_app
from libs.adapters.registry import read_claims
from libs.batch.export import export_silver_deidentified, silver_records
from libs.batch.job import run_batch
from libs.generator import GeneratorConfig, generate_claims
from libs.generator.config import DEFAULT_ANCHOR_DATE
from libs.ingest import load_protector, produce_records
from libs.kafka.admin import ensure_topics
from libs.kafka.broker import LocalKafka
from libs.kafka.topics import load_topics
from libs.lake import current_claims
from libs.model import Claim, Person, PersonAddress, Rejection
from libs.phi.deidentify import Deidentifier
from libs.phi.logging import configure_logging
from libs.phi.protector import PhiProtector
from libs.settings import KafkaSettings, LakeSettings, Settings, WarehouseSettings, load_settings
from libs.streaming.query import start_claims_query
from tests.kafka.helpers import message_count, write_topics_file

pytestmark = [pytest.mark.kafka, pytest.mark.spark]

TEXT_MARKERS = {
    "last_name": "ZZMARKERLAST", "first_name": "ZZMARKERFIRST", "middle_name": "ZZMARKERMIDDLE",
    "member_id": "ZZMARKERMEMBER01", "medical_record_number": "ZZMARKERMRN", "account_number": "ZZMARKERACCT",
    "email": "zzmarker@example.com",
}
DIGIT_MARKERS = {"ssn": "078051120", "phone": "5550001234"}
ADDRESS = {"line1": "ZZMARKER STREET 1", "line2": "ZZMARKER APT 2", "city": "ZZMARKERCITY", "postal_code": "99999"}
BIRTH_DATE = date(1933, 3, 3)
# Every text marker contains 'zzmarker' (any case variant is caught by the case-insensitive match). Digit markers are
# matched as whole digit runs, so that a Kafka timestamp or a Delta log's file size that merely contains '99999'
# does not count, while the ZIP, SSN, phone and birth date in any of their written forms do.
_DIGITS = ["99999", "078051120", "078-05-1120", "5550001234", "555-000-1234", "1933-03-03", "19330303",
           "03/03/1933"]
MARKER_RE = re.compile("(?i)zzmarker|" + "|".join(rf"(?<![0-9]){re.escape(d)}(?![0-9])" for d in _DIGITS))
MARKER_BYTES_RE = re.compile(MARKER_RE.pattern.encode())
CLAIMS = 48


def marker_person(original: Person | None) -> Person | None:
    """The person with every PHI value that the generator filled replaced by its marker (gaps stay gaps, so the
    generator's defects - a missing member ID, say - still fail validation)."""
    if original is None:
        return None
    values: dict[str, Any] = {field: (marker if getattr(original, field) is not None else None)
                              for field, marker in {**TEXT_MARKERS, **DIGIT_MARKERS}.items()}
    values["birth_date"] = BIRTH_DATE if original.birth_date is not None else None
    address = original.address or PersonAddress(state="PA")
    values["address"] = address.model_copy(update=ADDRESS)
    return original.model_copy(update=values)


def marker_claims() -> list[Claim]:
    """~50 generated claims (valid, defective, fraud scenarios) with marker PHI, plus an exact duplicate."""
    config = GeneratorConfig(count=CLAIMS, seed=505, defect_rate=0.3, fraud_rate=0.1)
    generated = list(generate_claims(config))
    claims = [claim.model_copy(update={"patient": marker_person(claim.patient),
                                       "subscriber": marker_person(claim.subscriber)})
              for claim, _labels in generated]
    clean = next(claim.claim_id for claim, labels in generated if claim.frequency_code == "1" and not labels)
    first = next(c for c in claims if c.claim_id == clean)  # valid, so its copy reaches silver and is screened
    claims.append(first.model_copy(update={"claim_id": f"{first.claim_id}-DUP"}))
    return claims


def adapter_rejections(directory: Path) -> list[Rejection]:
    """Rejections of malformed input files that are full of marker text (they go to the dead-letter topic)."""
    ndjson = directory / "bad.ndjson"
    ndjson.write_text('{"claim_id": "BAD-1", "claim_type": "bogus", "patient": {"last_name": "ZZMARKERLAST", '
                      '"ssn": "078051120", "birth_date": "1933-03-03"}}\n{not json ZZMARKERLAST 5550001234\n',
                      encoding="utf-8")
    x12 = directory / "bad.x12"
    x12.write_text("ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *260101*1200*^*00501*"
                   "000000001*0*P*:~GS*HC*S*R*20260101*1200*1*X*005010X222A1~ST*837*0001*005010X222A1~"
                   "BHT*0019*00*1*20260101*1200*CH~NM1*IL*1*ZZMARKERLAST*ZZMARKERFIRST****MI*ZZMARKERMEMBER01~"
                   "N3*ZZMARKER STREET 1~N4*ZZMARKERCITY*PA*99999~DMG*D8*19330303*F~", encoding="utf-8")
    rejections = [r for r in read_claims([ndjson, x12]) if isinstance(r, Rejection)]
    assert len(rejections) >= 3
    return rejections


def found(text: str | bytes) -> list[str]:
    """Marker hits in a text or byte string (with a little context, for the failure message)."""
    if isinstance(text, bytes):
        return [text[max(0, m.start() - 30):m.end() + 30].decode("utf-8", "replace")
                for m in MARKER_BYTES_RE.finditer(text)]
    return [text[max(0, m.start() - 30):m.end() + 30] for m in MARKER_RE.finditer(text)]


def topic_messages(kafka: KafkaSettings, topic: str) -> Iterator[bytes]:
    """Key, value and every header of every message of every partition, from the beginning."""
    expected = message_count(kafka, topic)
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": f"scan-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        seen = 0
        for _ in range(120):
            if seen >= expected:
                break
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is not None:
                    continue
                seen += 1
                yield message.key() or b""
                yield message.value() or b""
                for header in message.headers() or []:
                    name, value = header[0], header[1]
                    yield str(name).encode() + b"=" + (value if isinstance(value, bytes) else b"")
        assert seen == expected, f"topic {topic}: read {seen} of {expected} messages"
    finally:
        consumer.close()


def delta_tables(root: Path) -> list[Path]:
    """Every Delta table under the lake root (a directory holding a _delta_log)."""
    return sorted(log.parent for log in root.rglob("_delta_log"))


@pytest.fixture
def e2e_settings(tmp_path: Path, kafka_broker: LocalKafka, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose topics, lake, checkpoints, warehouse, keys and audit log are this test's own."""
    monkeypatch.delenv("CLAIMS_CONFIG", raising=False)
    topics_file = write_topics_file(tmp_path, partitions=2)
    security = {"local_key_file": tmp_path / "keys" / "keyring.json", "audit_log": tmp_path / "audit" / "audit.jsonl"}
    for key, value in {"KAFKA__BOOTSTRAP_SERVERS": kafka_broker.bootstrap, "KAFKA__TOPICS_FILE": topics_file,
                       "LAKE__ROOT": tmp_path / "lake", "LAKE__CHECKPOINT_ROOT": tmp_path / "checkpoints",
                       "WAREHOUSE__DUCKDB_PATH": tmp_path / "warehouse" / "claims.duckdb",
                       "SECURITY__LOCAL_KEY_FILE": security["local_key_file"],
                       "SECURITY__AUDIT_LOG": security["audit_log"]}.items():
        monkeypatch.setenv(f"CLAIMS__{key}", str(value))  # the CLI (claims reveal) loads settings from env
    return load_settings(
        kafka=KafkaSettings(bootstrap_servers=kafka_broker.bootstrap, topics_file=topics_file),
        lake=LakeSettings(root=str(tmp_path / "lake"), checkpoint_root=str(tmp_path / "checkpoints")),
        warehouse=WarehouseSettings(duckdb_path=tmp_path / "warehouse" / "claims.duckdb"),
        security=security,
    )


def test_no_phi_marker_survives_the_pipeline(
    spark: SparkSession, e2e_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = e2e_settings
    claims = marker_claims()
    rejections = adapter_rejections(tmp_path)
    # The scanner sees the markers in the unprotected input: a clean result below means protection, not blindness.
    plain = "\n".join(c.model_dump_json() for c in claims)
    assert all(marker in plain for marker in ("ZZMARKERLAST", "ZZMARKERMEMBER01", "99999", "5550001234"))
    assert {"ZZMARKER", "99999", "1933-03-03", "5550001234"} <= {m.group(0) for m in MARKER_RE.finditer(plain)}

    json_log = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging(logging.INFO, stream=json_log)
    root.addHandler(caplog.handler)  # configure_logging replaced the root handlers; keep caplog listening
    try:
        ensure_topics(settings.kafka, settings.kafka.topics_file)
        report = produce_records(settings, [*claims, *rejections], protector=load_protector(settings))
        assert report.delivered == len(claims)
        assert report.rejections_delivered == len(rejections)

        running = start_claims_query(spark, settings, available_now=True, as_of=DEFAULT_ANCHOR_DATE)
        running.query.awaitTermination(timeout=300)
        assert running.query.exception() is None
        spark.streams.removeListener(running.listener)

        result = run_batch(spark, settings, None)
        export = tmp_path / "export" / "deidentified.ndjson"
        summary = export_silver_deidentified(spark, running.tables, export, Deidentifier.from_settings(settings))
    finally:
        root.handlers, root.level = saved_handlers, saved_level

    # ---- the pipeline did process them
    tables = running.tables
    silver = current_claims(spark.read.format("delta").load(tables.silver),
                            spark.read.format("delta").load(tables.claim_events))
    silver_count = silver.count()
    quarantined = spark.read.format("delta").load(tables.quarantine).count()
    topics = load_topics(settings.kafka.topics_file)
    assert silver_count > 0
    assert quarantined > 0
    assert message_count(settings.kafka, topics.dead_letter) == quarantined + len(rejections)
    assert result.counts["silver_claims"] == silver_count
    assert result.counts["inserted"] > 0
    assert summary.written == silver_count
    with duckdb.connect(str(settings.warehouse.duckdb_path), read_only=True) as connection:
        assert connection.execute("SELECT count(*) FROM claims").fetchone() == (silver_count,)
        assert connection.execute("SELECT count(*) FROM batch_runs WHERE status = 'succeeded'").fetchone() == (1,)

    # ---- every message of every topic
    leaks: dict[str, list[str]] = {}
    for spec in topics.all():
        hits = [hit for chunk in topic_messages(settings.kafka, spec.name) for hit in found(chunk)]
        if hits:
            leaks[f"topic {spec.name}"] = hits[:3]

    # ---- every Delta table, read with Spark, and every file under the lake and checkpoints, as bytes
    lake_root = Path(settings.lake.root)
    tables_found = delta_tables(lake_root)
    assert {Path(tables.silver), Path(tables.quarantine), Path(tables.gold_alerts)} <= set(tables_found)
    for table in tables_found:
        frame = spark.read.format("delta").load(str(table))
        rows = frame.select(F.to_json(F.struct(*frame.columns)).alias("j")).collect()
        hits = [hit for row in rows for hit in found(row["j"])]
        if hits:
            leaks[f"delta {table.relative_to(lake_root)}"] = hits[:3]
    for directory in (lake_root, Path(settings.lake.checkpoint_root), export.parent):
        for file in (p for p in directory.rglob("*") if p.is_file()):
            hits = found(file.read_bytes())
            if hits:
                leaks[f"file {file}"] = hits[:3]

    # ---- the warehouse: every table queried, and the file's bytes
    with duckdb.connect(str(settings.warehouse.duckdb_path), read_only=True) as connection:
        names = [row[0] for row in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        assert "claims" in names
        for name in names:
            values = connection.execute(f'SELECT * FROM "{name}"').fetchall()
            hits = found("\n".join(map(repr, values)))
            if hits:
                leaks[f"warehouse table {name}"] = hits[:3]
    hits = found(settings.warehouse.duckdb_path.read_bytes())
    if hits:
        leaks["warehouse file"] = hits[:3]

    # ---- an audited reveal recovers the marker (and the CLI shows it masked outside production)
    record = next(r for r in silver_records(silver) if r.get("phi_sealed"))
    protector = PhiProtector.from_settings(settings)
    revealed = protector.reveal(record, ["patient.last_name"], actor="e2e-test", role="phi-reader",
                                reason="issue #5 end-to-end test")
    assert revealed == {"patient.last_name": TEXT_MARKERS["last_name"]}
    claim_file = tmp_path / "record.json"
    claim_file.write_bytes(orjson.dumps(record))
    cli = CliRunner().invoke(cli_app, ["reveal", "--claim-file", str(claim_file), "--fields", "patient.last_name",
                                       "--actor", "e2e-test", "--role", "phi-reader", "--reason", "issue #5"])
    assert cli.exit_code == 0, cli.output
    assert orjson.loads(cli.stdout)["masked"] is True
    audit = Path(settings.security.audit_log).read_text(encoding="utf-8")
    assert audit.count('"decision":"allowed"') == 2

    # ---- the logs: structured JSON, caplog, the CLI's output, and fd-level stdout/stderr (Spark's driver log)
    captured = capfd.readouterr()
    for name, text in {"json log": json_log.getvalue(), "caplog": caplog.text, "cli output": cli.output,
                       "audit log": audit, "stdout": captured.out, "stderr": captured.err}.items():
        hits = found(text)
        if hits:
            leaks[name] = hits[:3]
    assert json_log.getvalue(), "the JSON log captured nothing: the log scan would be vacuous"

    assert not leaks, f"PHI markers found: {leaks}"
