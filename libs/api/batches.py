"""Daily batch runs started over HTTP: one child process per run, at most one run per date at a time.

Why a child process and not a thread: the batch (libs.batch.job.run_batch) drives a Spark JVM for minutes and needs
gigabytes; in its own process it cannot block the API's event loop or threads, its memory is returned when it ends,
and a crash of the JVM fails that run, not the API. The runner keeps each run's status (queued, running, succeeded,
failed) with the batch run id and counts the job reports, or its PHI-free error, for `GET /v1/batches/{id}`;
the warehouse's batch_runs table stays the ledger of record.

In AWS the batch runs on EMR: the child submits an EMR step of the deployed release and follows it
(libs.api.emr_batches); the API contract (202, status URL, 409 while a date runs) stays the same.
"""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from multiprocessing.connection import Connection
from typing import Any

from libs.api.emr_batches import EmrBatchTarget
from libs.settings import Settings

Target = Callable[[Settings, date | None, Connection], None]
Check = Callable[[Settings, date | None], None]
MAX_REMEMBERED_JOBS = 200


class BatchStatus(StrEnum):
    """Where a run started over HTTP is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class BatchAlreadyRunningError(Exception):
    """A run for the same date is queued or running (HTTP 409)."""

    def __init__(self, job: BatchJob) -> None:
        day = job.run_date.isoformat() if job.run_date else "all days"
        super().__init__(f"a batch run for {day} is already {job.status.value} (job {job.job_id})")
        self.job = job


@dataclass
class BatchJob:
    """One batch run requested over HTTP."""

    job_id: str
    run_date: date | None
    requested_by: str
    requested_at: datetime
    status: BatchStatus = BatchStatus.QUEUED
    started_at: datetime | None = None
    finished_at: datetime | None = None
    batch_run_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    emr_step_id: str | None = None  # in AWS: the EMR step running the batch (libs.api.emr_batches)

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.status in (BatchStatus.QUEUED, BatchStatus.RUNNING)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form of `GET /v1/batches/{id}`."""
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"job_id": self.job_id, "run_date": self.run_date.isoformat() if self.run_date else None,
                "status": self.status.value, "requested_by": self.requested_by,
                "requested_at": when(self.requested_at), "started_at": when(self.started_at),
                "finished_at": when(self.finished_at), "batch_run_id": self.batch_run_id, "counts": self.counts,
                "error": self.error, "emr_step_id": self.emr_step_id}


def run_batch_in_child(settings: Settings, day: date | None, conn: Connection) -> None:
    """The child process: start Spark, run the batch for `day`, report ("succeeded", run id, counts) or ("failed",
    run id or None, PHI-free message)."""
    from libs.batch.job import run_batch  # noqa: PLC0415  (PySpark is imported by the child only)
    from libs.phi.logging import configure_logging, safe_exception_message  # noqa: PLC0415
    from libs.spark.session import build_spark_session  # noqa: PLC0415

    configure_logging()
    conn.send(("running",))
    try:
        spark = build_spark_session(settings.spark, app_name="claims-api-batch")
        try:
            result = run_batch(spark, settings, day)
        finally:
            spark.stop()
    except Exception as exc:  # noqa: BLE001  (the parent records it; run_batch already wrote batch_runs)
        conn.send(("failed", None, safe_exception_message(exc)))
        return
    conn.send(("succeeded", result.run.batch_run_id, dict(result.counts)))


def check_batch_before_start(settings: Settings, day: date | None) -> None:
    """The batch's preflight (libs.batch.job.check_batch) before a child starts: a missing broker, topic, stream
    table or day of claims raises PreflightError (HTTP 503) in seconds with the line `claims batch` prints, and the
    refusal is in batch_runs, instead of a 202 for a run that fails after a JVM start."""
    from libs.batch.job import check_batch  # noqa: PLC0415  (imports PySpark: only when a run is asked for)

    check_batch(settings, day)


class BatchRunner:
    """Starts batch runs in child processes and tracks them; one active run per date."""

    def __init__(self, settings: Settings, *, target: Target | None = None,
                 check: Check = check_batch_before_start,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._settings = settings
        # In AWS (the settings name the stack's EMR cluster) a run is an EMR step of the deployed release; locally
        # the child process runs Spark itself.
        self._target: Target = target or (EmrBatchTarget() if settings.aws.emr_cluster_id else run_batch_in_child)
        self._check = check
        self._clock = clock
        self._jobs: dict[str, BatchJob] = {}
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")  # never fork the API (threads, sockets)
        self._processes: dict[str, multiprocessing.process.BaseProcess] = {}

    def submit(self, day: date | None, requested_by: str) -> BatchJob:
        """Start a run for `day` (None: all of silver); BatchAlreadyRunningError while one for that date is active,
        PreflightError (libs.preflight) when a dependency of the batch is missing."""
        with self._lock:
            for job in self._jobs.values():
                if job.active and job.run_date == day:
                    raise BatchAlreadyRunningError(job)
        self._check(self._settings, day)
        with self._lock:
            for job in self._jobs.values():
                if job.active and job.run_date == day:
                    raise BatchAlreadyRunningError(job)
            job = BatchJob(job_id=f"job-{uuid.uuid4().hex[:12]}", run_date=day, requested_by=requested_by,
                           requested_at=self._clock())
            self._jobs[job.job_id] = job
            self._forget_old()
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=self._target, args=(self._settings, day, sender),
                                        name=f"claims-batch-{job.job_id}", daemon=True)
        process.start()
        sender.close()
        self._processes[job.job_id] = process
        threading.Thread(target=self._watch, args=(job, process, receiver), name=f"watch-{job.job_id}",
                         daemon=True).start()
        return job

    def _watch(self, job: BatchJob, process: multiprocessing.process.BaseProcess, receiver: Connection) -> None:
        """Follow the child's reports until it ends; a child that dies without a verdict failed."""
        outcome: tuple[Any, ...] | None = None
        while True:
            try:
                message = receiver.recv()
            except (EOFError, OSError):
                break
            if message[0] == "running":
                with self._lock:
                    job.status, job.started_at = BatchStatus.RUNNING, self._clock()
            elif message[0] == "submitted":
                with self._lock:
                    job.emr_step_id = message[1]
            else:
                outcome = message
        process.join()
        receiver.close()
        with self._lock:
            job.finished_at = self._clock()
            if outcome is not None and outcome[0] == "succeeded":
                job.status, job.batch_run_id, job.counts = BatchStatus.SUCCEEDED, outcome[1], dict(outcome[2])
            else:
                job.status = BatchStatus.FAILED
                job.error = outcome[2] if outcome is not None else f"the batch process exited with {process.exitcode}"
            self._processes.pop(job.job_id, None)

    def get(self, job_id: str) -> BatchJob | None:
        """A run this API started, by job id."""
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[BatchJob]:
        """Runs this API started, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.requested_at, reverse=True)

    def _forget_old(self) -> None:
        finished = sorted((job for job in self._jobs.values() if not job.active), key=lambda job: job.requested_at)
        for job in finished[: max(0, len(self._jobs) - MAX_REMEMBERED_JOBS)]:
            del self._jobs[job.job_id]

    def close(self, timeout: float = 10.0) -> None:
        """Stop runs still going (the API is shutting down): they are recorded as failed."""
        for process in list(self._processes.values()):
            process.terminate()
            process.join(timeout)
