"""Member months: the generated population is the one the claims come from and carries the claims' own member
tokens; DE-SynPUF beneficiary months counted by hand; loading twice changes nothing; the loader refuses what it
cannot do."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from libs.analytics.eligibility import (
    EligibilityError,
    EligibilityRow,
    eligibility_from_population,
    generated_population,
    load_eligibility,
    load_generated_eligibility,
    load_synpuf_eligibility,
    member_tokenizer,
    synpuf_year,
)
from libs.codesets import load_codesets
from libs.generator import GeneratorConfig, generate_claims
from libs.phi.protector import PhiProtector
from libs.settings import Settings, WarehouseKind
from libs.warehouse.load import connect_duckdb
from tests.phi.conftest import phi_settings

SYNPUF_HEADER = ("DESYNPUF_ID,BENE_BIRTH_DT,BENE_DEATH_DT,BENE_SEX_IDENT_CD,BENE_RACE_CD,SP_STATE_CODE,"
                 "BENE_HI_CVRAGE_TOT_MONS,BENE_SMI_CVRAGE_TOT_MONS")
# 2009: M1 covered all year (12 months); M2 covered 12 but died in April (4); M3 covered 6 (January to June).
SYNPUF_ROWS = ("00000SYNTH0000M1,19300101,,1,1,39,12,12", "00000SYNTH0000M2,19250610,20090415,2,1,05,12,12",
               "00000SYNTH0000M3,19500301,,2,2,10,06,06")


def settings_for(tmp_path: Path) -> Settings:
    base = phi_settings(tmp_path)
    return base.model_copy(update={"warehouse": base.warehouse.model_copy(
        update={"duckdb_path": tmp_path / "warehouse" / "claims.duckdb"})})


def synpuf_file(tmp_path: Path, name: str = "DE1_0_2009_Beneficiary_Summary_File_Sample_1.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join((SYNPUF_HEADER, *SYNPUF_ROWS)) + "\n", encoding="utf-8")
    return path


def test_every_generated_claim_is_of_a_member_of_the_rebuilt_population_in_an_eligible_month() -> None:
    config = GeneratorConfig(count=300, seed=5)
    population = generated_population(config, load_codesets())
    months = {(row.member_token, row.payer_id, row.eligibility_month)
              for row in eligibility_from_population(population, lambda member_id: member_id)}
    members = {row[0] for row in months}

    claims = [claim for claim, _labels in generate_claims(config) if claim.frequency_code == "1"]
    assert {claim.member_key() for claim in claims} <= members
    covered = [claim for claim in claims if claim.service_date_from is not None and claim.payer is not None
               and (claim.member_key(), claim.payer.payer_id, claim.service_date_from.replace(day=1)) in months]
    assert len(covered) >= 0.95 * len(claims)  # fraud scenarios may bill outside eligibility on purpose


def test_eligibility_tokens_are_the_tokens_the_protected_claims_carry(tmp_path: Path) -> None:
    settings = phi_settings(tmp_path)
    claim, _labels = next(iter(generate_claims(GeneratorConfig(count=1, seed=3))))
    protected = PhiProtector.from_settings(settings).protect(claim)
    person = protected.get("patient") or protected["subscriber"]

    assert member_tokenizer(settings)(claim.member_key() or "") == person["member_id"]


def test_synpuf_member_months_by_hand(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)

    loaded = load_synpuf_eligibility(settings, synpuf_file(tmp_path))

    assert loaded == 22  # 12 + 4 + 6
    connection = duckdb.connect(str(settings.warehouse.duckdb_path))
    per_month = dict(connection.execute("SELECT eligibility_month, COUNT(*) FROM eligibility GROUP BY 1").fetchall())
    (payer, source, genders) = connection.execute(
        "SELECT MAX(payer_id), MAX(source), COUNT(DISTINCT gender) FROM eligibility").fetchone()  # type: ignore[misc]
    pmpm = connection.execute("SELECT month, member_months FROM mart_pmpm ORDER BY month").fetchall()
    connection.close()
    assert per_month[date(2009, 1, 1)] == 3
    assert per_month[date(2009, 4, 1)] == 3  # M2's month of death counts
    assert per_month[date(2009, 5, 1)] == 2
    assert per_month[date(2009, 7, 1)] == 1
    assert (payer, source, genders) == ("CMS-MEDICARE", "synpuf-beneficiary", 2)
    assert pmpm[0] == (date(2009, 1, 1), 3)  # the marts were rebuilt with the new denominators


def test_loading_a_source_twice_changes_nothing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    first = load_generated_eligibility(settings, 200, 9)
    connection = duckdb.connect(str(settings.warehouse.duckdb_path))
    before = connection.execute("SELECT * FROM eligibility ORDER BY ALL").fetchall()
    connection.close()

    again = load_generated_eligibility(settings, 200, 9)

    connection = duckdb.connect(str(settings.warehouse.duckdb_path))
    after = connection.execute("SELECT * FROM eligibility ORDER BY ALL").fetchall()
    connection.close()
    assert first == again == len(before) > 0
    assert before == after


def test_a_key_repeated_in_one_load_keeps_its_last_row(tmp_path: Path) -> None:
    connection = connect_duckdb(tmp_path / "w.duckdb")
    month = date(2026, 1, 1)
    rows = [EligibilityRow("tok:a", "P1", month, "18-44", "F", "PA", "generator"),
            EligibilityRow("tok:a", "P1", month, "45-64", "F", "PA", "generator")]

    assert load_eligibility(connection, rows) == 1
    assert connection.execute("SELECT age_band FROM eligibility").fetchall() == [("45-64",)]
    connection.close()


def test_the_loader_says_what_it_expected(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with pytest.raises(EligibilityError, match="expected a CSV file"):
        load_synpuf_eligibility(settings, tmp_path / "missing.csv")
    with pytest.raises(EligibilityError, match="expected a DE-SynPUF beneficiary file name"):
        load_synpuf_eligibility(settings, synpuf_file(tmp_path, "members.csv"))
    redshift = settings.model_copy(update={"warehouse": settings.warehouse.model_copy(
        update={"kind": WarehouseKind.REDSHIFT})})
    with pytest.raises(EligibilityError, match="expected the local DuckDB warehouse"):
        load_synpuf_eligibility(redshift, synpuf_file(tmp_path), 2009)
    assert synpuf_year(Path("DE1_0_2010_Beneficiary_Summary_File_Sample_20.csv")) == 2010
