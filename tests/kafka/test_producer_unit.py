"""Producer building blocks that need no broker: the message hook, the rate limiter, guarded settings."""

from __future__ import annotations

import orjson
import pytest

from libs.kafka.producer import ClaimProducer, TokenBucket
from libs.kafka.serialize import claim_key, claim_to_message
from libs.settings import KafkaSettings
from tests.factories import make_professional_claim


def test_message_without_protector_is_the_canonical_claim_json():
    claim = make_professional_claim()
    assert orjson.loads(claim_to_message(claim, None)) == claim.model_dump(mode="json")


def test_message_uses_the_protector_output_when_given():
    claim = make_professional_claim()
    calls = []

    def protect(c):
        calls.append(c.claim_id)
        return {"claim_id": c.claim_id, "patient": {"member_id": "tok_abc"}}

    payload = orjson.loads(claim_to_message(claim, protect))
    assert calls == [claim.claim_id]
    assert payload == {"claim_id": claim.claim_id, "patient": {"member_id": "tok_abc"}}
    assert b"SYN000123456" not in claim_to_message(claim, protect)


def test_key_is_the_claim_id():
    assert claim_key(make_professional_claim(claim_id="ABC-1")) == b"ABC-1"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_token_bucket_holds_the_rate_after_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=100.0, burst=10.0, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        assert bucket.acquire() == 0.0  # the burst is free
    for _ in range(100):
        bucket.acquire()
    assert clock.now == pytest.approx(1.0, rel=1e-6)  # 100 more claims at 100/s take one second


def test_token_bucket_rejects_a_non_positive_rate():
    with pytest.raises(ValueError, match="expected claims per second > 0"):
        TokenBucket(rate=0)


def test_delivery_guarantees_cannot_be_overridden():
    with pytest.raises(ValueError, match=r"enable\.idempotence must stay True"):
        ClaimProducer(KafkaSettings(), "t", config_overrides={"enable.idempotence": False})
