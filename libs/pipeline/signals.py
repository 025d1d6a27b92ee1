"""Ctrl-C and SIGTERM for the CLI: one handler that takes note, so the end of a command can tell an interrupt apart.

Why a module: an interrupt can come back from the JVM disguised (KeyboardInterrupt raised inside a py4j call returns
as Py4JError), and PySpark installs a SIGINT handler of its own whenever a SparkContext is created in the main
thread (it cancels jobs and raises KeyboardInterrupt without telling anyone). `libs.spark.session.build_spark_session`
puts this handler back (`reinstall`), and `apps.cli.main` asks `interrupted()` before it calls a failure a failure.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_received: list[int] = []
_installed: list[bool] = []


def note(signum: int) -> None:
    """Record that a stop was asked for (also by handlers that stop gracefully instead of raising)."""
    _received.append(signum)


def interrupted() -> bool:
    """Whether Ctrl-C or SIGTERM arrived in this process."""
    return bool(_received)


def _handler(signum: int, _frame: FrameType | None) -> None:
    note(signum)
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> None:
    """Make Ctrl-C and SIGTERM raise KeyboardInterrupt after taking note (main thread only, as Python requires)."""
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            signal.signal(sig, _handler)
        _installed.append(True)


def reinstall() -> None:
    """After a Spark session was built: put the handler back over PySpark's (only where `install` ran: the CLI)."""
    if _installed:
        install()
