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
    HOST,
    BrokerError,
    LocalKafka,
    broker_answers,
    local_broker,
    read_state,
    stop_broker,
)
from libs.kafka.topics import TopicsFileError
from libs.pipeline.console import print_problem
from libs.settings import KafkaSettings, load_settings

console = Console()
kafka_app = typer.Typer(help="The local single-node Kafka broker (KRaft) on 127.0.0.1.", no_args_is_help=True)

HomeOption = Annotated[Path | None, typer.Option(
    help="Broker directory (data, logs, pid file); default: settings kafka.local_broker_home (.local/kafka).")]


def _broker(home: Path | None, port: int | None = None, controller_port: int | None = None) -> LocalKafka:
    """The local broker of the settings (the one `make run` uses too), with any option given on the command line."""
    kafka = load_settings().kafka
    if port is not None:
        kafka = kafka.model_copy(update={"bootstrap_servers": f"{HOST}:{port}"})
    if controller_port is not None:
        kafka = kafka.model_copy(update={"local_controller_port": controller_port})
    if home is not None:
        kafka = kafka.model_copy(update={"local_broker_home": home})
    try:
        return local_broker(kafka)
    except BrokerError as exc:
        print_problem(console, exc)
        raise typer.Exit(2) from None


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
        print_problem(console, exc)
        raise typer.Exit(1) from None
    _print_topics(results, settings.bootstrap_servers)


@kafka_app.command("up")
def up(
    home: HomeOption = None,
    port: Annotated[int | None, typer.Option(
        help="Client (PLAINTEXT) port; default: the port of settings kafka.bootstrap_servers (9092).")] = None,
    controller_port: Annotated[int | None, typer.Option(
        help="KRaft controller port; default: settings kafka.local_controller_port (9093).")] = None,
    topics: Annotated[bool, typer.Option(help="Create/update the topics of configs/kafka/topics.json.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the broker to answer.")] = 120.0,
) -> None:
    """Start the broker in the background (idempotent: an already running broker is kept) and create the topics.

    The broker keeps its data in its home across restarts, so topics and messages of an earlier `make run` are there.
    """
    broker = _broker(home, port, controller_port)
    state = read_state(broker.home)
    if state is not None:
        console.print(f"broker already running: pid {state.pid} on {state.bootstrap}")
        bootstrap = state.bootstrap
    else:
        try:
            broker.start(timeout=timeout)
        except BrokerError as exc:
            print_problem(console, exc)
            raise typer.Exit(1) from None
        console.print(f"broker started: pid {broker.pid} on {broker.bootstrap} (data: {broker.data_dir}, "
                      f"logs: {broker.server_log})")
        bootstrap = broker.bootstrap
    if topics:
        settings = load_settings(kafka={"bootstrap_servers": bootstrap}).kafka
        _ensure(settings, settings.topics_file, None)


@kafka_app.command("down")
def down(
    home: HomeOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds before SIGKILL follows SIGTERM.")] = 30.0,
) -> None:
    """Stop the broker started by `claims kafka up` or left by `make run` (controlled shutdown, then kill)."""
    where = _broker(home).home
    state = stop_broker(where, timeout)
    if state is None:
        console.print(f"no broker running from {where}")
    else:
        console.print(f"broker stopped: pid {state.pid} ({state.bootstrap})")


@kafka_app.command("status")
def status(home: HomeOption = None) -> None:
    """Is the local broker running and answering? Exit code 1 when not."""
    where = _broker(home).home
    state = read_state(where)
    if state is None:
        console.print(f"not running (no live broker recorded in {where})")
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
