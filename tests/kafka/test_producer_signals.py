"""SIGTERM while producing: the producer stops reading, flushes, and every claim it sent is in the topic."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from libs.kafka.admin import ensure_topics
from libs.kafka.topics import load_topics
from libs.settings import REPO_ROOT
from tests.kafka.helpers import message_count, write_topics_file

pytestmark = pytest.mark.kafka

# An endless claim source through the real app entry (apps.producer.main.run): only a signal can end it.
PRODUCER_SCRIPT = textwrap.dedent("""
    import itertools, sys, orjson
    from apps.producer.main import run
    from libs.settings import load_settings
    from tests.factories import make_professional_claim

    records = (make_professional_claim(claim_id=f"SIG{i:08d}") for i in itertools.count())
    report = run(load_settings(), records, rate=float(sys.argv[2]), show_progress=False)
    with open(sys.argv[1], "wb") as out:
        out.write(orjson.dumps(report.to_dict()))
""")


def test_sigterm_flushes_everything_sent(kafka_settings, tmp_path):
    topics_file = write_topics_file(tmp_path, partitions=3)
    ensure_topics(kafka_settings, topics_file)
    raw = load_topics(topics_file).raw
    report_file = tmp_path / "report.json"
    env = {**os.environ, "CLAIMS__KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
           "CLAIMS__KAFKA__TOPICS_FILE": str(topics_file)}
    process = subprocess.Popen([sys.executable, "-c", PRODUCER_SCRIPT, str(report_file), "3000"], cwd=REPO_ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while message_count(kafka_settings, raw) < 200:  # producing, with batches in flight
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the producer delivered nothing within 60 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()
    assert "stopped by SIGTERM" in stderr.decode()
    report = json.loads(report_file.read_text())
    assert report["interrupted"] is True
    assert report["failed"] == 0
    assert report["delivered"] == report["sent"] > 200
    assert message_count(kafka_settings, raw) == report["delivered"]
