"""The walk-through in docs/samples.md stays true: re-run `claims convert` and `claims validate` on every sample input
and compare with the committed expected outputs in samples/expected/.

Why through the real CLI app (in-process, with typer's CliRunner) rather than the library functions: the document
tells readers to type these exact commands, so the test runs the command line they will run, including option
parsing and the split of claims (stdout) and rejections (stderr). Paths are passed relative to the repository root,
as in the document, because `source.file` in the output echoes the path as given.

When an intended change (a new canonical field, a new rule) alters the output, regenerate the expected files with
`UPDATE_SAMPLES=1 .venv/bin/pytest tests/docs/test_samples.py`, review the diff, and update docs/samples.md if the
walk-through quotes what changed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from apps.cli.main import app

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPECTED = REPO_ROOT / "samples" / "expected"
AS_OF = "2026-11-30"
UPDATE = os.environ.get("UPDATE_SAMPLES") == "1"


@dataclass(frozen=True)
class Sample:
    """One sample input: the arguments both commands get (inputs and options, relative to the repository root)."""

    name: str
    args: tuple[str, ...]


SAMPLES = (
    Sample("x12-professional", ("samples/x12/professional.837",)),
    Sample("x12-institutional", ("samples/x12/institutional.837i",)),
    Sample("fhir-eob", ("samples/fhir/eob.json",)),
    Sample("synpuf-carrier", ("--beneficiary", "samples/synpuf/beneficiary.csv", "samples/synpuf/carrier.csv")),
    Sample("json-claims", ("samples/json/claims.ndjson",)),
)
# (sample, --as-of, expected file suffix): every sample as of the walk-through's date, and SynPUF also as of its own
# era, which shows what the date rules contribute.
VALIDATIONS = (
    *((sample, AS_OF, "validation") for sample in SAMPLES),
    (SAMPLES[3], "2010-12-31", "validation-2010-12-31"),
)


def _run(monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[str, str]:
    """(stdout, stderr) of `claims <args>` run from the repository root; the command must succeed."""
    monkeypatch.chdir(REPO_ROOT)
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"claims {' '.join(args)} exited {result.exit_code}: {result.stderr}"
    return result.stdout, result.stderr


def _json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _check(path: Path, actual: list[Any]) -> None:
    """Compare JSON lines with an expected file; an absent file means 'no lines' (used for rejections)."""
    if UPDATE:
        if actual:
            path.write_text("".join(json.dumps(item, separators=(",", ":")) + "\n" for item in actual),
                            encoding="utf-8")
        else:
            path.unlink(missing_ok=True)
        return
    expected = _json_lines(path.read_text(encoding="utf-8")) if path.exists() else []
    assert actual == expected, f"output differs from {path.relative_to(REPO_ROOT)} (see the module docstring)"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.name)
def test_convert_output_matches_expected(monkeypatch: pytest.MonkeyPatch, sample: Sample) -> None:
    stdout, stderr = _run(monkeypatch, "convert", *sample.args)
    claims, rejections = _json_lines(stdout), _json_lines(stderr)
    assert claims, f"{sample.name}: a sample must produce at least one claim"
    _check(EXPECTED / f"{sample.name}.claims.ndjson", claims)
    _check(EXPECTED / f"{sample.name}.rejections.ndjson", rejections)


@pytest.mark.parametrize(("sample", "as_of", "suffix"), VALIDATIONS, ids=lambda value: getattr(value, "name", value))
def test_validate_output_matches_expected(monkeypatch: pytest.MonkeyPatch, sample: Sample, as_of: str,
                                          suffix: str) -> None:
    stdout, stderr = _run(monkeypatch, "validate", "--as-of", as_of, *sample.args)
    results = _json_lines(stdout)
    assert {result["status"] for result in results} <= {"valid", "invalid"}
    assert f"Validation as of {as_of}" in stderr  # the summary table follows the rejections on stderr
    _check(EXPECTED / f"{sample.name}.{suffix}.ndjson", results)


def test_every_sample_input_is_exercised() -> None:
    """A sample file added under samples/ without a test case (and an expected output) is reported."""
    inputs = {path.relative_to(REPO_ROOT).as_posix() for path in (REPO_ROOT / "samples").rglob("*")
              if path.is_file() and EXPECTED not in path.parents}
    used = {arg for sample in SAMPLES for arg in sample.args if arg.startswith("samples/")}
    assert inputs == used


def test_every_expected_file_belongs_to_a_case() -> None:
    """Stale expected files (from a renamed or removed sample) are reported instead of silently kept."""
    names = {path.name for path in EXPECTED.glob("*.ndjson")}
    known = {f"{sample.name}.{kind}.ndjson" for sample in SAMPLES for kind in ("claims", "rejections")}
    known |= {f"{sample.name}.{suffix}.ndjson" for sample, _as_of, suffix in VALIDATIONS}
    assert names <= known, f"unexpected files in samples/expected: {sorted(names - known)}"
