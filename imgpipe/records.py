"""The metadata and quarantine record contracts, and the bucket layout they live in.

One JSON object per ingest object: ``metadata/<name>.json`` for an accepted image,
``quarantine/<name>.json`` for a rejected one, where ``<name>`` is the key below ``ingest/``.
The Lambda and the local ingest both write these through :func:`image_record_to_json`.

When an upload is overwritten and its outcome flips, the record of the other kind is not
deleted (the Lambda may not delete) but overwritten with a *superseded marker*
(:func:`superseded_marker_to_json`): the key, ``superseded_by`` (the live record's key) and
``superseded_at``, and no ``checksum``, ``reason`` or ``labels``. Every reader treats a
marker as no record (:func:`is_live_record`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1

INGEST_PREFIX = "ingest/"
METADATA_PREFIX = "metadata/"
QUARANTINE_PREFIX = "quarantine/"
PROCESSED_PREFIX = "processed/"
IMAGES_TABLE_PREFIX = "processed/images/"
THUMBNAILS_PREFIX = "processed/thumbnails/"
# Features computed per content checksum, one folder per process run (append-only), so a
# re-run decodes only content it has not seen with the same processing settings.
FEATURES_PREFIX = "processed/features/"
REPORTS_PREFIX = "reports/"
# The field that makes a record key's JSON a superseded marker rather than a record.
SUPERSEDED_FIELD = "superseded_by"


class Reason(StrEnum):
    """Why an ingest object was quarantined. The value is the stable reason code."""

    EMPTY_FILE = "empty_file"
    NOT_AN_IMAGE = "not_an_image"
    TRUNCATED = "truncated"
    UNDECODABLE = "undecodable"
    DECOMPRESSION_BOMB = "decompression_bomb"
    TOO_SMALL = "too_small"
    TOO_LARGE = "too_large"
    UNSUPPORTED_FORMAT = "unsupported_format"
    NOT_A_REGULAR_FILE = "not_a_regular_file"
    UNREADABLE = "unreadable"
    LABELING_FAILED = "labeling_failed"


class RejectedImage(Exception):
    """An ingest object that cannot become an image record, with its reason code."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Instance:
    """One occurrence of a label: a bounding box as ratios of the image width and height."""

    left: float
    top: float
    width: float
    height: float
    confidence: float


@dataclass(frozen=True)
class Label:
    """A label in the shape of Rekognition DetectLabels (confidence is 0-100)."""

    name: str
    confidence: float
    parents: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    instances: tuple[Instance, ...] = ()


@dataclass(frozen=True)
class Gps:
    latitude: float
    longitude: float
    altitude: float | None = None


@dataclass(frozen=True)
class Exif:
    make: str | None = None
    model: str | None = None
    datetime_original: str | None = None  # ISO 8601, no time zone (EXIF has none)
    gps: Gps | None = None
    artist: str | None = None


@dataclass(frozen=True)
class ImageRecord:
    """One accepted image (``metadata/<name>.json``).

    ``width``/``height`` are the stored pixel dimensions; ``orientation`` is the EXIF
    orientation (1-8) that process applies. ``checksum`` is ``"<algorithm>:<digest>"``.
    """

    key: str
    size: int
    checksum: str
    format: str
    width: int
    height: int
    orientation: int
    creator: str
    creator_source: str
    exif: Exif = field(default_factory=Exif)
    labels: tuple[Label, ...] = ()
    labeler: str = "none"
    labeler_version: str = ""
    ingested_at: str = ""
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True)
class SupersededMarker:
    """What is left at a record's key once the object's outcome flipped to the other kind.

    ``superseded_by`` is the key of the live record (``quarantine/...`` or ``metadata/...``).
    It has no ``checksum``: the process job drops metadata without one, and nothing reuses it.
    """

    key: str
    superseded_by: str
    superseded_at: str = ""
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True)
class QuarantineRecord:
    """One rejected ingest object (``quarantine/<name>.json``) with an actionable reason."""

    key: str
    size: int
    reason: str
    message: str
    checksum: str | None = None
    quarantined_at: str = ""
    schema_version: int = SCHEMA_VERSION


def utc_now() -> str:
    """The current time as ISO 8601 UTC with a ``Z`` suffix, second precision."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def new_run_id(taken: Callable[[str], bool] | None = None, now: datetime | None = None) -> str:
    """A sortable UTC run id (``20250102T030405Z``), names ``reports/RUN_ID/``.

    Args:
        taken: Whether an id is already used; ``-2``, ``-3``, ... are appended until it is not.
        now: The time to name the run after (default: now).
    """
    base = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = base, 1
    while taken is not None and taken(run_id):
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def relative_name(ingest_key: str) -> str:
    """The part of an ingest key below ``ingest/``."""
    if not ingest_key.startswith(INGEST_PREFIX) or ingest_key == INGEST_PREFIX:
        raise ValueError(f"not an ingest key: {ingest_key!r}")
    return ingest_key[len(INGEST_PREFIX) :]


def metadata_key(ingest_key: str) -> str:
    """Where the image record of an ingest object lives (deterministic: re-runs overwrite)."""
    return f"{METADATA_PREFIX}{relative_name(ingest_key)}.json"


def quarantine_key(ingest_key: str) -> str:
    """Where the quarantine record of an ingest object lives."""
    return f"{QUARANTINE_PREFIX}{relative_name(ingest_key)}.json"


def thumbnail_key(checksum: str) -> str:
    """Thumbnails are keyed by content, so copies of one image share one thumbnail."""
    algorithm, _, digest = checksum.partition(":")
    safe = "".join(c if c.isalnum() else "_" for c in digest)
    return f"{THUMBNAILS_PREFIX}{algorithm}-{safe}.jpg"


def _dump(obj: Any) -> bytes:
    return json.dumps(asdict(obj), ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")


def image_record_to_json(record: ImageRecord) -> bytes:
    return _dump(record)


def quarantine_record_to_json(record: QuarantineRecord) -> bytes:
    return _dump(record)


def superseded_marker_to_json(marker: SupersededMarker) -> bytes:
    return _dump(marker)


def parse_live_record(data: bytes | None) -> dict[str, Any] | None:
    """The JSON object of a live record; ``None`` for no record or a superseded marker.

    A record that is not a JSON object (corrupt, or written by hand) is live but carries
    nothing (``{}``): it still counts as the object's record, is never reused, and a new
    outcome of the other kind supersedes it.
    """
    if data is None:
        return None
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    return None if SUPERSEDED_FIELD in parsed else parsed


def is_live_record(data: bytes | None) -> bool:
    """Whether ``data`` (a record key's bytes, ``None`` when absent) is a live record."""
    return parse_live_record(data) is not None


def label_from_dict(data: dict[str, Any]) -> Label:
    return Label(
        name=data["name"],
        confidence=float(data["confidence"]),
        parents=tuple(data.get("parents", ())),
        categories=tuple(data.get("categories", ())),
        instances=tuple(Instance(**i) for i in data.get("instances", ())),
    )


def image_record_from_json(data: bytes | str) -> ImageRecord:
    raw = json.loads(data)
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"unsupported schema_version {raw.get('schema_version')!r}")
    exif = dict(raw.get("exif") or {})
    gps = exif.pop("gps", None)
    raw["exif"] = Exif(**exif, gps=Gps(**gps) if gps else None)
    raw["labels"] = tuple(label_from_dict(label) for label in raw.get("labels", ()))
    return ImageRecord(**raw)


def quarantine_record_from_json(data: bytes | str) -> QuarantineRecord:
    raw = json.loads(data)
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"unsupported schema_version {raw.get('schema_version')!r}")
    return QuarantineRecord(**raw)
