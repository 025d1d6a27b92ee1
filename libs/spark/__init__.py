"""Spark platform glue: session construction with Delta and the Kafka connector."""

# The Python worker daemon module of local sessions (libs/spark/worker_daemon.py); a constant here because the bench's
# CPU accounting recognises its processes without importing PySpark.
WORKER_DAEMON = "libs.spark.worker_daemon"
