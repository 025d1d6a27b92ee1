"""The idempotency store: a key belongs to one body, one running request, and remembers what was settled."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from libs.ingest.idempotency import (
    STALE_RUNNING_SECONDS,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    IdempotencyStore,
    fingerprint,
    valid_key,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(tmp_path / "api" / "idem.sqlite3", ttl_seconds=3600, clock=clock)


BODY = fingerprint("application/json", b'{"claim_id": "A"}')


def test_the_store_file_is_private(store: IdempotencyStore):
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_new_key_starts_empty_and_a_finished_one_resumes_with_what_it_settled(store: IdempotencyStore):
    state = store.begin("alice", "k1", BODY)
    assert (state.settled, state.complete) == ({}, False)
    state.settled[1] = {"status": "accepted", "index": 1, "claim_id": "A", "partition": 0, "offset": 7}
    state.records = 2
    store.finish("alice", "k1", state)

    again = store.begin("alice", "k1", BODY)
    assert again.settled == {1: {"status": "accepted", "index": 1, "claim_id": "A", "partition": 0, "offset": 7}}
    assert again.records == 2
    assert not again.complete


def test_a_key_is_refused_while_its_request_runs_and_again_usable_after(store: IdempotencyStore, clock: Clock):
    state = store.begin("alice", "k1", BODY)
    with pytest.raises(IdempotencyKeyInUseError, match="still being processed"):
        store.begin("alice", "k1", BODY)
    store.finish("alice", "k1", state)
    store.begin("alice", "k1", BODY)
    # A request that never finished (its process died) does not hold the key forever.
    clock.now += STALE_RUNNING_SECONDS + 1
    store.begin("alice", "k1", BODY)


def test_a_key_reused_for_another_body_is_refused(store: IdempotencyStore):
    store.finish("alice", "k1", store.begin("alice", "k1", BODY))
    other = fingerprint("application/json", b'{"claim_id": "B"}')
    with pytest.raises(IdempotencyKeyReusedError, match="different one"):
        store.begin("alice", "k1", other)
    # The media type is part of the body's identity.
    with pytest.raises(IdempotencyKeyReusedError):
        store.begin("alice", "k1", fingerprint("application/x-ndjson", b'{"claim_id": "A"}'))


def test_keys_are_scoped_per_client_and_expire(store: IdempotencyStore, clock: Clock):
    state = store.begin("alice", "k1", BODY)
    state.complete = True
    store.finish("alice", "k1", state)
    assert store.begin("bob", "k1", BODY).complete is False  # bob's k1 is not alice's
    assert store.begin("alice", "k1", BODY).complete is True
    clock.now += 3601
    assert store.begin("alice", "k1", BODY).complete is False  # forgotten after the TTL


@pytest.mark.parametrize(("key", "ok"), [("retry-42", True), ("a" * 255, True), ("", False), ("a" * 256, False),
                                         ("naïve", False), ("tab\there", False)])
def test_key_format(key, ok):
    assert valid_key(key) is ok
