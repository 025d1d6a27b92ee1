"""The produce stage of the bench: generated claims into Kafka with PHI protection, end to end, as `make run` does it.

What is timed is `libs.ingest.produce_generated` from call to return: worker start-up, generation, validation into
the canonical model, PHI protection (tokens and the sealed AES-GCM block), serialisation, the idempotent producer
and the final flush with every acknowledgement. The same claims are produced twice in the same run: once in one
process (`workers=0`, the reference) and once with the worker processes, so the ratio between them is what the
parallel path buys on this machine, whatever else it is doing. CPU seconds are split by who spent them (the calling
process that generates, the producer workers, the broker), which is the profile that says what to make cheaper.

The caller starts the broker and passes settings whose topics file is this stage's own (other stages must not see
these claims); the lead's runner wires it into `make bench` with one `report.add` per returned stage.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from libs.bench.results import PRODUCE_PIPELINE_STAGE, StageResult
from libs.ingest import default_workers, produce_generated
from libs.kafka.producer import ProduceReport
from libs.settings import Settings

PRODUCE_TARGET = 20_000  # claims/s, generated and protected into Kafka (issue 8)
SINGLE_PROCESS_STAGE = f"{PRODUCE_PIPELINE_STAGE} (1 process)"  # the reference the parallel run is compared with
PARALLEL_STAGE = PRODUCE_PIPELINE_STAGE  # what `make run` does


@dataclass
class ProduceBench:
    """The produce stages and the CPU each spent, by process kind."""

    stages: list[StageResult] = field(default_factory=list)
    cpu_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    workers: int = 0

    def details(self) -> dict[str, Any]:
        """JSON-ready figures for the bench report's details."""
        parallel = next((s for s in self.stages if s.name == PARALLEL_STAGE), None)
        return {"workers": self.workers, "cpu_seconds": self.cpu_seconds, "target_claims_per_second": PRODUCE_TARGET,
                "meets_target": bool(parallel and parallel.rate and parallel.rate >= PRODUCE_TARGET)}


def _broker_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def _timed_run(settings: Settings, count: int, seed: int, *, workers: int, broker_pid: int | None,
               on_progress: Callable[[ProduceReport], None] | None) -> tuple[ProduceReport, float, dict[str, float]]:
    own_before, children_before = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    broker_before = _broker_cpu(broker_pid)
    started = time.perf_counter()
    report = produce_generated(settings, count, seed, workers=workers, on_progress=on_progress,
                               registry=CollectorRegistry())
    seconds = time.perf_counter() - started
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        "generating process": round(own.ru_utime + own.ru_stime - own_before.ru_utime - own_before.ru_stime, 2),
        # Workers are reaped before produce_generated returns, so their CPU is in the children's usage by then.
        "producer workers": round(children.ru_utime + children.ru_stime - children_before.ru_utime
                                  - children_before.ru_stime, 2),
        "kafka broker": round(_broker_cpu(broker_pid) - broker_before, 2),
    }
    if not report.ok:
        msg = (f"produce stage: expected {count:,} claims delivered to {report.topic}, found {report.delivered:,} "
               f"delivered and {report.failed:,} failed (first: {report.failures[:1]})")
        raise RuntimeError(msg)
    return report, seconds, cpu


def run_produce_bench(
    settings: Settings,
    *,
    count: int,
    seed: int,
    workers: int | None = None,
    broker_pid: int | None = None,
    single_process_reference: bool = True,
    on_progress: Callable[[str, ProduceReport], None] | None = None,
) -> ProduceBench:
    """Time generated, protected claims into the raw topic of `settings`: one process, then `workers` processes.

    `broker_pid` (LocalKafka.pid) adds the broker's CPU to the profile. Raises RuntimeError when a run does not
    deliver every claim (a bench figure of a lossy run would be meaningless).
    """
    chosen = default_workers(count) if workers is None else workers
    result = ProduceBench(workers=chosen)
    runs = ([(SINGLE_PROCESS_STAGE, 0)] if single_process_reference else []) + [(PARALLEL_STAGE, max(1, chosen))]
    for name, processes in runs:
        def progress(report: ProduceReport, stage: str = name) -> None:
            if on_progress is not None:
                on_progress(stage, report)

        report, seconds, cpu = _timed_run(settings, count, seed, workers=processes, broker_pid=broker_pid,
                                          on_progress=progress)
        spent = ", ".join(f"{kind} {value:.1f} s" for kind, value in cpu.items())
        note = (f"{processes or 'no'} worker process{'es' if processes != 1 else ''}: generate, validate, protect "
                f"PHI, produce (idempotent, acks=all) and flush; CPU {spent}")
        result.stages.append(StageResult(name, report.delivered, seconds, note))
        result.cpu_seconds[name] = cpu
    return result
