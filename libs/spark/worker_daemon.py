"""PySpark's Python worker daemon, with the stream's claim checker loaded before it forks any worker.

Why: Spark forks each Python worker from this daemon. The stock daemon (`pyspark.daemon`) starts bare, so every worker
imports pydantic, the claim model and the rules and loads the code sets itself (~2.5 s of CPU each, paid again by
every new worker). Loaded here once, they are inherited by every fork (copy-on-write), frozen out of the garbage
collector's sight (libs.streaming.check) so that no worker's collection walks them. Selected with
`spark.python.daemon.module` (libs.spark.session, local masters).
"""

from __future__ import annotations

from pyspark import daemon

from libs.streaming.check import preload_worker

if __name__ == "__main__":
    preload_worker()
    daemon.manager()
