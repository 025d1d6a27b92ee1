"""Build the Spark session every Spark app and test uses: Delta Lake and the Kafka connector from local jars.

Why local jars instead of `spark.jars.packages`: runs must be offline after the first bootstrap, and the jars are
resolved once by Maven into `.cache/jars/spark` (see scripts/fetch_jars.sh), so a Spark start never touches the network.
On EMR the same jars are shipped with the job instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from libs.settings import SparkSettings


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


def build_spark_session(settings: SparkSettings, app_name: str = "claims", extra_conf: dict[str, str] | None = None
                        ) -> SparkSession:
    """A Spark session with Delta, the Kafka source/sink and settings sized for the machine."""
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
    }
    if settings.master.startswith("local"):
        conf["spark.jars"] = ",".join(str(p) for p in connector_jars(settings.jars_dir))
    conf.update(extra_conf or {})
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
