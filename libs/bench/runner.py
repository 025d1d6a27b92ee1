"""The whole bench, in order, on the same generated claims: what `claims bench` / `make bench` runs.

Order and why:

1. generate N claims (seed fixed), validate them with the Python rules, protect them with the PhiProtector, serialise
   them exactly as the producer does; time each. Protection happens here, once, so that the produce stage measures
   producing only.
2. orjson parse of those exact message values: the physical reference (no consumer is faster than parsing).
3. a fresh local broker (in the bench's work directory) and the produce stage into its raw topic.
4. the hand-written baseline consumer (a subprocess) reads that topic and validates every claim.
5. Spark: an optional small warm-up drain on its own topic (so the measured drain runs on a warm JVM, like a
   long-running stream), then the measured availableNow drain of the same raw topic into a fresh lake, then the
   latency stage (processing-time trigger, steady produce rate, its own topics and lake).

Everything lives under the work directory (default .local/bench/work, wiped at the start) and everything started is
stopped on the way out, also on failure or Ctrl-C.
"""

from __future__ import annotations

import itertools
import os
import platform
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from libs.bench.results import BASELINE_STAGE, PARSE_STAGE, BenchReport, StageResult
from libs.kafka.topics import prefixed_topics_file
from libs.model import Claim
from libs.settings import LOCAL_DIR, REPO_ROOT, KafkaSettings, LakeSettings, SecuritySettings, Settings, SparkSettings

DEFAULT_OUT = LOCAL_DIR / "bench" / "bench.json"
DEFAULT_WORK_DIR = LOCAL_DIR / "bench" / "work"
PROGRESS_EVERY = 500
STREAMING_TARGET = 10_000  # claims/s end to end on a warm JVM, the target of docs/benchmarks.md
PRODUCING_TARGET = 20_000  # generated claims into Kafka with PHI protection, claims/s (docs/benchmarks.md)


@dataclass(frozen=True)
class BenchConfig:
    """What to run; the CLI's options."""

    count: int = 100_000
    seed: int = 7
    rate: float = 2000.0  # claims/s produced during the latency stage
    seconds: float = 60.0  # how long the latency stage produces
    trigger_seconds: float = 5.0  # processing-time trigger of the latency stage (the production default)
    warmup: int = 20_000  # claims drained once before the measured drain, to warm the JIT (0: no warm-up)
    max_offsets_per_trigger: int | None = None  # None: the settings default, as `make run` uses
    produce_pipeline: bool = True  # generate + protect + produce as `make run` does, one process vs worker processes
    api_load: bool = True  # locust against `claims api`: NDJSON ingestion and analytics latency
    batch_marts: bool = True  # final stage: the daily batch's marts in Spark vs DuckDB on 1,000,000 claims
    work_dir: Path = DEFAULT_WORK_DIR
    out: Path = DEFAULT_OUT

    def __post_init__(self) -> None:
        problems = [f"{name} must be > 0, found {value}" for name, value in
                    (("count", self.count), ("rate", self.rate), ("seconds", self.seconds),
                     ("trigger_seconds", self.trigger_seconds)) if value <= 0]
        if self.warmup < 0:
            problems.append(f"warmup must be >= 0, found {self.warmup}")
        if problems:
            msg = "bench config: " + "; ".join(problems)
            raise ValueError(msg)


@dataclass
class Corpus:
    """The generated claims, their protected records and message values (index-aligned)."""

    claims: list[Claim]
    as_of: date
    records: list[dict[str, Any]] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    _by_identity: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

    def protected(self, claim: Claim) -> dict[str, Any]:
        """The ClaimProducer's `protect` hook: the record protected in advance (a lookup, no crypto)."""
        return self._by_identity[id(claim)]

    def index_records(self) -> None:
        # Keyed by object identity: claim ids may repeat (replacements), and the claims list keeps every object alive.
        self._by_identity = {id(claim): record for claim, record in zip(self.claims, self.records, strict=True)}

    def cycle(self, total: int) -> Iterator[Claim]:
        """`total` claims, starting over from the first when `total` exceeds the corpus."""
        return itertools.islice(itertools.cycle(self.claims), total)


def machine_description() -> dict[str, Any]:
    """Where the figures were measured: CPU, cores, memory, load, versions (no host names or user data)."""
    cpu = "unknown"
    memory_gb = None
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    java = "unknown"
    try:
        result = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S607
        java = (result.stderr or result.stdout).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        pass
    import confluent_kafka  # noqa: PLC0415
    import pyspark  # noqa: PLC0415

    kafka_jars = sorted(p.name for p in (REPO_ROOT / ".cache" / "jars" / "kafka").glob("kafka_2.13-*.jar"))
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "java": java,
        "pyspark": pyspark.__version__,
        "confluent_kafka": confluent_kafka.version()[0],
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka_broker_jar": kafka_jars[0] if kafka_jars else None,
    }


class BenchProgress:
    """A rich progress display with one line per stage (bar when the total is known, spinner otherwise)."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console, disable=not enabled,
        )

    def __enter__(self) -> BenchProgress:
        self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._progress.stop()

    def stage(self, name: str, total: int | None) -> Callable[..., None]:
        """Add a line; returns update(completed=None, info=None, done=False)."""
        task = self._progress.add_task(name, total=total, info="")

        def update(completed: int | None = None, info: str | None = None, done: bool = False) -> None:
            fields: dict[str, Any] = {}
            if info is not None:
                fields["info"] = info
            if done:
                task_total = self._progress.tasks[task].total
                fields["completed"] = task_total if task_total is not None else completed or 0
                fields["total"] = fields["completed"]
            elif completed is not None:
                fields["completed"] = completed
            self._progress.update(task, **fields)

        return update

    def say(self, message: str) -> None:
        self._progress.console.print(message)


def _timed_loop(items: Sequence[Any], work: Callable[[Any], Any], update: Callable[..., None]
                ) -> tuple[list[Any], float]:
    """Apply `work` to every item, timing the whole loop; progress every PROGRESS_EVERY items."""
    results: list[Any] = []
    started = time.perf_counter()
    for index, item in enumerate(items, 1):
        results.append(work(item))
        if index % PROGRESS_EVERY == 0:
            update(completed=index)
    seconds = time.perf_counter() - started
    update(completed=len(items), done=True)
    return results, seconds


def _stage_topics(work_dir: Path, name: str, prefix: str) -> Path:
    """The project's topics under `prefix`, for one stage."""
    return prefixed_topics_file(work_dir / name / "topics.json", prefix, KafkaSettings().topics_file)


def stage_settings(work_dir: Path, name: str, bootstrap: str, topics_file: Path, config: BenchConfig) -> Settings:
    """Settings of one Spark stage: its own lake and checkpoints; security (keyring, audit) in the work dir."""
    from libs.settings import load_settings  # noqa: PLC0415

    return load_settings(
        kafka=KafkaSettings(bootstrap_servers=bootstrap, topics_file=topics_file),
        lake=LakeSettings(root=str(work_dir / name / "lake"), checkpoint_root=str(work_dir / name / "checkpoints")),
        spark=SparkSettings(trigger_seconds=config.trigger_seconds,
                            **({"max_offsets_per_trigger": config.max_offsets_per_trigger}
                               if config.max_offsets_per_trigger is not None else {})),
        security=SecuritySettings(local_key_file=work_dir / "keys" / "keyring.json",
                                  audit_log=work_dir / "audit" / "audit.jsonl"),
    )


def run_bench(config: BenchConfig, console: Console | None = None, show_progress: bool = True) -> BenchReport:
    """Run every stage; returns the report (also written to `config.out` as JSON)."""
    console = console or Console(stderr=True)
    report = BenchReport(environment=machine_description(),
                         config={key: str(value) if isinstance(value, Path) else value
                                 for key, value in asdict(config).items()})
    shutil.rmtree(config.work_dir, ignore_errors=True)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    with BenchProgress(console, enabled=show_progress) as progress:
        corpus = _python_stages(config, report, progress)
        _kafka_and_streaming_stages(config, report, progress, corpus)
        if config.batch_marts:
            from libs.bench.batch import batch_vs_duckdb  # noqa: PLC0415
            from libs.settings import load_settings  # noqa: PLC0415
            from libs.spark.session import build_spark_session  # noqa: PLC0415

            spark = build_spark_session(load_settings().spark, app_name="claims-bench-batch")
            try:
                report.details["batch_marts"] = batch_vs_duckdb(spark, config.work_dir)
            finally:
                spark.stop()
    config.out.parent.mkdir(parents=True, exist_ok=True)
    config.out.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
    return report


def _python_stages(config: BenchConfig, report: BenchReport, progress: BenchProgress) -> Corpus:
    from libs.codesets import load_codesets  # noqa: PLC0415
    from libs.generator import GeneratorConfig, generate_claims  # noqa: PLC0415
    from libs.kafka.serialize import claim_to_message  # noqa: PLC0415
    from libs.phi import PhiProtector  # noqa: PLC0415
    from libs.validation import validate_claims  # noqa: PLC0415

    generator_config = GeneratorConfig(count=config.count, seed=config.seed)
    # Validation "as of" the generator's anchor date, in Python and in Spark alike: the outcome of every claim is
    # then the one the generator labelled, whatever today's date is.
    as_of = generator_config.anchor_date

    update = progress.stage("generate", config.count)
    claims: list[Claim] = []
    started = time.perf_counter()
    for index, (claim, _labels) in enumerate(generate_claims(generator_config), 1):
        claims.append(claim)
        if index % PROGRESS_EVERY == 0:
            update(completed=index)
    report.add(StageResult("generate", len(claims), time.perf_counter() - started, "libs.generator, claims + labels"))
    update(done=True)
    corpus = Corpus(claims=claims, as_of=as_of)

    codesets = load_codesets()  # loaded before the clock starts, as a long-running validator would have them
    update = progress.stage("validate (Python rules)", config.count)
    valid = 0
    started = time.perf_counter()
    for index, result in enumerate(validate_claims(claims, as_of, codesets), 1):
        valid += result.is_valid
        if index % PROGRESS_EVERY == 0:
            update(completed=index)
    report.add(StageResult("validate (Python rules)", len(claims), time.perf_counter() - started,
                           f"libs.validation.validate_claims on Claim objects; {valid:,} valid"))
    update(done=True)

    settings = stage_settings(config.work_dir, "protect", "127.0.0.1:0", KafkaSettings().topics_file, config)
    protector = PhiProtector.from_settings(settings)
    update = progress.stage("protect (PhiProtector)", config.count)
    corpus.records, seconds = _timed_loop(claims, protector.protect, update)
    report.add(StageResult("protect (PhiProtector)", len(claims), seconds,
                           "tokenize + AES-GCM encrypt PHI leaves; done before producing"))
    corpus.index_records()

    update = progress.stage("serialize (orjson dumps)", config.count)
    corpus.values, seconds = _timed_loop(claims, lambda claim: claim_to_message(claim, corpus.protected), update)
    mean_size = sum(map(len, corpus.values)) / len(corpus.values)
    report.details["message_bytes_mean"] = round(mean_size, 1)
    report.add(StageResult("serialize (orjson dumps)", len(claims), seconds, f"mean value {mean_size:,.0f} bytes"))

    update = progress.stage(PARSE_STAGE, config.count)
    _parsed, seconds = _timed_loop(corpus.values, orjson.loads, update)
    del _parsed
    report.add(StageResult(PARSE_STAGE, len(corpus.values), seconds, "orjson.loads of the message values: reference"))
    return corpus


def _produce(settings: Settings, corpus: Corpus, claims: Iterator[Claim], *, total: int, rate: float | None,
             update: Callable[..., None]) -> tuple[int, float]:
    """Produce `claims` (pre-protected) to the raw topic of `settings`; returns (delivered, seconds)."""
    from libs.kafka.producer import ClaimProducer, ProduceReport  # noqa: PLC0415
    from libs.kafka.topics import load_topics  # noqa: PLC0415

    topics = load_topics(settings.kafka.topics_file)
    started = time.perf_counter()
    producer = ClaimProducer(settings.kafka, topics.raw, protect=corpus.protected,
                             dead_letter_topic=topics.dead_letter, rate=rate, registry=CollectorRegistry())

    def on_progress(produced: ProduceReport) -> None:
        update(completed=produced.sent, info=f"delivered {produced.delivered:,}")

    result = producer.produce_all(claims, on_progress=on_progress)
    seconds = time.perf_counter() - started
    if not result.ok:
        msg = (f"producer: expected {total:,} claims delivered to {topics.raw}, found {result.delivered:,} "
               f"delivered and {result.failed:,} failed (first: {result.failures[:1]})")
        raise RuntimeError(msg)
    update(done=True)
    return result.delivered, seconds


def _kafka_and_streaming_stages(config: BenchConfig, report: BenchReport, progress: BenchProgress,
                                corpus: Corpus) -> None:
    from libs.bench.baseline import run_baseline  # noqa: PLC0415
    from libs.kafka.admin import ensure_topics  # noqa: PLC0415
    from libs.kafka.broker import LocalKafka  # noqa: PLC0415
    from libs.kafka.topics import load_topics  # noqa: PLC0415

    work = config.work_dir
    run_id = uuid.uuid4().hex[:8]
    update = progress.stage("start Kafka broker", None)
    with LocalKafka(home=work / "kafka", port=0, controller_port=0) as broker:
        update(info=broker.bootstrap, done=True)
        drain_settings = stage_settings(work, "drain", broker.bootstrap,
                                        _stage_topics(work, "drain", f"bench-{run_id}"),
                                        config)
        ensure_topics(drain_settings.kafka, drain_settings.kafka.topics_file)
        raw_topic = load_topics(drain_settings.kafka.topics_file).raw

        update = progress.stage("produce", len(corpus.claims))
        delivered, seconds = _produce(drain_settings, corpus, iter(corpus.claims), total=len(corpus.claims),
                                      rate=None, update=update)
        report.add(StageResult("produce", delivered, seconds,
                               "ClaimProducer (idempotent, acks=all, zstd) incl. final flush; values pre-protected"))

        update = progress.stage(BASELINE_STAGE, None)
        baseline, wall = run_baseline(broker.bootstrap, raw_topic, corpus.as_of)
        update(completed=baseline.messages, done=True, info=f"{baseline.valid:,} valid")
        report.add(StageResult(BASELINE_STAGE, baseline.messages, baseline.seconds,
                               "1 confluent-kafka consumer process: poll + orjson + Claim + Python rules"))
        report.details["baseline"] = {**asdict(baseline), "process_wall_seconds": round(wall, 3)}

        if config.produce_pipeline:
            _produce_pipeline_stage(config, report, progress, bootstrap=broker.bootstrap, broker_pid=broker.pid,
                                    run_id=run_id)

        _spark_stages(config, report, progress, corpus, bootstrap=broker.bootstrap, drain_settings=drain_settings,
                      run_id=run_id)

        if config.api_load:
            from libs.bench.api_load import ApiLoadConfig, run_api_load  # noqa: PLC0415

            update = progress.stage("API load (locust: ingestion, analytics)", None)
            api_load = run_api_load(ApiLoadConfig(work_dir=work / "api", bootstrap=broker.bootstrap))
            for stage in api_load["stages"]:
                report.add(StageResult(**stage))
            report.details["api_load"] = api_load
            update(done=True)


def _produce_pipeline_stage(config: BenchConfig, report: BenchReport, progress: BenchProgress, *, bootstrap: str,
                            broker_pid: int | None, run_id: str) -> None:
    """Generated claims through libs.ingest (validate, protect, produce) on topics of their own: `make run`'s path."""
    from libs.bench.produce import run_produce_bench  # noqa: PLC0415
    from libs.kafka.admin import ensure_topics  # noqa: PLC0415

    work = config.work_dir
    settings = stage_settings(work, "produce", bootstrap, _stage_topics(work, "produce", f"bench-{run_id}-produce"),
                              config)
    ensure_topics(settings.kafka, settings.kafka.topics_file)
    update = progress.stage("produce generated claims (libs.ingest)", None)
    result = run_produce_bench(settings, count=config.count, seed=config.seed, broker_pid=broker_pid,
                               on_progress=lambda stage, sent: update(completed=sent.sent, info=stage))
    for stage in result.stages:
        report.add(stage)
    report.details["produce"] = result.details()
    update(done=True)


def _spark_stages(config: BenchConfig, report: BenchReport, progress: BenchProgress, corpus: Corpus, *,
                  bootstrap: str, drain_settings: Settings, run_id: str) -> None:
    from libs.bench.streaming import drain, steady_latency  # noqa: PLC0415
    from libs.kafka.admin import ensure_topics  # noqa: PLC0415
    from libs.spark.session import build_spark_session  # noqa: PLC0415

    work = config.work_dir
    update = progress.stage("start Spark session", None)
    started = time.perf_counter()
    # Every progress event of the latency stage is kept (one per trigger, and it can run more than 100 triggers).
    extra = {"spark.sql.streaming.numRecentProgressUpdates": "2000"}
    spark = build_spark_session(drain_settings.spark, app_name="claims-bench", extra_conf=extra,
                                log_file=config.work_dir / "logs" / "spark.log")
    report.details["spark_session_start_seconds"] = round(time.perf_counter() - started, 2)
    update(done=True)
    try:
        if config.warmup:
            count = min(config.warmup, len(corpus.claims))
            settings = stage_settings(work, "warmup", bootstrap,
                                      _stage_topics(work, "warmup", f"bench-{run_id}-warmup"),
                                      config)
            ensure_topics(settings.kafka, settings.kafka.topics_file)
            update = progress.stage("streaming warm-up (produce)", count)
            _produce(settings, corpus, corpus.cycle(count), total=count, rate=None, update=update)
            update = progress.stage("streaming warm-up (drain)", count)
            warm = drain(spark, settings, corpus.as_of, on_rows=lambda rows: update(completed=rows))
            update(completed=warm.claims, done=True)
            report.add(StageResult("streaming warm-up (cold JVM)", warm.claims, warm.seconds,
                                   "small availableNow drain on a fresh JVM; not a throughput figure"))
            report.details["streaming_warmup"] = warm.to_dict()

        update = progress.stage("streaming drain (availableNow)", len(corpus.claims))
        drained = drain(spark, drain_settings, corpus.as_of, on_rows=lambda rows: update(completed=rows))
        update(completed=drained.claims, done=True)
        warm_note = f"warm JVM (after a {config.warmup:,}-claim drain)" if config.warmup else "cold JVM"
        report.add(StageResult("streaming end to end", drained.claims, drained.seconds,
                               f"start_claims_query(availableNow) -> terminated, fresh lake, {warm_note}"))
        report.details["streaming_drain"] = drained.to_dict()

        total = max(1, round(config.rate * config.seconds))
        settings = stage_settings(work, "latency", bootstrap,
                                  _stage_topics(work, "latency", f"bench-{run_id}-latency"),
                                  config)
        ensure_topics(settings.kafka, settings.kafka.topics_file)
        update = progress.stage(f"latency: produce at {config.rate:,.0f}/s", total)

        def produce() -> tuple[int, float]:
            return _produce(settings, corpus, corpus.cycle(total), total=total, rate=config.rate, update=update)

        latency = steady_latency(spark, settings, as_of=corpus.as_of, produce=produce)
        # Not a stage row: its claims/s is the produce rate by construction; the latencies are the figures.
        report.details["latency"] = {"rate": config.rate, "seconds": config.seconds,
                                     "trigger_seconds": config.trigger_seconds, **latency.to_dict()}
        report.details["streaming_target_claims_per_second"] = STREAMING_TARGET
    finally:
        spark.stop()
