"""One router per concern: claims ingestion, batch runs, re-identification, health and metrics."""
