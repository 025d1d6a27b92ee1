"""CPU seconds by process kind (Spark's JVM, Python workers, Kafka broker, the bench itself), read from /proc.

Why: on two shared cores a stage's wall time says little about where the work went. The Spark driver JVM, the Python
workers that run the rules, the broker and the bench's own process all compete; the CPU each consumed during a stage
is the profile that says which part to make cheaper (docs/benchmarks.md). Linux only; elsewhere the snapshot is empty
and the breakdown is simply omitted.
"""

from __future__ import annotations

import os
from pathlib import Path

from libs.spark import WORKER_DAEMON

PROC = Path("/proc")


def classify(command_line: str) -> str:
    """The kind of process a command line belongs to (the keys of a CPU breakdown)."""
    if "kafka.Kafka" in command_line:
        return "kafka broker"
    if "java" in command_line and "spark" in command_line.lower():
        return "spark jvm"
    if any(name in command_line for name in ("pyspark.daemon", "pyspark.worker", "pyspark/daemon", WORKER_DAEMON)):
        return "spark python workers"
    if "libs.bench.baseline" in command_line:
        return "baseline consumer"
    return "other"


def snapshot(own_pid: int | None = None) -> dict[str, float]:
    """CPU seconds (user + system, children included) consumed so far by every process, summed per kind.

    The calling process is counted as "bench driver"; processes that end between two snapshots drop out, so the
    difference of two snapshots is a lower bound for short-lived processes.
    """
    if not PROC.is_dir():
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    own = own_pid if own_pid is not None else os.getpid()
    totals: dict[str, float] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds = sum(int(value) for value in fields[11:15]) / tick  # utime, stime, cutime, cstime
        kind = "bench driver" if int(entry.name) == own else classify(command)
        totals[kind] = totals.get(kind, 0.0) + seconds
    return totals


def difference(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per kind between two snapshots (kinds that used less than 0.05 s are left out)."""
    kinds = sorted(set(before) | set(after))
    spent = {kind: round(after.get(kind, 0.0) - before.get(kind, 0.0), 2) for kind in kinds}
    return {kind: seconds for kind, seconds in spent.items() if seconds >= 0.05}
