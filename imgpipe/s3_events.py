"""S3 event notifications as the ingest Lambda receives them (through SQS), and S3 user metadata.

Pure functions: parsing a message body into the objects it names (keys URL-decoded), telling
which keys are uploads to ingest, and carrying non-ASCII text in S3 user metadata.
"""

from __future__ import annotations

import email.header
import json
from dataclasses import dataclass
from urllib.parse import unquote_plus

from imgpipe.records import INGEST_PREFIX


class MalformedNotification(ValueError):
    """A message body that is not an S3 event notification (it ends in the dead-letter queue)."""


@dataclass(frozen=True)
class ObjectRef:
    """One object named by an S3 event: its bucket, its decoded key and the event name."""

    bucket: str
    key: str
    event: str

    @property
    def created(self) -> bool:
        return self.event.startswith("ObjectCreated:")


def parse_notification(body: str) -> list[ObjectRef]:
    """The objects an S3 event notification names (none for the ``s3:TestEvent``).

    Keys arrive URL-encoded (``a photo+1.jpg`` as ``a+photo%2B1.jpg``) and are decoded here.

    Raises:
        MalformedNotification: The body is not JSON or not an S3 event notification.
    """
    try:
        message = json.loads(body)
    except (json.JSONDecodeError, TypeError) as exc:
        raise MalformedNotification(f"message body is not JSON: {exc}") from exc
    if isinstance(message, dict) and message.get("Event") == "s3:TestEvent":
        return []  # S3 sends it once when the notification is configured
    records = message.get("Records") if isinstance(message, dict) else None
    if not isinstance(records, list) or not records:
        raise MalformedNotification("message body is not an S3 event notification (no Records)")
    try:
        return [
            ObjectRef(
                bucket=record["s3"]["bucket"]["name"],
                key=unquote_plus(record["s3"]["object"]["key"]),
                event=record.get("eventName", ""),
            )
            for record in records
        ]
    except (KeyError, TypeError) as exc:
        raise MalformedNotification(f"S3 event record without bucket/key: {exc!r}") from exc


def is_ingest_key(key: str) -> bool:
    """An upload to ingest: under ``ingest/``, and not a console "folder" placeholder."""
    return key.startswith(INGEST_PREFIX) and not key.endswith("/")


def encode_metadata_text(text: str) -> str:
    """S3 user metadata is ASCII: other text travels as an RFC 2047 encoded word."""
    return text if text.isascii() else email.header.Header(text, "utf-8").encode()


def decode_metadata_text(value: str | None) -> str | None:
    """The text of a user metadata value, decoding RFC 2047 encoded words."""
    if value is None:
        return None
    return str(email.header.make_header(email.header.decode_header(value)))
