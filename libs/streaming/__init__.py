"""Spark Structured Streaming: schema, validation expressions, enrichment, routing and lake sinks."""
