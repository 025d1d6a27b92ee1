"""boto3 clients for the deploy, pointed at the endpoint in settings (a moto server in tests, AWS otherwise).

Why one place: every client must take its region and `endpoint_url` from libs.settings.AwsSettings, and retry
throttling the same way; scattering `boto3.client(...)` calls would let one of them talk to real AWS in a test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from libs.settings import AwsSettings

if TYPE_CHECKING:
    from mypy_boto3_emr import EMRClient
    from mypy_boto3_redshift_data import RedshiftDataAPIServiceClient
    from mypy_boto3_s3 import S3Client

# Standard retry mode backs off on throttling and transient 5xx errors of the control-plane APIs.
_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=10, read_timeout=60)


def s3_client(aws: AwsSettings) -> S3Client:
    """S3 client for the artifact bucket."""
    return boto3.client("s3", region_name=aws.region, endpoint_url=aws.endpoint_url, config=_CLIENT_CONFIG)


def emr_client(aws: AwsSettings) -> EMRClient:
    """EMR client for job steps."""
    return boto3.client("emr", region_name=aws.region, endpoint_url=aws.endpoint_url, config=_CLIENT_CONFIG)


def redshift_data_client(aws: AwsSettings) -> RedshiftDataAPIServiceClient:
    """Redshift Data API client for DDL."""
    return boto3.client("redshift-data", region_name=aws.region, endpoint_url=aws.endpoint_url, config=_CLIENT_CONFIG)
