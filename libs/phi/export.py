"""De-identified NDJSON export: every input line becomes an exported record or a located rejection, nothing silent.

Why separate from deidentify.py: that module is the pure Safe Harbor transformation of one record; this one owns file
discovery, line numbering and the rejects file, so the transformation stays testable without a file system.
Input: NDJSON files (protected records from PhiProtector.protect, or canonical claims) or a directory of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from libs.phi.deidentify import Deidentifier, DeidentifyError, ExportRejectReason

INPUT_SUFFIXES = (".ndjson", ".jsonl", ".json")


@dataclass
class ExportSummary:
    """Counts and rejections of one export run; rejections carry location and reason code, never values."""

    read: int = 0
    written: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)


def input_files(path: Path) -> list[Path]:
    """The file itself, or every NDJSON/JSONL/JSON file under a directory in sorted order."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in INPUT_SUFFIXES)
    if path.is_file():
        return [path]
    msg = f"export input {path}: expected an NDJSON file or a directory of them, found nothing at that path"
    raise FileNotFoundError(msg)


def _lines(files: list[Path]) -> Iterator[tuple[str, bytes]]:
    for file in files:
        with file.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if raw.strip():
                    yield f"{file}:{number}", raw


def export_deidentified(source: Path, out: Path, deidentifier: Deidentifier) -> ExportSummary:
    """Write de-identified NDJSON to `out`; rejections go to `<out>.rejects.ndjson` (only when there are any)."""
    summary = ExportSummary()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as sink:
        for location, raw in _lines(input_files(source)):
            summary.read += 1
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                message = f"expected one JSON object per line; malformed at column {exc.colno}"
                summary.rejections.append({"location": location, "reason": ExportRejectReason.JSON_MALFORMED.value,
                                           "message": message})
                continue
            try:
                sink.write(orjson.dumps(deidentifier.deidentify(record)) + b"\n")
            except DeidentifyError as exc:
                summary.rejections.append({"location": location, "reason": exc.reason.value, "message": str(exc)})
                continue
            summary.written += 1
    rejects = out.with_name(out.name + ".rejects.ndjson")
    if summary.rejections:
        rejects.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in summary.rejections))
    elif rejects.exists():
        rejects.unlink()  # a stale rejects file from an earlier run would misreport this one
    return summary
