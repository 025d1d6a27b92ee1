"""Thin entry points (CLI, producer, streaming, batch, API) over `libs`."""
