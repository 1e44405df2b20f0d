"""boto3 clients, built lazily with retries suited to throttled AWS APIs."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:  # the stubs are a dev dependency: the Lambda and EMR runtimes lack them
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_s3 import S3Client

# Adaptive mode adds client-side rate limiting on top of standard exponential backoff with
# jitter: the right mode for Rekognition's per-account TPS limit.
RETRY_CONFIG = Config(retries={"max_attempts": 8, "mode": "adaptive"})


@cache
def s3_client() -> S3Client:
    return boto3.client("s3", config=RETRY_CONFIG)


@cache
def rekognition_client() -> RekognitionClient:
    return boto3.client("rekognition", config=RETRY_CONFIG)
