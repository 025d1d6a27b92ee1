"""The daily batch job: silver Delta -> warehouse tables, daily aggregates, and the fraud screens that need history.

Why a batch next to the stream: the streaming query decides each claim on its own (validation, per-claim fraud
screens); comparing claims with each other (exact duplicates, impossible days, upcoding, unbundling) and loading the
warehouse are day-sized jobs that are cheaper, simpler and re-runnable as a batch over the silver table.
"""
