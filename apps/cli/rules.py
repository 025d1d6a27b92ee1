"""`claims rules`: the validation catalog as a table, or as the Markdown of docs/validation-rules.md.

The page in docs/ is this command's output (`claims rules --markdown > docs/validation-rules.md`); a test compares
the two so the documentation cannot drift from the catalog.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from libs.validation.catalog import RULES, Severity


def catalog_table() -> Table:
    """Every reason code with severity, field and description."""
    table = Table(title=f"Validation rules ({len(RULES)} reason codes)", header_style="bold")
    table.add_column("Code", no_wrap=True)
    table.add_column("Severity")
    table.add_column("Field")
    table.add_column("Description")
    for spec in RULES:
        style = "red" if spec.severity is Severity.ERROR else "yellow"
        table.add_row(spec.code.value, f"[{style}]{spec.severity.value}[/]", spec.field, spec.description)
    return table


def register(app: typer.Typer) -> None:
    """Add `claims rules`."""

    @app.command("rules")
    def rules(
        markdown: Annotated[
            bool, typer.Option("--markdown", help="Print docs/validation-rules.md (the generated Markdown page).")
        ] = False,
    ) -> None:
        """List the validation reason codes with their severity, field and description."""
        if markdown:
            # Imported here: the notes quote rule constants whose modules load the code sets.
            from libs.validation.docs import render_markdown  # noqa: PLC0415

            sys.stdout.write(render_markdown())
            sys.stdout.flush()
            return
        Console().print(catalog_table())
