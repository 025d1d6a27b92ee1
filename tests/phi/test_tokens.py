"""Deterministic keyed tokenization: stable per key, different across keys, kinds and key versions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from libs.phi.errors import KeyMaterialError
from libs.phi.keys import KeyPurpose, Keyring, KeyringTokenKeys, StaticTokenKeys
from libs.phi.tokens import Tokenizer, is_token

TOKEN_RE = re.compile(r"^tok:v1:(\d+):[0-9a-f]{40}$")


def test_tokens_are_equal_across_runs_with_the_same_key():
    first = Tokenizer(StaticTokenKeys.parse("test-secret-1")).token("member_id", "SYN000123456")
    second = Tokenizer(StaticTokenKeys.parse("test-secret-1")).token("member_id", "SYN000123456")
    assert first == second
    assert TOKEN_RE.match(first)
    assert is_token(first)


def test_tokens_differ_with_another_key():
    one = Tokenizer(StaticTokenKeys.parse("test-secret-1")).token("member_id", "SYN000123456")
    other = Tokenizer(StaticTokenKeys.parse("test-secret-2")).token("member_id", "SYN000123456")
    assert one != other


def test_equal_values_of_different_phi_kinds_get_unrelated_tokens():
    tokenizer = Tokenizer(StaticTokenKeys.parse("test-secret-1"))
    member = tokenizer.token("member_id", "12345")
    record = tokenizer.token("medical_record_number", "12345")
    assert member.rsplit(":", 1)[1] != record.rsplit(":", 1)[1]


def test_tokens_ignore_case_and_surrounding_spaces_of_the_source_format():
    tokenizer = Tokenizer(StaticTokenKeys.parse("test-secret-1"))
    assert tokenizer.token("member_id", " syn000123456 ") == tokenizer.token("member_id", "SYN000123456")


def test_token_carries_the_key_version_and_changes_after_rotation_while_old_version_stays_computable(tmp_path: Path):
    keyring = Keyring(tmp_path / "keyring.json")
    before = Tokenizer(KeyringTokenKeys(keyring)).token("member_id", "SYN000123456")
    assert TOKEN_RE.match(before).group(1) == "1"  # type: ignore[union-attr]

    assert keyring.rotate(KeyPurpose.TOKENIZATION) == 2
    after_tokenizer = Tokenizer(KeyringTokenKeys(keyring))
    after = after_tokenizer.token("member_id", "SYN000123456")
    assert TOKEN_RE.match(after).group(1) == "2"  # type: ignore[union-attr]
    assert after != before
    # Look-ups across the rotation: the old version's token is still computable.
    assert before in after_tokenizer.tokens_all_versions("member_id", "SYN000123456", keyring.versions(
        KeyPurpose.TOKENIZATION))


def test_versioned_tokenization_secret_uses_the_first_listed_version_and_keeps_the_others():
    keys = StaticTokenKeys.parse("3:new-secret,2:old-secret")
    tokenizer = Tokenizer(keys)
    assert tokenizer.token("member_id", "X1").startswith("tok:v1:3:")
    assert tokenizer.token("member_id", "X1", version=2) == Tokenizer(StaticTokenKeys.parse("2:old-secret")).token(
        "member_id", "X1")


@pytest.mark.parametrize("secret", ["", "x:abc", "2:"])
def test_malformed_tokenization_secret_is_rejected_without_echoing_it(secret: str):
    with pytest.raises(KeyMaterialError) as caught:
        StaticTokenKeys.parse(secret)
    assert "abc" not in str(caught.value)
