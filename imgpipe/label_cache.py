"""A DynamoDB cache of labels by content, so a copy of an image is never labeled twice.

Rekognition bills every call, and users upload the same photo under several names. The
cache maps (content checksum, labeler, labeler options) to the labels and the model version
that made them; an item expires through the table's TTL attribute ``expires_at``.

The table's partition key is ``checksum`` (S). Its value carries the labeler and options
too, so labels made with other options are a miss rather than a wrong answer.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from imgpipe.labelers import LabelerOptions
from imgpipe.records import Label, label_from_dict

logger = logging.getLogger(__name__)

DEFAULT_TTL_DAYS = 180
_DAY = 86_400


@dataclass(frozen=True)
class CachedLabels:
    """Labels found in the cache, with the model version that produced them."""

    labels: tuple[Label, ...]
    model_version: str


def cache_key(checksum: str, labeler: str, options: LabelerOptions) -> str:
    """The partition key value: content identity plus everything that changes the labels."""
    settings = f"max_labels={options.max_labels}#min_confidence={options.min_confidence:g}"
    return f"{checksum}#{labeler}#{settings}"


class LabelCache:
    """Get and put labels in a DynamoDB table (client injected or created lazily)."""

    def __init__(
        self,
        table_name: str,
        options: LabelerOptions,
        client: Any | None = None,
        ttl_days: int = DEFAULT_TTL_DAYS,
    ) -> None:
        """Args:
        table_name: The DynamoDB table (partition key ``checksum``, TTL ``expires_at``).
        options: The labeler options the cached labels must have been made with.
        client: A DynamoDB client; ``None`` builds one with adaptive retries on first use.
        ttl_days: How long an entry lives.
        """
        self.table_name = table_name
        self.options = options
        self.ttl_days = ttl_days
        self._client = client

    @property
    def client(self) -> Any:
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
            response = self.client.get_item(
                TableName=self.table_name,
                Key={"checksum": {"S": cache_key(checksum, labeler, self.options)}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("label cache read failed, labeling instead: %s", exc)
            return None
        item = response.get("Item")
        # TTL deletion lags by up to days: an expired item is treated as absent.
        if not item or int(item["expires_at"]["N"]) <= time.time():
            return None
        raw = json.loads(item["labels"]["S"])
        return CachedLabels(
            labels=tuple(label_from_dict(label) for label in raw),
            model_version=item.get("model_version", {}).get("S", ""),
        )

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
