"""Spark platform glue: session construction with Delta and the Kafka connector."""
