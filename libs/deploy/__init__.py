"""Shipping the apps to a stack: artifacts to S3, app config, warehouse DDL, Kafka topics and EMR steps.

The infrastructure itself (clusters, buckets, roles) is Pulumi's job in infra/; this package deploys what runs on it,
idempotently: every step compares the desired state with what is there and changes only the difference.
"""
