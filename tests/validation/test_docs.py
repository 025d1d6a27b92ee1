"""docs/validation-rules.md is exactly what `claims rules --markdown` prints, so it cannot drift from the catalog."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from apps.cli import rules as rules_cli
from libs.validation.catalog import RULES
from libs.validation.docs import render_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "validation-rules.md"


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test host for the command group."""

    rules_cli.register(app)
    return app


def test_doc_file_equals_the_command_output():
    result = CliRunner().invoke(_app(), ["rules", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.stdout == render_markdown()
    assert DOC.read_text(encoding="utf-8") == result.stdout, (
        "docs/validation-rules.md is stale: regenerate it with `claims rules --markdown > docs/validation-rules.md`"
    )


def test_doc_lists_every_code_with_severity_and_the_required_notes():
    text = render_markdown()
    for spec in RULES:
        assert f"| `{spec.code.value}` | {spec.severity.value} |" in text
    for heading in ("The as-of date", "ICD-9-CM / ICD-10-CM cutover", "NPI check digit is a warning",
                    "SynPUF tolerance"):
        assert heading in text
    assert "2015-10-01" in text


def test_table_lists_every_code():
    result = CliRunner().invoke(_app(), ["rules"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for spec in RULES:
        assert spec.code.value in result.stdout
