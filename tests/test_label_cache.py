"""The DynamoDB label cache on moto: hits, misses by options, expiry, and failing open."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from imgpipe.label_cache import LabelCache
from imgpipe.labelers import LabelerOptions
from imgpipe.records import Instance, Label

TABLE = "imgpipe-label-cache"
DIGEST = "crc64nvme:q83vEjRWeJA="
LABELS = [
    Label(
        "Cat",
        96.25,
        parents=("Animal", "Mammal"),
        categories=("Animals and Pets",),
        instances=(Instance(0.125, 0.25, 0.5, 0.75, 95.5),),
    ),
    Label("Grass", 61.0),
]


@pytest.fixture
def dynamodb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "checksum", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "checksum", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def test_labels_put_are_read_back_whole_with_their_model_version(dynamodb: Any) -> None:
    cache = LabelCache(TABLE, LabelerOptions(), dynamodb)
    assert cache.get(DIGEST, "rekognition") is None

    cache.put(DIGEST, "rekognition", LABELS, "3.0")
    hit = cache.get(DIGEST, "rekognition")

    assert hit is not None
    assert hit.labels == tuple(LABELS)
    assert hit.model_version == "3.0"


def test_labels_made_with_other_options_or_labeler_are_a_miss(dynamodb: Any) -> None:
    LabelCache(TABLE, LabelerOptions(max_labels=10), dynamodb).put(
        DIGEST, "rekognition", LABELS, "3.0"
    )
    assert (
        LabelCache(TABLE, LabelerOptions(max_labels=5), dynamodb).get(DIGEST, "rekognition") is None
    )
    assert (
        LabelCache(TABLE, LabelerOptions(min_confidence=80), dynamodb).get(DIGEST, "rekognition")
        is None
    )
    assert LabelCache(TABLE, LabelerOptions(), dynamodb).get(DIGEST, "local") is None
    assert (
        LabelCache(TABLE, LabelerOptions(), dynamodb).get("crc64nvme:other", "rekognition") is None
    )


def test_entries_carry_a_ttl_and_expired_ones_are_a_miss(dynamodb: Any) -> None:
    LabelCache(TABLE, LabelerOptions(), dynamodb, ttl_days=30).put(
        DIGEST, "rekognition", LABELS, "3.0"
    )
    (item,) = dynamodb.scan(TableName=TABLE)["Items"]
    lifetime = int(item["expires_at"]["N"]) - int(item["labeled_at"]["N"])
    assert lifetime == 30 * 86_400

    # DynamoDB deletes expired items lazily: one still present must not count.
    stale = LabelCache(TABLE, LabelerOptions(), dynamodb, ttl_days=0)
    stale.put(DIGEST, "rekognition", LABELS, "3.0")
    assert stale.get(DIGEST, "rekognition") is None


def test_a_failing_cache_is_logged_and_never_stops_ingest(
    dynamodb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = LabelCache("no-such-table", LabelerOptions(), dynamodb)
    with caplog.at_level(logging.WARNING, logger="imgpipe.label_cache"):
        assert cache.get(DIGEST, "rekognition") is None
        cache.put(DIGEST, "rekognition", LABELS, "3.0")
    assert [r.message.split(":")[0] for r in caplog.records] == [
        "label cache read failed, labeling instead",
        "label cache write failed (the record is written anyway)",
    ]
