"""The DynamoDB label cache on moto: hits, misses by options, expiry, failing open, and the
"in progress" claim that keeps concurrent workers from labeling the same content twice."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from imgpipe.label_cache import CachedLabels, LabelCache, cache_key
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
def dynamodb(aws_credentials: None) -> Iterator[Any]:
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


# The "in progress" claim: one labeling at a time per content, whatever the workers.


def key_of(cache: LabelCache) -> str:
    return cache_key(DIGEST, "rekognition", cache.options)


def labeled(calls: list[str], name: str = "made") -> Callable[[], CachedLabels]:
    """A labeler call that records itself."""

    def label() -> CachedLabels:
        calls.append(name)
        return CachedLabels(tuple(LABELS), "3.0")

    return label


def write_claim(dynamodb: Any, cache: LabelCache, owner: str, until: float) -> None:
    """Another worker's claim, as :meth:`LabelCache.labels_for` writes it."""
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "checksum": {"S": key_of(cache)},
            "claim_owner": {"S": owner},
            "claimed_until": {"N": f"{until:.3f}"},
            "expires_at": {"N": str(int(until) + 3_600)},
        },
    )


def test_labels_for_labels_a_miss_once_then_hits(dynamodb: Any) -> None:
    cache = LabelCache(TABLE, LabelerOptions(), dynamodb)
    calls: list[str] = []

    first, first_hit = cache.labels_for(DIGEST, "rekognition", labeled(calls))
    second, second_hit = cache.labels_for(DIGEST, "rekognition", labeled(calls))

    assert (first_hit, second_hit) == (False, True)
    assert first == second == CachedLabels(tuple(LABELS), "3.0")
    assert calls == ["made"]
    (item,) = dynamodb.scan(TableName=TABLE)["Items"]
    assert "labels" in item and "claim_owner" not in item  # the labels replaced the claim


def test_a_live_claim_is_waited_on_and_its_labels_used(dynamodb: Any) -> None:
    cache = LabelCache(TABLE, LabelerOptions(), dynamodb)
    write_claim(dynamodb, cache, "other-worker", time.time() + 30)
    finisher = threading.Timer(0.3, cache.put, (DIGEST, "rekognition", LABELS, "3.0"))
    finisher.start()
    calls: list[str] = []

    started = time.monotonic()
    found, hit = cache.labels_for(DIGEST, "rekognition", labeled(calls))
    finisher.join()

    assert hit and found.labels == tuple(LABELS)
    assert calls == []
    assert 0.3 <= time.monotonic() - started < 5


def test_an_expired_claim_is_taken_over_at_once(dynamodb: Any) -> None:
    cache = LabelCache(TABLE, LabelerOptions(), dynamodb)
    write_claim(dynamodb, cache, "dead-worker", time.time() - 1)
    calls: list[str] = []

    started = time.monotonic()
    _, hit = cache.labels_for(DIGEST, "rekognition", labeled(calls))

    assert not hit and calls == ["made"]
    assert time.monotonic() - started < 1


def test_a_claim_held_past_our_own_lease_is_given_up_on(dynamodb: Any) -> None:
    # A claim far in the future (another configuration, or leases renewed by others).
    cache = LabelCache(TABLE, LabelerOptions(), dynamodb, lease_seconds=0.3)
    write_claim(dynamodb, cache, "slow-worker", time.time() + 3_600)
    calls: list[str] = []

    started = time.monotonic()
    _, hit = cache.labels_for(DIGEST, "rekognition", labeled(calls))

    assert not hit and calls == ["made"]
    assert 0.3 <= time.monotonic() - started < 5


def test_a_failed_labeling_releases_the_claim_without_deleting(dynamodb: Any) -> None:
    cache = LabelCache(TABLE, LabelerOptions(), dynamodb)

    def fails() -> CachedLabels:
        raise RuntimeError("Rekognition said no")

    with pytest.raises(RuntimeError):
        cache.labels_for(DIGEST, "rekognition", fails)

    (item,) = dynamodb.scan(TableName=TABLE)["Items"]
    assert item["claimed_until"] == {"N": "0"} and "labels" not in item
    calls: list[str] = []
    started = time.monotonic()
    _, hit = cache.labels_for(DIGEST, "rekognition", labeled(calls))
    assert not hit and calls == ["made"]
    assert time.monotonic() - started < 1  # no wait for the 60 s lease


def test_release_leaves_a_claim_taken_over_by_another_worker(dynamodb: Any) -> None:
    cache = LabelCache(TABLE, LabelerOptions(), dynamodb)
    until = time.time() + 30

    def overtaken_then_fails() -> CachedLabels:
        write_claim(dynamodb, cache, "newer-worker", until)  # our lease ran out meanwhile
        raise RuntimeError("too late")

    with pytest.raises(RuntimeError):
        cache.labels_for(DIGEST, "rekognition", overtaken_then_fails)

    (item,) = dynamodb.scan(TableName=TABLE)["Items"]
    assert item["claim_owner"] == {"S": "newer-worker"}
    assert float(item["claimed_until"]["N"]) == pytest.approx(until, abs=0.01)


class FailingClaims:
    """DynamoDB whose reads work but whose conditional writes are throttled."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_item(self, **kwargs: Any) -> Any:
        if "ConditionExpression" in kwargs:
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}}
            raise ClientError(error, "PutItem")  # type: ignore[arg-type]
        return self._client.put_item(**kwargs)


@pytest.mark.parametrize("failure", ["no such table", "claim throttled"])
def test_a_failing_cache_labels_at_once_and_never_raises(
    dynamodb: Any, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    if failure == "no such table":
        cache = LabelCache("no-such-table", LabelerOptions(), dynamodb)
    else:
        cache = LabelCache(TABLE, LabelerOptions(), FailingClaims(dynamodb))
    calls: list[str] = []

    with caplog.at_level(logging.WARNING, logger="imgpipe.label_cache"):
        found, hit = cache.labels_for(DIGEST, "rekognition", labeled(calls))

    assert not hit and found.labels == tuple(LABELS) and calls == ["made"]
    assert caplog.records  # the failure is logged
