"""`claims kafka up|down|status` (the local KRaft broker) and `claims topics` (create or update topics).

Thin wrappers: the broker lifecycle is libs.kafka.broker, topic management is libs.kafka.admin.ensure_topics, which
the deploy step also runs against MSK.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from libs.kafka.admin import TopicManagementError, ensure_topics
from libs.kafka.broker import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_HOME,
    DEFAULT_PORT,
    BrokerError,
    LocalKafka,
    broker_answers,
    read_state,
    stop_broker,
)
from libs.kafka.topics import TopicsFileError
from libs.settings import KafkaSettings, load_settings

console = Console()
kafka_app = typer.Typer(help="The local single-node Kafka broker (KRaft) on 127.0.0.1.", no_args_is_help=True)

HomeOption = Annotated[Path, typer.Option(help="Broker directory (data, logs, pid file).")]


def _print_topics(results: dict[str, str], bootstrap: str) -> None:
    table = Table(title=f"topics on {bootstrap}")
    table.add_column("topic")
    table.add_column("change")
    for topic, change in results.items():
        table.add_row(topic, change)
    console.print(table)


def _ensure(settings: KafkaSettings, topics_file: Path, replication_factor: int | None) -> None:
    try:
        results = ensure_topics(settings, topics_file, replication_factor)
    except (TopicManagementError, TopicsFileError) as exc:
        console.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(1) from None
    _print_topics(results, settings.bootstrap_servers)


@kafka_app.command("up")
def up(
    home: HomeOption = DEFAULT_HOME,
    port: Annotated[int, typer.Option(help="Client (PLAINTEXT) port; 0 picks a free one.")] = DEFAULT_PORT,
    controller_port: Annotated[int, typer.Option(help="KRaft controller port.")] = DEFAULT_CONTROLLER_PORT,
    topics: Annotated[bool, typer.Option(help="Create/update the topics of configs/kafka/topics.json.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker to answer.")] = 120.0,
) -> None:
    """Start the broker in the background (idempotent: an already running broker is kept) and create the topics."""
    state = read_state(home)
    if state is not None:
        console.print(f"broker already running: pid {state.pid} on {state.bootstrap}")
        bootstrap = state.bootstrap
    else:
        broker = LocalKafka(home=home, port=port, controller_port=controller_port)
        try:
            broker.start(timeout=timeout)
        except BrokerError as exc:
            console.print(f"[red]error[/red]: {exc}")
            raise typer.Exit(1) from None
        console.print(f"broker started: pid {broker.pid} on {broker.bootstrap} (logs: {broker.server_log})")
        bootstrap = broker.bootstrap
    if topics:
        settings = load_settings(kafka={"bootstrap_servers": bootstrap}).kafka
        _ensure(settings, settings.topics_file, None)


@kafka_app.command("down")
def down(
    home: HomeOption = DEFAULT_HOME,
    timeout: Annotated[float, typer.Option(help="Seconds before SIGKILL follows SIGTERM.")] = 30.0,
) -> None:
    """Stop the broker started by `claims kafka up` (controlled shutdown, then kill after the timeout)."""
    state = stop_broker(home, timeout)
    if state is None:
        console.print(f"no broker running from {home}")
    else:
        console.print(f"broker stopped: pid {state.pid} ({state.bootstrap})")


@kafka_app.command("status")
def status(home: HomeOption = DEFAULT_HOME) -> None:
    """Is the local broker running and answering? Exit code 1 when not."""
    state = read_state(home)
    if state is None:
        console.print(f"not running (no live broker recorded in {home})")
        raise typer.Exit(1)
    answering = broker_answers(state.bootstrap, timeout=5.0)
    console.print(f"running: pid {state.pid} on {state.bootstrap}, "
                  f"{'answering' if answering else '[red]not answering[/red]'} (data: {Path(state.home) / 'data'})")
    if not answering:
        raise typer.Exit(1)


def topics_command(
    bootstrap: Annotated[str | None, typer.Option(help="Kafka bootstrap HOST:PORT (overrides settings).")] = None,
    topics_file: Annotated[Path | None, typer.Option(help="Topic definitions (default: settings).")] = None,
    replication_factor: Annotated[int | None, typer.Option(help="Replication factor for new topics.", min=1)] = None,
) -> None:
    """Create missing topics, add partitions and set configs from configs/kafka/topics.json (idempotent)."""
    settings = load_settings(kafka={"bootstrap_servers": bootstrap}).kafka if bootstrap else load_settings().kafka
    _ensure(settings, topics_file or settings.topics_file, replication_factor)


def register(app: typer.Typer) -> None:
    """Add `claims kafka ...` and `claims topics`."""
    app.add_typer(kafka_app, name="kafka")
    app.command("topics")(topics_command)
