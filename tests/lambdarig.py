"""The moto rig that drives the ingest Lambda's handler, shared by the Lambda test modules.

moto's S3 puts the event JSON that S3 would send onto an SQS queue; :meth:`Rig.receive` takes
those messages and :func:`invoke` hands them to the handler as the Lambda's SQS event source
would (moto runs Lambda functions only in Docker). The ``rig`` fixture (tests/conftest.py)
yields :func:`moto_rig`, which is also the rig for code that runs outside pytest (a subprocess).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from imgpipe import aws_clients
from imgpipe.cloud_ingest import CloudIngester
from imgpipe.config import PipelineConfig
from imgpipe.label_cache import LabelCache
from imgpipe.labelers import LabelerOptions
from imgpipe.labelers.rekognition import RekognitionLabeler
from lambda_src import ingest_handler

__all__ = [
    "BUCKET",
    "FAKE_AWS_ENVIRONMENT",
    "HANDLER_ENVIRONMENT",
    "LABELS",
    "TABLE",
    "Counting",
    "LambdaContext",
    "Rig",
    "S3WithCrc64",
    "invoke",
    "moto_rekognition",
    "moto_rig",
    "sqs_event",
    "stubbed_rekognition",
    "use",
]

BUCKET = "imgpipe-test-bucket"
TABLE = "imgpipe-label-cache"
LABELS = {
    "Labels": [{"Name": "Cat", "Confidence": 97.0, "Parents": [{"Name": "Animal"}]}],
    "LabelModelVersion": "3.0",
}


@dataclass
class LambdaContext:
    function_name: str = "imgpipe-ingest"
    memory_limit_in_mb: int = 1536
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-ingest"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"


class Counting:
    """Delegates to a boto3 client and records the calls named in ``watched``."""

    def __init__(self, client: Any, *watched: str) -> None:
        self._client = client
        self.calls: dict[str, list[dict[str, Any]]] = {name: [] for name in watched}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in self.calls:
            return attr

        def call(**kwargs: Any) -> Any:
            self.calls[name].append(kwargs)
            return attr(**kwargs)

        return call


class S3WithCrc64(Counting):
    """moto's S3, reporting a full-object CRC64NVME as real S3 does for uploads without one."""

    def head_object(self, **kwargs: Any) -> Any:
        response = self._client.head_object(**kwargs)
        body = self._client.get_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"])["Body"].read()
        # A stand-in value derived from the content: equal bytes, equal checksum.
        fake = base64.b64encode(hashlib.sha256(body).digest()[:8]).decode()
        return {**response, "ChecksumCRC64NVME": fake, "ChecksumType": "FULL_OBJECT"}


@dataclass
class Rig:
    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str
    dynamodb: Any

    def put(self, key: str, body: bytes, **extra: Any) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)

    def receive(self, queue_url: str | None = None) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=queue_url or self.queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [m for m in response.get("Messages", []) if "s3:TestEvent" not in m["Body"]]

    def record(self, key: str) -> dict[str, Any]:
        return json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def keys(self, prefix: str = "") -> list[str]:
        response = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(obj["Key"] for obj in response.get("Contents", []))


def create_queues(sqs: Any) -> tuple[str, str, str]:
    """The ingest queue with its dead-letter queue (one receive, then the DLQ).

    Returns:
        The queue's URL, the dead-letter queue's URL and the queue's ARN.
    """
    dlq_url = sqs.create_queue(QueueName="imgpipe-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 1}
    queue_url = sqs.create_queue(
        QueueName="imgpipe-ingest", Attributes={"RedrivePolicy": json.dumps(redrive)}
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return queue_url, dlq_url, queue_arn["Attributes"]["QueueArn"]


def sqs_event(
    messages: list[dict[str, Any]],
    queue_arn: str = "arn:aws:sqs:us-east-1:123456789012:imgpipe-ingest",
) -> dict[str, Any]:
    """The event Lambda's SQS event source delivers for these received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
            for m in messages
        ]
    }


def invoke(messages: list[dict[str, Any]]) -> list[str]:
    """Run the handler; the message ids it reports failed."""
    response = ingest_handler.lambda_handler(sqs_event(messages), LambdaContext())
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


# Fake credentials and a region (the aws_credentials fixture's), for code outside pytest.
FAKE_AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
# What the stack gives the function, less what a test wires itself.
HANDLER_ENVIRONMENT = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "IMGPIPE_BUCKET": BUCKET,
    "IMGPIPE_LABEL_CACHE_TABLE": TABLE,
}


@contextmanager
def moto_rig() -> Iterator[Rig]:
    """moto's bucket notifying a queue (with a DLQ) and the label cache table.

    The handler's environment (:data:`HANDLER_ENVIRONMENT`) and fake credentials
    (:data:`FAKE_AWS_ENVIRONMENT`) must be set.
    """
    with mock_aws():
        s3, sqs, dynamodb = boto3.client("s3"), boto3.client("sqs"), boto3.client("dynamodb")
        s3.create_bucket(Bucket=BUCKET)
        queue_url, dlq_url, queue_arn = create_queues(sqs)
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": queue_arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": "ingest/"}]}
                        },
                    }
                ]
            },
        )
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "checksum", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "checksum", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        # Clients cached by an earlier test belong to another moto session.
        for cached in (
            ingest_handler.ingester,
            aws_clients.s3_client,
            aws_clients.rekognition_client,
        ):
            cached.cache_clear()
        yield Rig(s3, sqs, queue_url, dlq_url, dynamodb)


def use(
    monkeypatch: pytest.MonkeyPatch,
    rig: Rig,
    rekognition: Any,
    s3: Any | None = None,
    cache: bool = True,
) -> CloudIngester:
    """Make the handler use an ingester with these clients."""
    options = LabelerOptions()
    ingester = CloudIngester(
        BUCKET,
        PipelineConfig(),
        RekognitionLabeler(options, rekognition),
        s3 or rig.s3,
        LabelCache(TABLE, options, rig.dynamodb) if cache else None,
    )
    monkeypatch.setattr(ingest_handler, "ingester", lambda: ingester)
    return ingester


def moto_rekognition() -> Counting:
    return Counting(boto3.client("rekognition"), "detect_labels")


def stubbed_rekognition(*outcomes: str) -> tuple[Counting, Stubber]:
    """A Stubber-backed client answering in turn: "ok" or an error code."""
    client = boto3.client("rekognition")
    stubber = Stubber(client)
    for outcome in outcomes:
        if outcome == "ok":
            stubber.add_response("detect_labels", LABELS)
        else:
            stubber.add_client_error("detect_labels", outcome, "stubbed", 400)
    stubber.activate()
    return Counting(client, "detect_labels"), stubber
