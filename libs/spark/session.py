"""Build the Spark session every Spark app and test uses: Delta Lake and the Kafka connector from local jars.

Why local jars instead of `spark.jars.packages`: runs must be offline after the first bootstrap, and the jars are
resolved once by Maven into `.cache/jars/spark` (see scripts/fetch_jars.sh), so a Spark start never touches the network.
On EMR the same jars are shipped with the job instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from libs.pipeline import signals
from libs.settings import SparkSettings
from libs.spark import WORKER_DAEMON


class SparkJarsMissingError(RuntimeError):
    """The connector jars have not been resolved yet (run `make jars`)."""


def connector_jars(jars_dir: Path) -> list[Path]:
    """The connector jars to put on the classpath; fails with a clear message when the bootstrap has not run."""
    jars = sorted(jars_dir.glob("*.jar"))
    names = " ".join(j.name for j in jars)
    missing = [needed for needed in ("spark-sql-kafka", "delta-spark") if needed not in names]
    if missing:
        msg = f"expected the {', '.join(missing)} jars in {jars_dir}, found {len(jars)} jars: run `make jars` first"
        raise SparkJarsMissingError(msg)
    return jars


# Local JVM options: less warm-up work for short runs on small machines (SparkSettings.quick_jit). C1-only mode
# shrinks the JVM's default code cache to 48 MB, which a session running the stream and then the batch filled
# ("Out of space in CodeCache", the JVM then dies); 256 MB is the tiered default's order of magnitude.
QUICK_JIT_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"


@contextmanager
def _process_output_to(log_file: Path | None) -> Iterator[None]:
    """While the JVM starts, point this process's stdout and stderr at `log_file`: the JVM (and the Python workers
    it forks later) inherit them for good, so their warnings, stage bars and stack traces go to the file, while this
    process gets its own terminal back afterwards."""
    if log_file is None:
        yield
        return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log_file.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def build_spark_session(settings: SparkSettings, app_name: str = "claims", extra_conf: dict[str, str] | None = None,
                        *, log_file: Path | None = None) -> SparkSession:
    """A Spark session with Delta, the Kafka source/sink and settings sized for the machine.

    `log_file`: where the JVM's own output goes (WARN lines, progress bars, the Python workers' stderr) instead of the
    terminal; it only takes effect when this call starts the JVM.
    """
    # Python workers run the rules: they must use this interpreter (the project's .venv), not whatever `python3` is on
    # PATH. On EMR the cluster configuration sets spark.pyspark.python to the bootstrapped interpreter instead.
    os.environ["PYSPARK_PYTHON"] = os.environ.get("PYSPARK_PYTHON") or sys.executable
    builder = SparkSession.builder.appName(app_name)
    if settings.master:
        builder = builder.master(settings.master)
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.driver.memory": settings.driver_memory,
        "spark.ui.enabled": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.streaming.stateStore.providerClass":
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.adaptive.enabled": "true",
        # Write partitioned Delta tables (bronze by ingest_date, silver by service_month) without sorting each task's
        # rows by the partition column first.
        "spark.sql.maxConcurrentOutputFileWriters": "16",
        "spark.driver.extraJavaOptions": "-Dlog4j2.level=WARN",
        "spark.ui.showConsoleProgress": "false",
    }
    if settings.master.startswith("local"):
        conf["spark.jars"] = ",".join(str(p) for p in connector_jars(settings.jars_dir))
        if settings.quick_jit:
            conf["spark.driver.extraJavaOptions"] += f" {QUICK_JIT_OPTIONS}"
        # Python workers forked from a daemon that has the claim checker loaded (libs/spark/worker_daemon.py).
        conf["spark.python.daemon.module"] = WORKER_DAEMON
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    with _process_output_to(log_file):
        spark = builder.getOrCreate()
    # Creating a SparkContext in the main thread replaces the SIGINT handler with PySpark's own (it cancels jobs and
    # raises a bare KeyboardInterrupt); put the CLI's back, so Ctrl-C stops every command the same way. A no-op where
    # the CLI did not install one (tests, the API, spark-submit on EMR).
    signals.reinstall()
    spark.sparkContext.setLogLevel("WARN")
    return spark
