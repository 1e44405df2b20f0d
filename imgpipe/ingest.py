"""The ingest stage's logic, shared by the local runner and the Lambda.

For each object under ``ingest/``: inspect the header, decode once at reduced scale (which both
proves the data is whole and gives the labeler its pixels), label in batches, and write exactly
one record — the image record under ``metadata/`` or a quarantine record with a reason code.
When a changed object's outcome flips, its record of the other kind is overwritten with a
superseded marker (never deleted), so the object still has exactly one live record.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from imgpipe.config import PipelineConfig
from imgpipe.decoding import decode_oriented
from imgpipe.inspect import Inspection, checksum, inspect_image, resolve_creator
from imgpipe.labelers import ImageInput, Labeler, LabelingError
from imgpipe.records import (
    ImageRecord,
    Label,
    QuarantineRecord,
    Reason,
    RejectedImage,
    SupersededMarker,
    image_record_to_json,
    is_live_record,
    metadata_key,
    parse_live_record,
    quarantine_key,
    quarantine_record_to_json,
    superseded_marker_to_json,
    utc_now,
)
from imgpipe.store import Store

# The labeler sees a copy decoded to about this longest side: enough for a 224 px classifier
# crop and for the face detector, and a JPEG decodes to it at 1/4 or 1/8 DCT scale.
LABEL_INPUT_SIDE = 512
LABEL_BATCH = 16
# Objects are described (hashed, inspected, decoded) on threads ahead of the one being written:
# hashlib and OpenCV's decode release the GIL, so each core describes a photo at a time. The
# records are still labeled and written one by one, in input order.
DESCRIBE_THREADS = min(4, os.cpu_count() or 1)

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class IngestItem:
    """One object to ingest: its key under ``ingest/``, its bytes and the uploader's creator.

    ``rejected`` carries a rejection found before the bytes could be read (a symlink, an
    unreadable file); ``size`` is then the size as listed. ``size`` is also set when ``data``
    holds only the start of the object (the Lambda reads headers with a ranged GET).
    """

    key: str
    data: bytes
    metadata_creator: str | None = None
    rejected: RejectedImage | None = None
    size: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one ingest object."""

    key: str
    accepted: bool
    reason: str | None = None
    reused: bool = False


@dataclass(frozen=True)
class _Described:
    item: IngestItem
    inspection: Inspection
    digest: str
    pixels: np.ndarray


def build_record(
    item: IngestItem,
    inspection: Inspection,
    digest: str,
    labels: Sequence[Label],
    labeler: Labeler,
) -> ImageRecord:
    """The image record for an inspected, labeled object (pure)."""
    creator, source = resolve_creator(
        item.metadata_creator, inspection.exif.artist, inspection.xmp_creator, item.key
    )
    return ImageRecord(
        key=item.key,
        size=item.size if item.size is not None else len(item.data),
        checksum=digest,
        format=inspection.format,
        width=inspection.width,
        height=inspection.height,
        orientation=inspection.orientation,
        creator=creator,
        creator_source=source,
        exif=inspection.exif,
        labels=tuple(labels),
        labeler=labeler.name,
        labeler_version=labeler.model_version,
        ingested_at=utc_now(),
    )


def quarantine(
    key: str, size: int, reason: Reason, message: str, digest: str | None = None
) -> QuarantineRecord:
    """A quarantine record (pure)."""
    return QuarantineRecord(
        key=key,
        size=size,
        reason=reason.value,
        message=message,
        checksum=digest,
        quarantined_at=utc_now(),
    )


def describe(item: IngestItem, digest: str, config: PipelineConfig) -> _Described:
    """Inspect and decode one object; raises :class:`RejectedImage` with its reason."""
    inspection = inspect_image(item.data, config)
    pixels = decode_oriented(item.data, LABEL_INPUT_SIDE, inspection.orientation)
    return _Described(item, inspection, digest, pixels)


def previous_outcome(store: Store, key: str, digest: str, labeler: Labeler) -> Outcome | None:
    """The outcome of an earlier run on the same content, if its record is still valid.

    A record is reused when its checksum matches (and, for an accepted image, the same
    labeler made its labels), so re-runs neither relabel nor duplicate anything. One GET per
    record key at most (a missing key is no record); a superseded marker is no record.
    """
    old = parse_live_record(store.get_bytes_or_none(metadata_key(key)))
    if old is not None and old.get("checksum") == digest and old.get("labeler") == labeler.name:
        return Outcome(key, accepted=True, reused=True)
    old = parse_live_record(store.get_bytes_or_none(quarantine_key(key)))
    if old is not None and old.get("checksum") == digest:
        return Outcome(key, accepted=False, reason=old.get("reason"), reused=True)
    return None


def supersede(store: Store, stale_key: str, live_key: str, ingest_key: str) -> bool:
    """Overwrite a live record at ``stale_key`` with a marker naming ``live_key``.

    The object's outcome flipped (accepted <-> quarantined), so its record of the other kind
    is stale. It is overwritten in place rather than deleted: the Lambda has no delete right,
    and the local run does the same so that both leave the same bucket. One GET; a PUT only
    when a live record is there. Returns whether a marker was written.
    """
    if not is_live_record(store.get_bytes_or_none(stale_key)):
        return False
    marker = SupersededMarker(key=ingest_key, superseded_by=live_key, superseded_at=utc_now())
    store.put_bytes(stale_key, superseded_marker_to_json(marker), "application/json")
    return True


def write_record(store: Store, record: ImageRecord) -> Outcome:
    """Write an image record at its ``metadata/`` key, superseding a live quarantine record.

    The marker goes first: if the record's PUT then fails, the object has no live record,
    so the retry (or the next run) cannot reuse anything and writes the record; the other
    order could leave two live records that a retry would reuse as they are.
    """
    key = metadata_key(record.key)
    supersede(store, quarantine_key(record.key), key, record.key)
    store.put_bytes(key, image_record_to_json(record), "application/json")
    return Outcome(record.key, accepted=True)


def write_quarantine(store: Store, record: QuarantineRecord) -> Outcome:
    """Write a quarantine record at its ``quarantine/`` key, superseding a live image record."""
    key = quarantine_key(record.key)
    supersede(store, metadata_key(record.key), key, record.key)
    store.put_bytes(key, quarantine_record_to_json(record), "application/json")
    return Outcome(record.key, accepted=False, reason=record.reason)


class Ingester:
    """Runs the ingest logic over items in batches and writes the records to a store."""

    def __init__(self, store: Store, config: PipelineConfig, labeler: Labeler) -> None:
        """Args:
        store: Where records are written (``metadata/``, ``quarantine/``).
        config: Validation limits.
        labeler: Labels accepted images.
        """
        self.store = store
        self.config = config
        self.labeler = labeler

    def run(self, items: Iterable[IngestItem], reuse: bool = True) -> Iterable[Outcome]:
        """Ingest items; yields one :class:`Outcome` per item as soon as it is written."""
        batch: list[_Described] = []
        for prepared in in_order_ahead(lambda item: self._prepare(item, reuse), items):
            if isinstance(prepared, Outcome):
                yield prepared
            elif isinstance(prepared, QuarantineRecord):
                yield write_quarantine(self.store, prepared)
            else:
                batch.append(prepared)
                if len(batch) >= LABEL_BATCH:
                    yield from self._label_and_write(batch)
                    batch = []
        if batch:
            yield from self._label_and_write(batch)

    def _prepare(self, item: IngestItem, reuse: bool) -> Outcome | QuarantineRecord | _Described:
        """An item's earlier outcome to reuse, its quarantine record, or its description.

        Reads the store but writes nothing: it runs on the describing threads.
        """
        if item.rejected is not None:
            rejected = item.rejected
            size = item.size if item.size is not None else len(item.data)
            return quarantine(item.key, size, rejected.reason, rejected.message)
        digest = checksum(item.data)
        # An empty upload has nothing to reuse: it is re-checked (and quarantined) each time.
        if reuse and item.data:
            earlier = previous_outcome(self.store, item.key, digest, self.labeler)
            if earlier is not None:
                return earlier
        try:
            return describe(item, digest, self.config)
        except RejectedImage as rejected:
            return quarantine(
                item.key,
                len(item.data),
                rejected.reason,
                rejected.message,
                digest if item.data else None,
            )

    def _label_input(self, described: _Described) -> ImageInput:
        """Decoded pixels for the offline labelers; encoded bytes for Rekognition."""
        if self.labeler.name == "rekognition":
            from imgpipe.labelers.rekognition import bytes_input

            return bytes_input(described.item.data, described.inspection)
        return ImageInput(rgb=described.pixels)

    def _label_and_write(self, batch: Sequence[_Described]) -> Iterable[Outcome]:
        try:
            label_lists = self.labeler.label([self._label_input(d) for d in batch])
        except LabelingError as exc:
            if exc.retryable:
                raise
            if len(batch) > 1:
                # One bad image must not cost its batch-mates their labels: find it alone.
                for described in batch:
                    yield from self._label_and_write([described])
                return
            (described,) = batch
            yield write_quarantine(
                self.store,
                quarantine(
                    described.item.key,
                    len(described.item.data),
                    Reason.LABELING_FAILED,
                    str(exc),
                    described.digest,
                ),
            )
            return
        for described, labels in zip(batch, label_lists, strict=True):
            record = build_record(
                described.item, described.inspection, described.digest, labels, self.labeler
            )
            yield write_record(self.store, record)


def in_order_ahead(
    work: Callable[[_Item], _Result], items: Iterable[_Item], threads: int | None = None
) -> Iterator[_Result]:
    """``work(item)`` for each item, in input order, computed on ``threads`` threads.

    At most two items per thread are taken from ``items`` ahead of the one yielded (an ingest
    item holds a whole file's bytes). An exception from ``work`` is raised at its item.
    """
    threads = DESCRIBE_THREADS if threads is None else threads
    if threads <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="describe") as pool:
        pending: deque[Future[_Result]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(work, item))
                if len(pending) >= 2 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # the caller stopped early: drop what has not started
                future.cancel()
