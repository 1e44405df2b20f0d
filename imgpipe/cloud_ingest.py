"""The ingest stage on AWS: S3 event notifications -> image or quarantine records.

The Lambda handler is a thin adapter over :class:`CloudIngester`, which applies the local
runner's logic (:mod:`imgpipe.ingest`: the same record builders, the same reuse rule) to
objects in S3, with what the cloud changes:

- Reading: the content identity comes from S3's CRC64NVME checksum (:meth:`S3Store.head`),
  so a redelivered event costs a HEAD and no GET; headers and EXIF come from a ranged GET of
  the first bytes, so most rejections cost no download.
- Validating: an object whose header passes is downloaded and decoded at reduced scale by
  the local ingest's own :func:`~imgpipe.ingest.describe`, so both runs quarantine the same
  files for the same reason. The header alone misses damage past it (a JPEG cut off
  mid-scan or missing its end marker), which Rekognition would label anyway. The decode of
  an object Rekognition may read (at most 15 MB) costs far less than the DetectLabels call.
- Labeling: Rekognition still reads JPEG/PNG objects itself (``S3Object``); only other
  formats (and oversized JPEG/PNG) are re-encoded (with Pillow) and sent as JPEG ``Bytes``.
- Caching: Rekognition bills every call, so labels are cached by content
  (:class:`~imgpipe.label_cache.LabelCache`): a copy under another key is not labeled again,
  and a claim in the cache makes a concurrent duplicate wait for the labels, not call again.

The Lambda never writes under ``ingest/`` and never deletes anything.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from PIL import Image

from imgpipe.config import PipelineConfig
from imgpipe.decoding import decode_oriented
from imgpipe.deployment import ENV_BUCKET, ENV_LABEL_CACHE_TABLE
from imgpipe.ingest import (
    IngestItem,
    Outcome,
    build_record,
    describe,
    previous_outcome,
    quarantine,
    write_quarantine,
    write_record,
)
from imgpipe.inspect import IncompleteHeader, Inspection, checksum, inspect_image
from imgpipe.label_cache import CachedLabels, LabelCache
from imgpipe.labelers import ImageInput, LabelerOptions, LabelingError
from imgpipe.labelers.rekognition import MAX_BYTES as REKOGNITION_MAX_BYTES
from imgpipe.labelers.rekognition import RekognitionLabeler
from imgpipe.records import Label, Reason, RejectedImage
from imgpipe.s3_events import ObjectRef, decode_metadata_text, is_ingest_key, parse_notification
from imgpipe.store import ObjectChanged, S3Store

if TYPE_CHECKING:  # the stubs are a dev dependency: the Lambda runtime lacks them
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

# Enough for the header and EXIF of nearly every photo; longer headers are read in steps.
HEADER_BYTES = 256 * 1024
# What Rekognition reads from S3 itself (DetectLabels limits); anything else is converted.
REKOGNITION_FORMATS = frozenset({"JPEG", "PNG"})
REKOGNITION_S3_MAX_BYTES = 15 * 1024 * 1024
REKOGNITION_MIN_SIDE, REKOGNITION_MAX_SIDE = 80, 10_000
# Converted images: longest side and JPEG quality, tried in order until under 5 MB.
CONVERT_ATTEMPTS = ((4096, 90), (4096, 75), (2048, 85), (1024, 85))


class IngestFailed(Exception):
    """Some objects of a notification could not be ingested now; the message must be retried."""


@dataclass(frozen=True)
class IngestEnvironment:
    """The Lambda's settings, read once from its environment.

    Attributes:
        bucket: The pipeline bucket (``IMGPIPE_BUCKET``).
        label_cache_table: The DynamoDB label cache (``IMGPIPE_LABEL_CACHE_TABLE``), if any.
        config: The pipeline config (``IMGPIPE_<FIELD>`` variables).
    """

    bucket: str
    label_cache_table: str | None
    config: PipelineConfig

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestEnvironment:
        env = os.environ if environ is None else environ
        bucket = env.get(ENV_BUCKET, "")
        if not bucket:
            raise ValueError(f"{ENV_BUCKET} is not set: the Lambda does not know its bucket")
        table = env.get(ENV_LABEL_CACHE_TABLE) or None
        return cls(bucket, table, PipelineConfig.from_env(env))


@dataclass(frozen=True)
class ObjectResult:
    """What became of one object named by an event.

    Attributes:
        key: The decoded object key.
        outcome: The record written or reused; ``None`` when the object was skipped.
        labeled_by: ``"labeler"`` when Rekognition was called, ``"cache"`` on a cache hit.
        skipped: Why no record was needed (not an ingest key, object gone, ...).
    """

    key: str
    outcome: Outcome | None
    labeled_by: str | None = None
    skipped: str = ""


@dataclass(frozen=True)
class _Head:
    key: str
    size: int
    etag: str
    creator: str | None
    digest: str | None  # "crc64nvme:..." when S3 has a full-object CRC64NVME


def rekognition_reads_directly(inspection: Inspection, size: int) -> bool:
    """Whether DetectLabels can read the object from S3 as it is (format, bytes, sides)."""
    return (
        inspection.format in REKOGNITION_FORMATS
        and size <= REKOGNITION_S3_MAX_BYTES
        and min(inspection.width, inspection.height) >= REKOGNITION_MIN_SIDE
        and max(inspection.width, inspection.height) <= REKOGNITION_MAX_SIDE
    )


def jpeg_for_rekognition(data: bytes, orientation: int) -> bytes:
    """Decode any supported image and re-encode it as an upright JPEG under 5 MB.

    Raises:
        RejectedImage: When the bytes do not decode (``truncated``/``undecodable``).
    """
    image = Image.fromarray(decode_oriented(data, CONVERT_ATTEMPTS[0][0], orientation))
    for side, quality in CONVERT_ATTEMPTS:
        # Pillow, not the process stage's OpenCV thumbnailer: the Lambda bundle has no OpenCV.
        # The attempts' sides never grow, so shrinking in place is right.
        image.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=3.0)
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=quality)
        if encoded.tell() <= REKOGNITION_MAX_BYTES:
            return encoded.getvalue()
    raise RejectedImage(
        Reason.TOO_LARGE, "the image does not compress under Rekognition's 5 MB limit"
    )


class CloudIngester:
    """Ingests the objects named by S3 event notifications into one bucket's records."""

    def __init__(
        self,
        bucket: str,
        config: PipelineConfig,
        labeler: RekognitionLabeler,
        s3: S3Client | None = None,
        cache: LabelCache | None = None,
    ) -> None:
        """Args:
        bucket: The pipeline bucket: objects are read from and records written to it.
        config: Validation limits.
        labeler: Rekognition (its client injected or built lazily).
        s3: An S3 client; ``None`` builds one with adaptive retries on first use.
        cache: The label cache; ``None`` labels every new content.
        """
        self.store = S3Store(bucket, s3)
        self.config = config
        self.labeler = labeler
        self.cache = cache

    @classmethod
    def from_environment(
        cls,
        env: IngestEnvironment,
        *,
        s3: S3Client | None = None,
        rekognition: RekognitionClient | None = None,
        dynamodb: DynamoDBClient | None = None,
    ) -> CloudIngester:
        """Wire an ingester from the Lambda's settings; clients may be injected."""
        options = LabelerOptions(env.config.max_labels, env.config.min_confidence)
        cache = (
            LabelCache(env.label_cache_table, options, dynamodb) if env.label_cache_table else None
        )
        return cls(env.bucket, env.config, RekognitionLabeler(options, rekognition), s3, cache)

    def ingest_notification(
        self, body: str, on_result: Callable[[ObjectResult], None] | None = None
    ) -> list[ObjectResult]:
        """Ingest every object an SQS message body names.

        Every object is attempted, so work done is kept when a sibling fails; then the
        first failure is raised as :class:`IngestFailed` and the whole message is retried
        (its finished objects are recognised by checksum and cost nothing the second time).

        Raises:
            MalformedNotification: The body is not an S3 event notification.
            IngestFailed: An object hit a transient error (throttling, S3 faults, ...).
        """
        refs = parse_notification(body)
        results: list[ObjectResult] = []
        failures: list[tuple[str, Exception]] = []
        for ref in refs:
            try:
                result = self.ingest_object(ref)
            except Exception as exc:  # retried as a message; the cause is kept for the log
                logger.warning("ingest of %r failed, will be retried: %r", ref.key, exc)
                failures.append((ref.key, exc))
                continue
            results.append(result)
            if on_result is not None:
                on_result(result)
        if failures:
            key, first = failures[0]
            raise IngestFailed(
                f"{len(failures)} of {len(refs)} objects failed, first {key!r}: {first}"
            ) from first
        return results

    def ingest_object(self, ref: ObjectRef) -> ObjectResult:
        """Write the record of one object (or reuse the one already there)."""
        if ref.bucket != self.store.bucket:
            return self._skip(ref.key, f"event from bucket {ref.bucket!r}, not the pipeline's")
        if not ref.created:
            return self._skip(ref.key, f"{ref.event} is not an object creation")
        if not is_ingest_key(ref.key):
            return self._skip(ref.key, "not an object under ingest/")
        head = self._head(ref.key)
        if head is None:
            return self._skip(ref.key, "the object no longer exists")
        data, digest = self._identity(head)
        if digest is not None:
            earlier = previous_outcome(self.store, head.key, digest, self.labeler)
            if earlier is not None:
                return ObjectResult(head.key, earlier)
        try:
            # The header first, so that most rejections cost no download.
            _, data = self._inspect(head, data)
            item = IngestItem(head.key, self._download(head, data), head.creator, size=head.size)
            # Without S3's checksum the object was read whole in _identity and hashed there.
            identity = digest or checksum(item.data)
            # Then the local ingest's own validation (header and reduced-scale decode): the
            # same files fail for the same reason, damage past the header included.
            inspection = describe(item, identity, self.config).inspection
            labels, model_version, source = self._labels(head, item.data, inspection, digest)
        except RejectedImage as rejected:
            refused = quarantine(head.key, head.size, rejected.reason, rejected.message, digest)
            return ObjectResult(head.key, write_quarantine(self.store, refused))
        except LabelingError as exc:
            if exc.retryable:
                raise
            refused = quarantine(head.key, head.size, Reason.LABELING_FAILED, str(exc), digest)
            return ObjectResult(head.key, write_quarantine(self.store, refused), "labeler")
        record = build_record(item, inspection, identity, labels, self.labeler)
        # A cache hit carries the version of the model that made the labels.
        record = replace(record, labeler_version=model_version)
        return ObjectResult(head.key, write_record(self.store, record), source)

    def _skip(self, key: str, why: str) -> ObjectResult:
        logger.info("skipped %r: %s", key, why)
        return ObjectResult(key, None, skipped=why)

    def _head(self, key: str) -> _Head | None:
        head = self.store.head(key)
        if head is None:
            return None  # deleted since the event; a newer upload has its own event
        return _Head(
            key=key,
            size=head.size,
            etag=head.etag,
            creator=decode_metadata_text(head.metadata.get("creator")),
            digest=head.checksum,
        )

    def _identity(self, head: _Head) -> tuple[bytes, str | None]:
        """The bytes read so far and the content identity (hashing them without a CRC)."""
        if head.digest is not None or head.size == 0:
            return b"", head.digest
        if head.size > self.config.max_bytes:
            return b"", None  # rejected as too large from its header alone
        data = self._read(head, 0, head.size)
        return data, checksum(data)

    def _read(self, head: _Head, start: int, end: int) -> bytes:
        """Bytes ``start`` up to ``end`` (exclusive) of the version that ``head`` saw."""
        try:
            return self.store.get_range(head.key, start, end, if_match=head.etag)
        except ObjectChanged as exc:
            raise IngestFailed(f"{head.key!r} changed while being read") from exc

    def _download(self, head: _Head, data: bytes) -> bytes:
        """The whole object, given its first bytes (the rest is read from the same version)."""
        if len(data) < head.size:
            data += self._read(head, len(data), head.size)
        return data

    def _inspect(self, head: _Head, data: bytes) -> tuple[Inspection, bytes]:
        """Inspect the header, reading more of the object while the header goes on."""
        while True:
            try:
                return inspect_image(data, self.config, total_size=head.size), data
            except IncompleteHeader:
                want = min(head.size, max(HEADER_BYTES, 4 * len(data)))
                data += self._read(head, len(data), want)

    def _labels(
        self, head: _Head, data: bytes, inspection: Inspection, digest: str | None
    ) -> tuple[Sequence[Label], str, str]:
        """Labels, the model version and where they came from (``cache`` or ``labeler``).

        With a cache, the content is labeled at most once at a time: a concurrent duplicate
        waits on the other worker's claim and takes its labels from the cache.
        """

        def call_labeler() -> CachedLabels:
            labels = self.labeler.label_one(self._label_input(head, data, inspection))
            return CachedLabels(tuple(labels), self.labeler.model_version)

        if self.cache is None or digest is None:
            made = call_labeler()
            return made.labels, made.model_version, "labeler"
        found, hit = self.cache.labels_for(digest, self.labeler.name, call_labeler)
        return found.labels, found.model_version, "cache" if hit else "labeler"

    def _label_input(self, head: _Head, data: bytes, inspection: Inspection) -> ImageInput:
        if rekognition_reads_directly(inspection, head.size):
            return ImageInput(s3_bucket=self.store.bucket, s3_key=head.key)
        return ImageInput(data=jpeg_for_rekognition(data, inspection.orientation))
