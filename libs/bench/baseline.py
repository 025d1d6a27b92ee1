"""The hand-written baseline: ONE plain confluent-kafka consumer process that validates with the Python rules.

Why this baseline: it is what one would write without Spark - read the raw topic from the beginning, parse each
message, validate it with `libs.validation.validate_claim` - so the streaming query's throughput is compared with the
simplest correct alternative on the same machine, the same topic and the same claims. It runs as a subprocess so that
its CPU time, GIL and memory are its own (like a real consumer process), not shared with the bench driver.

It parses each message exactly as the stream's checker does (libs.phi.view.ProtectedClaim, strict) and judges it on
the record's own `phi_derived` facts, so both give every claim the same verdict. It writes nothing: the stream also
stores bronze, quarantine, the event ledger and silver and publishes five topics, which the ratio does not discount.
No plaintext PHI is ever read or printed.

    python -m libs.bench.baseline --bootstrap 127.0.0.1:9092 --topic medical-claims-raw --as-of 2026-10-31

prints one JSON object: messages, valid, invalid, unparseable, setup_seconds, seconds (first poll to last validated).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date

import orjson

POLL_BATCH = 1000
POLL_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class BaselineResult:
    """What the baseline consumer did; `seconds` is its measured time (setup excluded)."""

    messages: int
    valid: int
    invalid: int
    unparseable: int
    setup_seconds: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def consume_and_validate(bootstrap: str, topic: str, as_of: date, timeout: float = 600.0) -> BaselineResult:
    """Read `topic` from the beginning up to its current end and validate every message; the timed part.

    The end is the high watermark of every partition when the consumer starts (the producer has finished by then),
    so the consumer knows when it is done without being told a count.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415

    from libs.codesets import load_codesets  # noqa: PLC0415
    from libs.phi.view import ProtectedClaim  # noqa: PLC0415
    from libs.validation import validate_claim  # noqa: PLC0415

    setup_started = time.perf_counter()
    codesets = load_codesets()
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-baseline-{uuid.uuid4().hex[:12]}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        remaining: dict[int, int] = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            if high > low:
                remaining[partition] = high
        expected = sum(remaining.values())  # an upper bound when retention removed the head; exact for the bench
        setup_seconds = time.perf_counter() - setup_started

        started = time.perf_counter()
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
        messages = valid = invalid = unparseable = 0
        deadline = started + timeout
        while remaining:
            if time.perf_counter() > deadline:
                msg = (f"baseline consumer: expected to reach the end of {topic} ({expected} messages) within "
                       f"{timeout:.0f} s, found {messages} read")
                raise TimeoutError(msg)
            for message in consumer.consume(num_messages=POLL_BATCH, timeout=POLL_TIMEOUT_SECONDS):
                if message.error() is not None:
                    continue  # partition EOF notices and transient errors: librdkafka retries by itself
                messages += 1
                try:
                    claim = ProtectedClaim.from_json(message.value() or b"")
                except ValidationError:
                    unparseable += 1
                else:
                    if validate_claim(claim, as_of, codesets, claim.derived()).is_valid:
                        valid += 1
                    else:
                        invalid += 1
                partition, offset = message.partition(), message.offset()
                if partition in remaining and offset is not None and offset + 1 >= remaining[partition]:
                    del remaining[partition]
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    return BaselineResult(messages, valid, invalid, unparseable, round(setup_seconds, 3), seconds)


def run_baseline(bootstrap: str, topic: str, as_of: date, timeout: float = 900.0) -> tuple[BaselineResult, float]:
    """Run the baseline in a fresh Python process; returns its result and the process's wall time (with imports)."""
    command = [sys.executable, "-m", "libs.bench.baseline", "--bootstrap", bootstrap, "--topic", topic,
               "--as-of", as_of.isoformat()]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, timeout=timeout, check=False)  # noqa: S603  (fixed argv)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        tail = completed.stderr.decode("utf-8", errors="replace").strip().splitlines()[-5:]
        msg = f"baseline consumer exited with code {completed.returncode}: {' | '.join(tail)}"
        raise RuntimeError(msg)
    try:
        data = orjson.loads(completed.stdout.strip().splitlines()[-1])
        return BaselineResult(**data), wall
    except (IndexError, ValueError, TypeError) as exc:
        msg = f"baseline consumer: expected one JSON result line on stdout, found {completed.stdout[-200:]!r}"
        raise RuntimeError(msg) from exc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--as-of", required=True, type=date.fromisoformat)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    result = consume_and_validate(args.bootstrap, args.topic, args.as_of, args.timeout)
    sys.stdout.write(orjson.dumps(asdict(result)).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
