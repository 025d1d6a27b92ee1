"""Envelope encryption: round trip, tamper detection, AAD binding, keyring safety, rotation, and KMS via moto."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from libs.phi.envelope import EnvelopeDecryptor, EnvelopeEncryptor, associated_data
from libs.phi.errors import DecryptionError, KeyMaterialError
from libs.phi.keys import KeyPurpose, Keyring, KmsKeyProvider, LocalKeyProvider, rotate
from libs.phi.protector import PhiProtector
from tests.factories import make_professional_claim
from tests.phi.conftest import phi_settings

AAD = associated_data("PCLM0001", "patient.last_name")


def _pair(tmp_path: Path) -> tuple[EnvelopeEncryptor, EnvelopeDecryptor, LocalKeyProvider]:
    provider = LocalKeyProvider(Keyring(tmp_path / "keys" / "keyring.json"))
    return EnvelopeEncryptor(provider, 100, 300.0), EnvelopeDecryptor(provider), provider


def _flip(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1:]


def test_encryption_round_trip_preserves_the_value(tmp_path: Path):
    encryptor, decryptor, _ = _pair(tmp_path)
    key = encryptor.key_for_record()
    ciphertext = key.encrypt("TESTPATIENT", AAD)
    assert ciphertext.startswith("enc:v1:1:")
    assert "TESTPATIENT" not in ciphertext
    assert decryptor.decrypt(key.envelope, ciphertext, AAD, "test") == "TESTPATIENT"


def test_tampered_ciphertext_fails_to_decrypt(tmp_path: Path):
    encryptor, decryptor, _ = _pair(tmp_path)
    key = encryptor.key_for_record()
    ciphertext = key.encrypt("TESTPATIENT", AAD)
    with pytest.raises(DecryptionError, match="does not authenticate"):
        decryptor.decrypt(key.envelope, _flip(ciphertext, len(ciphertext) - 6), AAD, "test")


def test_ciphertext_moved_to_another_field_or_claim_fails(tmp_path: Path):
    encryptor, decryptor, _ = _pair(tmp_path)
    key = encryptor.key_for_record()
    ciphertext = key.encrypt("TESTPATIENT", AAD)
    with pytest.raises(DecryptionError):
        decryptor.decrypt(key.envelope, ciphertext, associated_data("PCLM0001", "patient.first_name"), "test")
    with pytest.raises(DecryptionError):
        decryptor.decrypt(key.envelope, ciphertext, associated_data("PCLM0002", "patient.last_name"), "test")


def test_tampered_wrapped_data_key_is_detected(tmp_path: Path):
    encryptor, decryptor, _ = _pair(tmp_path)
    key = encryptor.key_for_record()
    ciphertext = key.encrypt("TESTPATIENT", AAD)
    envelope = dict(key.envelope, wrapped_dek=_flip(key.envelope["wrapped_dek"], 20))
    with pytest.raises(DecryptionError):
        decryptor.decrypt(envelope, ciphertext, AAD, "test")


def test_data_key_is_shared_by_a_batch_and_replaced_after_the_record_limit(tmp_path: Path):
    provider = LocalKeyProvider(Keyring(tmp_path / "keyring.json"))
    encryptor = EnvelopeEncryptor(provider, records_per_data_key=3, max_age_seconds=300.0)
    ids = [encryptor.key_for_record().dek_id for _ in range(7)]
    assert ids[0] == ids[1] == ids[2]
    assert ids[3] == ids[4] == ids[5] != ids[0]
    assert ids[6] != ids[3]


def test_data_key_is_replaced_when_it_is_too_old(tmp_path: Path):
    now = [0.0]
    provider = LocalKeyProvider(Keyring(tmp_path / "keyring.json"))
    encryptor = EnvelopeEncryptor(provider, records_per_data_key=1000, max_age_seconds=60.0, clock=lambda: now[0])
    first = encryptor.key_for_record().dek_id
    now[0] = 61.0
    assert encryptor.key_for_record().dek_id != first


def test_keyring_is_created_on_first_use_owner_only(tmp_path: Path):
    keyring = Keyring(tmp_path / "keys" / "keyring.json")
    assert keyring.active_version(KeyPurpose.ENCRYPTION) == 1
    assert stat.S_IMODE(keyring.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyring.path.parent.stat().st_mode) == 0o700


def test_keyring_readable_by_others_is_refused(tmp_path: Path):
    keyring = Keyring(tmp_path / "keyring.json")
    keyring.active_version(KeyPurpose.ENCRYPTION)
    os.chmod(keyring.path, 0o644)
    with pytest.raises(KeyMaterialError, match="expected 0600"):
        Keyring(keyring.path).active_version(KeyPurpose.ENCRYPTION)


def test_rotation_makes_a_new_version_active_and_keeps_old_data_readable(tmp_path: Path):
    settings = phi_settings(tmp_path)
    protector = PhiProtector.from_settings(settings)
    old_record = protector.protect(make_professional_claim())
    assert old_record["phi_envelope"]["kek_version"] == "1"

    assert "version 2 is now active" in rotate(settings, KeyPurpose.ENCRYPTION)
    rotated = PhiProtector.from_settings(settings)
    new_record = rotated.protect(make_professional_claim())
    assert new_record["phi_envelope"]["kek_version"] == "2"

    fields = ["patient.last_name", "patient.birth_date"]
    expected = {"patient.last_name": "TESTPATIENT", "patient.birth_date": "1958-03-14"}
    assert rotated.reveal(old_record, fields, "alice", "privacy-officer", "rotation test") == expected
    assert rotated.reveal(new_record, fields, "alice", "privacy-officer", "rotation test") == expected


def test_record_from_another_keyring_is_reported_as_such(tmp_path: Path):
    record = PhiProtector.from_settings(phi_settings(tmp_path / "a")).protect(make_professional_claim())
    other = PhiProtector.from_settings(phi_settings(tmp_path / "b"))
    with pytest.raises(KeyMaterialError, match="configured keyring is"):
        other.reveal(record, ["patient.last_name"], "alice", "privacy-officer", "wrong keyring")


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("aws_credentials")
def test_kms_provider_wraps_data_keys_in_kms_and_reveal_round_trips(tmp_path: Path):
    with mock_aws():
        key_id = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
        settings = phi_settings(tmp_path, key_provider="kms", kms_key_id=key_id)
        protector = PhiProtector.from_settings(settings)
        assert isinstance(protector.encryptor.provider, KmsKeyProvider)
        record = protector.protect(make_professional_claim())
        assert record["phi_envelope"]["provider"] == "kms"
        assert record["phi_envelope"]["kek_id"] == key_id

        message = rotate(settings, KeyPurpose.ENCRYPTION)
        assert "rotation" in message
        fresh = PhiProtector.from_settings(settings)  # new process: must unwrap through KMS again
        assert fresh.reveal(record, ["patient.last_name"], "alice", "privacy-officer", "kms test") == {
            "patient.last_name": "TESTPATIENT"}


@pytest.mark.usefixtures("aws_credentials")
def test_kms_refuses_a_data_key_wrapped_under_another_key(tmp_path: Path):
    with mock_aws():
        kms = boto3.client("kms", region_name="us-east-1")
        first, second = (kms.create_key()["KeyMetadata"]["Arn"] for _ in range(2))
        record = PhiProtector.from_settings(phi_settings(tmp_path, key_provider="kms", kms_key_id=first)).protect(
            make_professional_claim())
        record["phi_envelope"]["kek_id"] = second
        other = PhiProtector.from_settings(phi_settings(tmp_path, key_provider="kms", kms_key_id=second))
        with pytest.raises((DecryptionError, KeyMaterialError), match="KMS decrypt"):
            other.reveal(record, ["patient.last_name"], "alice", "privacy-officer", "kms test")


def test_kms_provider_requires_a_key_id(tmp_path: Path):
    with pytest.raises(KeyMaterialError, match="kms_key_id is not set"):
        PhiProtector.from_settings(phi_settings(tmp_path, key_provider="kms"))


def test_production_refuses_the_local_key_provider(tmp_path: Path):
    with pytest.raises(KeyMaterialError, match="production must use 'kms'"):
        PhiProtector.from_settings(phi_settings(tmp_path, environment="prod"))


def test_outside_local_a_missing_tokenization_key_is_an_error_not_a_fresh_keyring(tmp_path: Path):
    with pytest.raises(KeyMaterialError, match="no tokenization key"):
        PhiProtector.from_settings(phi_settings(tmp_path, environment="dev"))
    assert not (tmp_path / "keys" / "keyring.json").exists()
    assert PhiProtector.from_settings(phi_settings(tmp_path, environment="dev", tokenization_secret="s3cret"))
