"""The claims producer app (entry point: apps/producer/main.py; `claims produce`)."""
