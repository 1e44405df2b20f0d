"""A DynamoDB cache of labels by content, so a copy of an image is never labeled twice.

Rekognition bills every call, and users upload the same photo under several names. The
cache maps (content checksum, labeler, labeler options) to the labels and the model version
that made them; an item expires through the table's TTL attribute ``expires_at``.

The table's partition key is ``checksum`` (S). Its value carries the labeler and options
too, so labels made with other options are a miss rather than a wrong answer.

Concurrent duplicates (two Lambda containers handling the same event at once) would both
miss and both call Rekognition. :meth:`LabelCache.labels_for` closes that with an "in
progress" claim in the same item: on a miss, a conditional ``PutItem`` writes
``claim_owner`` (a token of this call) and ``claimed_until`` (a lease) only if no labels and
no live claim are there. The winner labels and its ``put`` replaces the claim with the
labels; the others poll the item until the labels appear, or take the claim over when the
lease runs out (the claimant died). A claimant whose labeling raises releases the claim with
a conditional ``UpdateItem`` (``claimed_until = 0``), never a delete: the Lambda may not
delete. Every DynamoDB failure still degrades to labeling, so the cache never blocks ingest.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from imgpipe.labelers import LabelerOptions
from imgpipe.records import Label, label_from_dict

if TYPE_CHECKING:  # the stubs are a dev dependency: the Lambda runtime lacks them
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

DEFAULT_TTL_DAYS = 180
# A claim outlives the labeling it covers (a DetectLabels call takes a few seconds).
DEFAULT_LEASE_SECONDS = 60.0
# Waiting for another worker's labels: the first pause, doubled up to the last.
POLL_FIRST_SECONDS, POLL_MAX_SECONDS = 0.2, 2.0
# A claim item stays this long after its lease (for inspection), then TTL removes it.
_CLAIM_TTL_SECONDS = 3_600
_DAY = 86_400
_CLAIM_CONDITION = (
    "attribute_not_exists(checksum) OR expires_at <= :now"
    " OR (attribute_not_exists(labels) AND claimed_until <= :now)"
)
_RELEASE_CONDITION = "claim_owner = :owner AND attribute_not_exists(labels)"


@dataclass(frozen=True)
class CachedLabels:
    """Labels found in the cache, with the model version that produced them."""

    labels: tuple[Label, ...]
    model_version: str


def cache_key(checksum: str, labeler: str, options: LabelerOptions) -> str:
    """The partition key value: content identity plus everything that changes the labels."""
    settings = f"max_labels={options.max_labels}#min_confidence={options.min_confidence:g}"
    return f"{checksum}#{labeler}#{settings}"


class _Unavailable(Exception):
    """The cache could not be read; the caller labels instead."""


@dataclass(frozen=True)
class _Entry:
    """What the item of one cache key holds now: labels, or another worker's claim."""

    labels: CachedLabels | None
    claimed_until: float  # 0 when the item is not a live claim


class LabelCache:
    """Get and put labels in a DynamoDB table (client injected or created lazily)."""

    def __init__(
        self,
        table_name: str,
        options: LabelerOptions,
        client: DynamoDBClient | None = None,
        ttl_days: int = DEFAULT_TTL_DAYS,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        """Args:
        table_name: The DynamoDB table (partition key ``checksum``, TTL ``expires_at``).
        options: The labeler options the cached labels must have been made with.
        client: A DynamoDB client; ``None`` builds one with adaptive retries on first use.
        ttl_days: How long an entry lives.
        lease_seconds: How long a claim keeps other workers waiting for its labels; a bit
            more than one labeling takes. Past it, the claim is taken over.
        """
        self.table_name = table_name
        self.options = options
        self.ttl_days = ttl_days
        self.lease_seconds = lease_seconds
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            import boto3

            from imgpipe.aws_clients import RETRY_CONFIG

            self._client = boto3.client("dynamodb", config=RETRY_CONFIG)
        return self._client

    def get(self, checksum: str, labeler: str) -> CachedLabels | None:
        """The cached labels of this content, or ``None`` (also when the cache is unreachable).

        A failing cache must not stop ingest: the image is labeled instead, at the price of
        one call, and the failure is logged.
        """
        try:
            entry = self._read(cache_key(checksum, labeler, self.options))
        except _Unavailable:
            return None
        return entry.labels if entry is not None else None

    def labels_for(
        self, checksum: str, labeler: str, label: Callable[[], CachedLabels]
    ) -> tuple[CachedLabels, bool]:
        """The cached labels of this content, or ``label()``'s, called at most once at a time.

        On a miss the key is claimed before ``label`` runs, so a concurrent duplicate waits
        for these labels instead of paying for its own call. While another worker's claim
        is live, the item is polled (0.2 s doubling to 2 s); when the claim's lease runs out
        without labels, the claim is taken over. Any DynamoDB failure labels right away.

        Returns:
            The labels, and whether they came from the cache (``label`` was not called).

        Raises:
            Whatever ``label`` raises; the claim is released first, so a retry (by any
            worker) need not wait for the lease.
        """
        key = cache_key(checksum, labeler, self.options)
        owner = uuid.uuid4().hex
        pause = POLL_FIRST_SECONDS
        give_up_at: float | None = None
        while True:
            try:
                entry = self._read(key)
            except _Unavailable:
                return self._label_and_put(checksum, labeler, label, None), False
            if entry is not None and entry.labels is not None:
                return entry.labels, True
            now = time.time()
            if entry is None or entry.claimed_until <= now:
                claimed = self._claim(key, owner, now)
                if claimed is None:  # the cache failed: label without a claim
                    return self._label_and_put(checksum, labeler, label, None), False
                if claimed:
                    return self._label_and_put(checksum, labeler, label, owner), False
                continue  # another worker claimed it first: read its claim
            # Someone else is labeling. Bounded by one lease of ours, in case leases renew.
            give_up_at = give_up_at if give_up_at is not None else now + self.lease_seconds
            if now >= give_up_at:
                logger.warning("label cache claim on %s never finished, labeling anyway", key)
                return self._label_and_put(checksum, labeler, label, None), False
            time.sleep(max(0.0, min(pause, entry.claimed_until - now, give_up_at - now)))
            pause = min(pause * 2, POLL_MAX_SECONDS)

    def put(self, checksum: str, labeler: str, labels: Sequence[Label], model_version: str) -> None:
        """Remember the labels of this content (a failure is logged, never raised)."""
        now = int(time.time())
        item = {
            "checksum": {"S": cache_key(checksum, labeler, self.options)},
            # One JSON string: labels are read back whole, and floats stay floats (no Decimal).
            "labels": {"S": json.dumps([asdict(label) for label in labels])},
            "model_version": {"S": model_version},
            "labeled_at": {"N": str(now)},
            "expires_at": {"N": str(now + self.ttl_days * _DAY)},
        }
        try:
            self.client.put_item(TableName=self.table_name, Item=item)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("label cache write failed (the record is written anyway): %s", exc)

    def _read(self, key: str) -> _Entry | None:
        """The item of ``key`` (``None`` when absent or expired).

        Raises:
            _Unavailable: The read failed (logged).
        """
        try:
            response = self.client.get_item(
                TableName=self.table_name, Key={"checksum": {"S": key}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("label cache read failed, labeling instead: %s", exc)
            raise _Unavailable from exc
        item = response.get("Item")
        # TTL deletion lags by up to days: an expired item is treated as absent.
        if not item or int(item["expires_at"]["N"]) <= time.time():
            return None
        if "labels" not in item:  # a claim: another worker is labeling this content
            return _Entry(None, float(item.get("claimed_until", {}).get("N", "0")))
        raw = json.loads(item["labels"]["S"])
        cached = CachedLabels(
            labels=tuple(label_from_dict(label) for label in raw),
            model_version=item.get("model_version", {}).get("S", ""),
        )
        return _Entry(cached, 0.0)

    def _claim(self, key: str, owner: str, now: float) -> bool | None:
        """Claim ``key`` for ``owner`` unless it holds labels or a live claim.

        Returns:
            ``True`` when claimed, ``False`` when another worker holds it, ``None`` when the
            cache failed (logged; the caller labels without a claim).
        """
        until = now + self.lease_seconds
        item = {
            "checksum": {"S": key},
            "claim_owner": {"S": owner},
            "claimed_until": {"N": f"{until:.3f}"},
            "expires_at": {"N": str(int(until) + _CLAIM_TTL_SECONDS)},
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=_CLAIM_CONDITION,
                ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}},
            )
        except ClientError as exc:
            if _conditional_check_failed(exc):
                return False
            logger.warning("label cache claim failed, labeling anyway: %s", exc)
            return None
        except BotoCoreError as exc:
            logger.warning("label cache claim failed, labeling anyway: %s", exc)
            return None
        return True

    def _release(self, key: str, owner: str) -> None:
        """End ``owner``'s claim now (``claimed_until = 0``) if it is still ``owner``'s.

        An update, not a delete: the Lambda has no ``dynamodb:DeleteItem``.
        """
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"checksum": {"S": key}},
                UpdateExpression="SET claimed_until = :zero",
                ConditionExpression=_RELEASE_CONDITION,
                ExpressionAttributeValues={":zero": {"N": "0"}, ":owner": {"S": owner}},
            )
        except ClientError as exc:
            if not _conditional_check_failed(exc):  # already taken over: nothing to release
                logger.warning("label cache claim release failed (its lease ends it): %s", exc)
        except BotoCoreError as exc:
            logger.warning("label cache claim release failed (its lease ends it): %s", exc)

    def _label_and_put(
        self, checksum: str, labeler: str, label: Callable[[], CachedLabels], owner: str | None
    ) -> CachedLabels:
        """Call ``label`` and cache its labels; release ``owner``'s claim if it raises.

        Only ``Exception`` releases: a killed process runs no handler, and its lease ends it.
        """
        try:
            made = label()
        except Exception:
            if owner is not None:
                self._release(cache_key(checksum, labeler, self.options), owner)
            raise
        # Replaces the claim item (whoever holds it now): labels are good whoever made them.
        self.put(checksum, labeler, made.labels, made.model_version)
        return made


def _conditional_check_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
