"""libs.preflight without subprocesses: each check's line, and how a failure that happened anyway is described."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException

from libs.kafka.broker import free_port
from libs.preflight import (
    Needs,
    PreflightError,
    check_broker,
    check_day_in_lake,
    check_keyring,
    check_lake,
    check_warehouse,
    describe_structure,
    explain_failure,
    lake_days,
)
from libs.settings import KafkaSettings, LakeSettings, SecuritySettings, WarehouseSettings, load_settings

MARKER = "ZZMARKERSURNAME"


def _lake(root: Path, days: tuple[str, ...] = ()) -> LakeSettings:
    for table in ("silver/claims", "silver/claim_events", "quarantine/claims", "bronze/claims_raw"):
        (root / table / "_delta_log").mkdir(parents=True, exist_ok=True)
    for day in days:
        (root / "bronze/claims_raw" / f"ingest_date={day}").mkdir()
    return LakeSettings(root=str(root), checkpoint_root=str(root / "checkpoints"))


def test_a_missing_table_names_the_first_one_and_the_others(tmp_path: Path) -> None:
    lake = LakeSettings(root=str(tmp_path / "lake"))

    with pytest.raises(PreflightError) as missing:
        check_lake(lake)

    assert str(missing.value) == (f"expected the silver Delta table at {tmp_path}/lake/silver/claims, found no table "
                                  "there (and claim_events, quarantine, bronze); run the stream first: `make run`, or "
                                  "`claims stream --available-now` with a broker up")


def test_a_complete_local_lake_passes_and_a_remote_one_is_left_to_the_job(tmp_path: Path) -> None:
    check_lake(_lake(tmp_path / "lake"))
    check_lake(LakeSettings(root="s3a://bucket/lake"))


def test_the_days_of_the_lake_come_from_bronze_partitions(tmp_path: Path) -> None:
    lake = _lake(tmp_path / "lake", ("2026-11-30", "2026-11-29", "not-a-date"))

    assert lake_days(lake) == [date(2026, 11, 29), date(2026, 11, 30)]
    check_day_in_lake(lake, date(2026, 11, 30))
    check_day_in_lake(lake, None)
    with pytest.raises(PreflightError, match=r"run `claims batch --date 2026-11-30` \(or --all\)$"):
        check_day_in_lake(lake, date(2026, 1, 1))


def test_no_broker_is_found_within_the_check_timeout() -> None:
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", preflight_timeout_seconds=1)

    with pytest.raises(PreflightError, match=r"^expected a Kafka broker at 127\.0\.0\.1:\d+, found none answering "
                                             r"within 1 s; start one with `make kafka-up`"):
        check_broker(kafka)


def test_warehouse_and_keyring_checks_name_the_file_and_skip_what_is_not_local(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match=r"expected a DuckDB warehouse at .*claims\.duckdb, found no file"):
        check_warehouse(WarehouseSettings(duckdb_path=tmp_path / "claims.duckdb"))
    check_warehouse(WarehouseSettings(kind="redshift", duckdb_path=tmp_path / "none.duckdb"))
    with pytest.raises(PreflightError, match=r"the local keyring that protected the lake at .*keyring\.json"):
        check_keyring(SecuritySettings(local_key_file=tmp_path / "keyring.json"), protects="the lake")
    check_keyring(SecuritySettings(local_key_file=tmp_path / "none.json", key_provider="kms"))


def test_a_failure_is_explained_by_the_dependency_that_went_away(tmp_path: Path) -> None:
    settings = load_settings(lake=LakeSettings(root=str(tmp_path / "gone")))

    line = explain_failure(RuntimeError(f"cannot read {MARKER}"), settings, Needs(lake=True))

    assert line.startswith(f"expected the silver Delta table at {tmp_path}/gone/silver/claims")
    assert MARKER not in line


def test_otherwise_only_its_structure_is_told(tmp_path: Path) -> None:
    settings = load_settings(lake=_lake(tmp_path / "lake"))

    plain = explain_failure(ValueError(f"bad value {MARKER}"), settings, Needs(lake=True))
    kafka = describe_structure(KafkaException(KafkaError(KafkaError._TRANSPORT, f"{MARKER} broke")))
    safe = explain_failure(PreflightError("a thing", "none", "make it"), settings, Needs())

    assert plain == "ValueError (message withheld: it may contain record values)"
    assert kafka == "KafkaException [_TRANSPORT] (message withheld: it may contain record values)"
    assert safe == "expected a thing, found none; make it"
