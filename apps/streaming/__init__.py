"""The Spark Structured Streaming job (`claims stream`; spark-submit entry point on EMR)."""
