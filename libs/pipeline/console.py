"""What long commands show a person: one progress line per phase, then a summary table (as `make run` does).

Why here and not in each command: `claims run`, `claims stream`, `claims batch` and `claims export` share the look
(phase name, bar or spinner, count, elapsed time, a short info column) and the same closing lines (where the
structured log went), so a person reads them the same way. Progress and tables go to the terminal; the JSON log lines
go to the log file of libs.phi.logging (or to stderr with `--log-format json`, where the progress is then hidden).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from libs.settings import SparkSettings


_PERSON: TextIO | None = None


def person_stderr() -> TextIO:
    """The terminal's stderr as it was when first asked (the CLI asks at start): a duplicate of the descriptor.

    Why: while Spark's JVM starts, libs.spark.session points this process's descriptors 1 and 2 at the Spark log (so
    the JVM's output lands there); `make run` starts the JVM in a background thread, so anything the main thread
    wrote to stderr meanwhile (a phase line, progress, the Ctrl-C line) went to the log instead of to the person.
    """
    global _PERSON  # noqa: PLW0603  (one duplicate per process)
    if _PERSON is None:
        _PERSON = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="replace")
    return _PERSON


def person_console() -> Console:
    """A rich console on `person_stderr()`: progress lines and messages that must reach the person."""
    return Console(file=person_stderr())


def progress(console: Console, enabled: bool = True) -> Progress:
    """The phase display: spinner, phase, bar, done/total, elapsed, info."""
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description:<10}[/bold]"), BarColumn(),
                    MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console,
                    disable=not enabled, transient=False)


def logs_on_terminal() -> bool:
    """Whether the structured log writes to the terminal (`--log-format json`): then progress bars would interleave
    with JSON lines, so commands hide them."""
    return any(getattr(handler, "stream", None) in (sys.stderr, sys.stdout) for handler in logging.getLogger().handlers)


def log_file() -> Path | None:
    """The file the structured log of this process goes to, if it goes to one."""
    for handler in logging.getLogger().handlers:
        name = getattr(getattr(handler, "stream", None), "name", None)
        if isinstance(name, str) and not name.startswith("<"):
            return Path(name)
    return None


def spark_activity(spark: SparkSession) -> str:
    """'tasks done/total' of the active Spark stages (what the engine is doing right now), or '' when idle."""
    tracker = spark.sparkContext.statusTracker()
    stages = [tracker.getStageInfo(stage) for stage in tracker.getActiveStageIds()]
    tasks = [(s.numCompletedTasks, s.numTasks) for s in stages if s is not None]
    return f"tasks {sum(d for d, _ in tasks)}/{sum(t for _, t in tasks)}" if tasks else ""


def start_spark(bar: Progress, spark_settings: SparkSettings, command: str) -> SparkSession:
    """The command's Spark session, started as a progress phase; the JVM's output goes to `<command>-spark.log`."""
    from libs.phi.logging import LOG_DIR  # noqa: PLC0415
    from libs.spark.session import build_spark_session  # noqa: PLC0415  (PySpark only for commands that need it)

    task = bar.add_task("spark", total=None, info="starting the JVM")
    spark = build_spark_session(spark_settings, app_name=f"claims-{command}", log_file=LOG_DIR / f"{command}-spark.log")
    bar.update(task, total=1, completed=1, info="started")
    return spark


@contextmanager
def watch_spark(spark: SparkSession, bar: Progress, task: TaskID, *, every: float = 1.0,
                info: Callable[[], str] | None = None) -> Iterator[None]:
    """While the block runs (in this thread, so Ctrl-C reaches it), a daemon thread shows Spark's task progress."""
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(every):
            try:
                activity = spark_activity(spark)
            except Exception:  # noqa: BLE001  (the session may be stopping; the display just stops changing)
                return
            bar.update(task, info=" ".join(part for part in ((info() if info else ""), activity) if part))

    watcher = threading.Thread(target=poll, name="spark-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=2)


def summary_table(title: str, rows: Iterable[tuple[str, Any]]) -> Table:
    """A two-column table: label, value (integers with thousands separators, None as '-')."""
    table = Table(title=title, show_header=False)
    for label, value in rows:
        if value is None:
            shown = "-"
        elif isinstance(value, bool):
            shown = "yes" if value else "no"
        elif isinstance(value, int):
            shown = f"{value:,}"
        elif isinstance(value, float):
            shown = f"{value:,.1f}"
        else:
            shown = str(value)
        table.add_row(label, shown)
    return table


def print_problem(console: Console, message: object, *, label: str = "error", style: str = "red") -> None:
    """One line that names a failure: never wrapped to the terminal's width (a person greps it, a test matches it,
    and CI terminals are narrow) and never read as rich markup (a path or reason may hold square brackets)."""
    console.print(f"[{style}]{label}[/{style}]: {escape(str(message))}", soft_wrap=True)


def print_log_location(console: Console) -> None:
    """Close a command's output with where its structured log went."""
    where = log_file()
    if where is not None:
        console.print(f"log: {where}")
