"""Replacement (frequency 7) and void (frequency 8) semantics through the real query, within and across batches.

Two availableNow runs share one checkpoint, so the batch boundary is exactly where the test puts it:

    batch 1: A, B(7 of A)  D, C(8 of D)  E          G(7 of F)  H, H'(7 same id)  K      M          P(8 of Q)  S
    batch 2:                             R(7 of E)  F (late)                     K'(7)  N(8 of M)  Q (late)   S(8)

Current claims after batch 1: B, E, G, H' (new content), K, M, S.   After batch 2: B, G, H', K' (new content), R.
A replaced or voided original must never come back, even when it arrives after its replacement or void; a void that
reuses its original's claim id (S) removes it. The current claims are read as every consumer reads them
(libs.lake.readers.current_claims over append-only silver and the event ledger).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from libs.lake import LakeTables, current_claims
from libs.model import Claim
from libs.streaming.reconcile import Reconciliation, reconcile
from tests.factories import make_professional_claim
from tests.streaming.pipeline_helpers import AS_OF, expected_outcome, make_pipeline, produce_claims, run_available_now
from tests.streaming.pipeline_helpers import table as delta_table

pytestmark = [pytest.mark.spark, pytest.mark.kafka]


def claim(claim_id: str, frequency: str = "1", original: str | None = None, charge: str = "125.00") -> Claim:
    """A valid professional claim; `charge` changes the first line and the total, so versions are told apart."""
    base = make_professional_claim()
    first, second = base.lines
    assert second.charge is not None
    return make_professional_claim(claim_id=claim_id, frequency_code=frequency, original_claim_id=original,
                                   lines=[first.model_copy(update={"charge": Decimal(charge)}), second],
                                   total_charge=Decimal(charge) + second.charge)


BATCH_1 = [
    claim("A"), claim("B", "7", "A", "130.00"),  # replacement in the same batch as its original
    claim("D"), claim("C", "8", "D"),  # void in the same batch as its original
    claim("E"),  # replaced in batch 2
    claim("G", "7", "F", "131.00"),  # replacement whose original F only arrives in batch 2
    claim("H"), claim("H", "7", "H", "132.00"),  # replacement reusing the original's claim id, same batch
    claim("K"),  # replaced under its own claim id in batch 2
    claim("M"),  # voided in batch 2
    claim("P", "8", "Q"),  # void whose original Q only arrives in batch 2
    claim("S"),  # voided under its own claim id in batch 2
]
BATCH_2 = [
    claim("R", "7", "E", "133.00"),
    claim("F"),  # late original, already replaced by G
    claim("K", "7", "K", "134.00"),
    claim("N", "8", "M"),
    claim("Q"),  # late original, already voided by P
    claim("S", "8", "S"),
]


@dataclass(frozen=True)
class Outcome:
    after_first: dict[str, Any]
    after_second: dict[str, Any]
    reconciliation: Reconciliation


def _silver(spark: Any, tables: LakeTables) -> dict[str, Any]:
    """claim_id -> (frequency code, total charge) of every current claim; fails on a repeated claim id."""
    current = current_claims(delta_table(spark, tables.silver), delta_table(spark, tables.claim_events))
    rows = current.select("claim_id", "frequency_code", "total_charge").collect()
    ids = [row["claim_id"] for row in rows]
    assert len(ids) == len(set(ids)), f"expected one silver row per claim id, found {sorted(ids)}"
    return {row["claim_id"]: (row["frequency_code"], row["total_charge"]) for row in rows}


@pytest.fixture(scope="module")
def outcome(spark, kafka_broker, tmp_path_factory) -> Outcome:
    # Every message is valid: only the routing of replacements and voids is under test.
    everything = BATCH_1 + BATCH_2
    assert not expected_outcome(everything, AS_OF).invalid_ids
    pipeline = make_pipeline(tmp_path_factory.mktemp("replacement-void"), kafka_broker.bootstrap)
    protector = pipeline.protector()
    produce_claims(pipeline, BATCH_1, protector)
    running = run_available_now(spark, pipeline)
    first = _silver(spark, running.tables)
    produce_claims(pipeline, BATCH_2, protector)
    running = run_available_now(spark, pipeline)
    second = _silver(spark, running.tables)
    batches = delta_table(spark, running.tables.bronze).groupBy("batch_id").count().collect()
    assert sorted((row["batch_id"], row["count"]) for row in batches) == [(0, len(BATCH_1)), (1, len(BATCH_2))]
    return Outcome(first, second, reconcile(spark, running.tables, produced=len(everything)))


def _money(value: str) -> Decimal:
    return (Decimal(value) + Decimal("40.50")).quantize(Decimal("0.0001"))


def test_first_batch_applies_replacements_and_voids_within_the_batch(outcome: Outcome) -> None:
    assert outcome.after_first == {
        "B": ("7", _money("130.00")),
        "E": ("1", _money("125.00")),
        "G": ("7", _money("131.00")),
        "H": ("7", _money("132.00")),  # one row, the replacement's content
        "K": ("1", _money("125.00")),
        "M": ("1", _money("125.00")),
        "S": ("1", _money("125.00")),
    }


def test_later_replacements_and_voids_remove_their_originals_and_late_originals_stay_out(outcome: Outcome) -> None:
    silver = outcome.after_second
    assert "E" not in silver  # replaced by R in a later batch
    assert "M" not in silver  # voided by N in a later batch
    assert "F" not in silver  # arrived after its replacement G
    assert "Q" not in silver  # arrived after its void P
    assert {"C", "N", "P", "A", "D"}.isdisjoint(silver)  # voids are never stored; removed originals stay removed
    assert silver["R"] == ("7", _money("133.00"))
    assert silver["K"] == ("7", _money("134.00"))  # same claim id across batches: the newer version stands
    assert {cid: silver[cid] for cid in ("B", "G", "H")} == {cid: outcome.after_first[cid] for cid in ("B", "G", "H")}


def test_the_lake_reconciles(outcome: Outcome) -> None:
    result = outcome.reconciliation
    assert result.reconciled, result.problems
    assert (result.bronze, result.quarantine, result.valid_events) == (18, 0, 18)
    assert result.voids == 4  # C, P, N, S


def test_a_void_reusing_its_originals_claim_id_removes_it(outcome: Outcome) -> None:
    assert "S" not in outcome.after_second
