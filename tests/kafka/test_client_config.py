"""KafkaSettings -> librdkafka configuration, for loopback PLAINTEXT and for MSK (SASL_SSL + IAM OAUTHBEARER)."""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.credentials import Credentials

from libs.kafka.client_config import (
    LIBRDKAFKA_LOGGER,
    MSK_IAM_TOKEN_LIFETIME_SECONDS,
    KafkaConfigError,
    client_config,
    msk_iam_auth_token,
)
from libs.settings import KafkaSecurityProtocol, KafkaSettings


def test_local_settings_give_a_plaintext_client():
    config = client_config(KafkaSettings(bootstrap_servers="127.0.0.1:1234"))
    assert config == {"bootstrap.servers": "127.0.0.1:1234", "client.id": "claims-pipeline",
                      "security.protocol": "PLAINTEXT", "logger": LIBRDKAFKA_LOGGER}
    # librdkafka speaks through Python logging (the process decides where its lines go), not straight to stderr.
    assert LIBRDKAFKA_LOGGER.name == "claims.librdkafka"


def test_overrides_use_underscores_for_dots_and_win():
    config = client_config(KafkaSettings(), linger_ms=5, **{"client.id": "other"})
    assert config["linger.ms"] == 5
    assert config["client.id"] == "other"


def test_msk_iam_settings_install_an_oauth_callback():
    settings = KafkaSettings(bootstrap_servers="b-1.msk:9098", security_protocol=KafkaSecurityProtocol.SASL_SSL,
                             sasl_mechanism="OAUTHBEARER", aws_region="us-east-1")
    config = client_config(settings)
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "OAUTHBEARER"
    assert callable(config["oauth_cb"])


def test_sasl_ssl_without_mechanism_is_rejected():
    settings = KafkaSettings(security_protocol=KafkaSecurityProtocol.SASL_SSL)
    with pytest.raises(KafkaConfigError, match="expects a sasl_mechanism"):
        client_config(settings)


def test_oauthbearer_without_region_is_rejected():
    settings = KafkaSettings(security_protocol=KafkaSecurityProtocol.SASL_SSL, sasl_mechanism="OAUTHBEARER")
    with pytest.raises(KafkaConfigError, match="expects aws_region"):
        client_config(settings)


def test_msk_iam_token_is_a_presigned_kafka_cluster_connect_url():
    before = time.time()
    token, expiry = msk_iam_auth_token("eu-west-1", Credentials("AKIDSYNTHETIC", "synthetic-secret"))
    assert "=" not in token  # base64url without padding
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.netloc == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIDSYNTHETIC/")
    assert query["X-Amz-Credential"][0].endswith("/eu-west-1/kafka-cluster/aws4_request")
    assert query["X-Amz-Expires"] == [str(MSK_IAM_TOKEN_LIFETIME_SECONDS)]
    assert len(query["X-Amz-Signature"][0]) == 64
    assert "User-Agent" in query
    assert before + MSK_IAM_TOKEN_LIFETIME_SECONDS <= expiry <= time.time() + MSK_IAM_TOKEN_LIFETIME_SECONDS
