"""`claims bench`: throughput and latency of every pipeline stage, with ratios against baselines from the same run.

Why baselines measured in the same run: on a shared 2-core machine absolute figures move by tens of percent from one
run to the next (other processes, CPU frequency, page cache). A ratio against a reference measured minutes earlier on
the same claims and the same machine (the raw orjson parse rate, and a hand-written single-process consumer that
validates with the Python rules) is what can be compared across runs and machines.

Modules: `results` (stage figures, ratios, percentiles, the table and JSON), `baseline` (the hand-written consumer,
run as a subprocess), `streaming` (the Spark query drained and at a steady rate, listener progress, Spark stage
timings) and `runner` (the whole bench, in order).
"""
