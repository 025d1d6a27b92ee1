"""Same seed, same bytes; another seed, another world."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import orjson
import pytest

from apps.cli.generate import CLAIMS_FILE, LABELS_FILE, write_generated
from libs.generator import GeneratorConfig, claim_json, generate_claims, generate_records


def _write(tmp_path: Path, name: str, seed: int) -> tuple[bytes, bytes]:
    out = tmp_path / name
    write_generated(GeneratorConfig(count=600, seed=seed, defect_rate=0.2, fraud_rate=0.2), out)
    return (out / CLAIMS_FILE).read_bytes(), (out / LABELS_FILE).read_bytes()


def test_same_seed_writes_byte_identical_files(tmp_path):
    first = _write(tmp_path, "a", seed=42)
    second = _write(tmp_path, "b", seed=42)
    assert first == second
    assert first[0].count(b"\n") == 600
    assert first[1]  # with these rates there are labels to compare too


def test_different_seed_writes_different_claims_and_labels(tmp_path):
    claims_a, labels_a = _write(tmp_path, "a", seed=42)
    claims_b, labels_b = _write(tmp_path, "b", seed=43)
    assert claims_a != claims_b
    assert labels_a != labels_b
    # Not just different IDs: the contents differ line by line.
    lines_a = [line.split(b'"claim_type"', 1)[1] for line in claims_a.splitlines()]
    lines_b = [line.split(b'"claim_type"', 1)[1] for line in claims_b.splitlines()]
    assert sum(a != b for a, b in zip(lines_a, lines_b, strict=True)) > 590


def test_generate_claims_is_reproducible_and_streams_exactly_count():
    config = GeneratorConfig(count=300, seed=9, fraud_rate=0.3)
    first = [(claim.model_dump_json(), [label.to_dict() for label in labels]) for claim, labels in
             generate_claims(config)]
    second = [(claim.model_dump_json(), [label.to_dict() for label in labels]) for claim, labels in
              generate_claims(config)]
    assert first == second
    assert len(first) == 300


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"count": -1}, "count must be >= 0, found -1"),
        ({"defect_rate": 1.5}, "defect_rate must be between 0 and 1, found 1.5"),
        ({"defect_rate": 0.6, "fraud_rate": 0.6}, "must not exceed 1"),
        ({"window_days": 400}, "window_days must be between 30 and 330, found 400"),
        ({"anchor_date": date(2015, 12, 1)}, "must not precede the ICD-10-CM cutover 2015-10-01"),
    ],
)
def test_config_rejects_settings_it_cannot_honour(overrides, message):
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**{"count": 10, "seed": 1, **overrides})


# Digests of today's output (claims as compact JSON and their labels), taken before the generator's hot path was
# tuned for speed: a speed change must never change a claim. A deliberate behaviour change updates them, and says so.
PINNED = [
    (GeneratorConfig(count=3000, seed=7), "c62cee6f45d2746172cf4326f896880d50939bc12b67f113007fb826dee629df"),
    (GeneratorConfig(count=1500, seed=5, defect_rate=0.6, fraud_rate=0.2, replacement_rate=0.1, void_rate=0.05),
     "ae8cf7ea024aef58538bac7cc9d559168b6908266114b1e83107556c3527e184"),
]


@pytest.mark.parametrize(("config", "digest"), PINNED, ids=["default-rates", "every-injection"])
def test_a_seed_gives_the_pinned_claims(config: GeneratorConfig, digest: str) -> None:
    found = hashlib.sha256()
    for record, labels in generate_records(config):
        found.update(claim_json(record))
        found.update(orjson.dumps([label.to_dict() for label in labels]))
        found.update(b"\n")
    assert found.hexdigest() == digest
