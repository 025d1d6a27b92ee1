"""`claims deploy`: ship the apps to a Pulumi stack (what `make deploy-apps STACK=dev` runs).

Thin entry point: reading the stack outputs, planning and applying live in libs.deploy; this module parses options,
prints the plan and maps failures to an exit status.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from libs.deploy.artifacts import ArtifactError
from libs.deploy.deployer import DeployBlockedError, DeployError, DeployOptions, deploy
from libs.deploy.emr_steps import EmrStepError
from libs.deploy.outputs import StackOutputsError, read_outputs_file, read_stack_outputs
from libs.deploy.plan import Action, DeployPlan
from libs.deploy.redshift import RedshiftDdlError
from libs.deploy.render_config import ConfigRenderError
from libs.deploy.state import DeployStateError
from libs.warehouse.dialect import SchemaError

EXIT_FAILED = 1
EXIT_BLOCKED = 3

_ACTION_STYLE = {
    Action.CREATE: "green", Action.UPDATE: "yellow", Action.REPLACE: "yellow", Action.UNCHANGED: "dim",
    Action.SKIPPED: "cyan", Action.BLOCKED: "bold red",
}
_EXPECTED_FAILURES = (StackOutputsError, ConfigRenderError, ArtifactError, DeployError, DeployStateError,
                      RedshiftDdlError, EmrStepError, SchemaError)


def _print_plan(console: Console, plan: DeployPlan) -> None:
    table = Table(title=f"deploy plan - stack {plan.stack}", show_lines=False)
    for column in ("component", "name", "action", "detail"):
        table.add_column(column, overflow="fold")
    for item in plan.items:
        style = _ACTION_STYLE[item.action]
        table.add_row(item.component.value, item.name, f"[{style}]{item.action.value}[/{style}]", item.detail)
    console.print(table)
    console.print(plan.summary())


def deploy_command(  # Typer reads the options from the signature
    *,
    stack: Annotated[str, typer.Option("--stack", help="Pulumi stack: dev, staging or prod.")],
    outputs: Annotated[Path | None, typer.Option(
        "--outputs", help="Read the stack outputs from this JSON file instead of `pulumi stack output`.",
        exists=True, dir_okay=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; change nothing.")] = False,
    skip_topics: Annotated[bool, typer.Option("--skip-topics", help="Do not create/update Kafka topics.")] = False,
    wheel_dir: Annotated[Path | None, typer.Option(
        "--wheel-dir", help="Use the prebuilt project wheel in this directory instead of building it.",
        exists=True, file_okay=False)] = None,
    jars_dir: Annotated[Path | None, typer.Option(
        "--jars-dir", file_okay=False,
        help="Ship the Spark connector jars in this directory (default: .cache/jars/spark, what `make jars` "
             "resolves; it must hold the Kafka, Delta and MSK IAM auth jars).")] = None,
    replication_factor: Annotated[int | None, typer.Option(
        "--replication-factor", min=1, help="Topic replication factor (default 3 on AWS stacks).")] = None,
    schema_migrated: Annotated[bool, typer.Option(
        "--schema-migrated", help="Changed warehouse tables were migrated by hand: record their new definitions.",
    )] = False,
    json_report: Annotated[bool, typer.Option("--json", help="Print the plan as JSON instead of a table.")] = False,
) -> None:
    """Ship the wheel, Spark jobs, app config, warehouse DDL and topics to a stack; idempotent."""
    console, errors = Console(), Console(stderr=True, soft_wrap=True)
    options = DeployOptions(stack=stack, dry_run=dry_run, skip_topics=skip_topics, wheel_dir=wheel_dir,
                            replication_factor=replication_factor, schema_migrated=schema_migrated)
    if jars_dir is not None:
        options = dataclasses.replace(options, spark_jars_dir=jars_dir)
    try:
        stack_outputs = read_outputs_file(outputs) if outputs is not None else read_stack_outputs(stack)
        plan = deploy(stack_outputs, options)
    except DeployBlockedError as blocked:
        _print_plan(errors, blocked.plan)
        errors.print(f"[bold red]{blocked}[/bold red]")
        raise typer.Exit(EXIT_BLOCKED) from None
    except _EXPECTED_FAILURES as error:
        errors.print(f"[bold red]deploy failed:[/bold red] {error}")
        raise typer.Exit(EXIT_FAILED) from None
    if json_report:
        typer.echo(json.dumps(plan.to_dict(), indent=2))
    else:
        _print_plan(console, plan)


def register(app: typer.Typer) -> None:
    """Add `claims deploy` to the CLI."""
    app.command("deploy")(deploy_command)
