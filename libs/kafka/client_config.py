"""Translate `KafkaSettings` into confluent-kafka (librdkafka) configuration dictionaries.

Why one function: the producer, the admin client, the tests' consumers and the CLI must connect the same way to a
loopback broker (PLAINTEXT) and to Amazon MSK (SASL_SSL + OAUTHBEARER with an IAM-signed token, TLS mandatory). The
Spark Kafka source uses the Java client and gets its options from the streaming app, not from here.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from libs.settings import KafkaSecurityProtocol, KafkaSettings

LIBRDKAFKA_LOGGER = logging.getLogger("claims.librdkafka")
OAUTHBEARER = "OAUTHBEARER"
MSK_IAM_TOKEN_LIFETIME_SECONDS = 900  # what the AWS MSK IAM signer uses; librdkafka refreshes at ~80 % of it
MSK_IAM_USER_AGENT = "medical-claims-pipeline/msk-iam"


class KafkaConfigError(ValueError):
    """The Kafka settings cannot produce a working client configuration."""


def client_config(settings: KafkaSettings, **overrides: Any) -> dict[str, Any]:
    """Common client configuration for producers, consumers and admin clients.

    `overrides` are librdkafka properties with dots replaced by underscores (`enable_idempotence=True`) or passed
    through a dict splat (`**{"enable.idempotence": True}`); they win over the derived values.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": settings.client_id,
        "security.protocol": settings.security_protocol.value,
        # librdkafka's own log lines (retries, reconnects) go through Python logging, so the process's logging set-up
        # decides where they land (a log file for `make run`), instead of librdkafka printing to stderr.
        "logger": LIBRDKAFKA_LOGGER,
    }
    mechanism = (settings.sasl_mechanism or "").upper() or None
    if mechanism is not None:
        if settings.security_protocol is not KafkaSecurityProtocol.SASL_SSL:
            msg = (f"kafka settings: sasl_mechanism {mechanism} expects security_protocol SASL_SSL, "
                   f"found {settings.security_protocol.value}")
            raise KafkaConfigError(msg)
        config["sasl.mechanism"] = mechanism
        if mechanism == OAUTHBEARER:
            if not settings.aws_region:
                msg = "kafka settings: OAUTHBEARER (MSK IAM) expects aws_region for token signing, found none"
                raise KafkaConfigError(msg)
            config["oauth_cb"] = msk_iam_oauth_cb(settings.aws_region)
    elif settings.security_protocol is KafkaSecurityProtocol.SASL_SSL:
        msg = ("kafka settings: security_protocol SASL_SSL expects a sasl_mechanism (OAUTHBEARER for MSK IAM), "
               "found none")
        raise KafkaConfigError(msg)
    for key, value in overrides.items():
        config[key.replace("_", ".")] = value
    return config


def msk_iam_auth_token(region: str, credentials: Any | None = None) -> tuple[str, float]:
    """An MSK IAM authentication token and its expiry (epoch seconds).

    The token is what the AWS MSK IAM SASL signer produces: a SigV4 *presigned* URL for
    `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect` (service name `kafka-cluster`), with a
    User-Agent query parameter, base64url-encoded without padding. The broker verifies the signature against IAM, so
    the client's role needs `kafka-cluster:Connect` (and topic/group actions) on the cluster.
    """
    from botocore.auth import SigV4QueryAuth  # noqa: PLC0415  (botocore is only needed when MSK IAM is used)
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415

    if credentials is None:
        import boto3  # noqa: PLC0415

        credentials = boto3.Session(region_name=region).get_credentials()
        if credentials is None:
            msg = f"MSK IAM token for region {region}: expected AWS credentials (role, profile or env), found none"
            raise KafkaConfigError(msg)
    request = AWSRequest(method="GET", url=f"https://kafka.{region}.amazonaws.com/",
                         params={"Action": "kafka-cluster:Connect"})
    issued = time.time()
    signer = SigV4QueryAuth(credentials, "kafka-cluster", region, expires=MSK_IAM_TOKEN_LIFETIME_SECONDS)
    signer.add_auth(request)
    parts = urlsplit(str(request.url))
    query = parse_qs(parts.query)
    query["User-Agent"] = [MSK_IAM_USER_AGENT]
    signed_url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, doseq=True), ""))
    token = base64.urlsafe_b64encode(signed_url.encode()).decode().rstrip("=")
    return token, issued + MSK_IAM_TOKEN_LIFETIME_SECONDS


def msk_iam_oauth_cb(region: str) -> Callable[[str | None], tuple[str, float]]:
    """The confluent-kafka `oauth_cb`: librdkafka calls it (with sasl.oauthbearer.config) whenever a token is due."""

    def oauth_cb(_oauthbearer_config: str | None) -> tuple[str, float]:
        return msk_iam_auth_token(region)

    return oauth_cb


def spark_kafka_options(kafka: KafkaSettings) -> dict[str, str]:
    """Spark's Kafka source and sink options (`kafka.`-prefixed client properties): the stream, the batch, the bench.

    On MSK the brokers require TLS and IAM authentication; the aws-msk-iam-auth jar on EMR provides the SASL classes.
    """
    options = {"kafka.bootstrap.servers": kafka.bootstrap_servers}
    if kafka.security_protocol is not KafkaSecurityProtocol.PLAINTEXT:
        options["kafka.security.protocol"] = kafka.security_protocol.value
    if kafka.security_protocol is KafkaSecurityProtocol.SASL_SSL:
        options.update(
            {
                "kafka.sasl.mechanism": "AWS_MSK_IAM",
                "kafka.sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
                "kafka.sasl.client.callback.handler.class":
                    "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
            }
        )
    return options
