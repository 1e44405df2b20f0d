"""The "nothing lost" invariant, as a check any test or operator can run after a run."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from imgpipe.records import (
    INGEST_PREFIX,
    METADATA_PREFIX,
    QUARANTINE_PREFIX,
    is_live_record,
    metadata_key,
    quarantine_key,
)
from imgpipe.s3_events import is_ingest_key
from imgpipe.store import Store


@dataclass
class InvariantReport:
    """What broke the invariant; empty lists mean it holds."""

    unaccounted: list[str] = field(default_factory=list)  # in ingest/, in neither place
    in_both: list[str] = field(default_factory=list)  # both accepted and quarantined
    orphan_records: list[str] = field(default_factory=list)  # a record with no ingest object
    missing_from_table: list[str] = field(default_factory=list)
    duplicated_in_table: list[str] = field(default_factory=list)
    not_accepted_in_table: list[str] = field(default_factory=list)
    modified_originals: list[str] = field(default_factory=list)  # bytes differ from before
    deleted_originals: list[str] = field(default_factory=list)  # gone from ingest/

    @property
    def ok(self) -> bool:
        """Whether the invariant holds (nothing in any list)."""
        return not any(self.__dict__.values())


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of ``data``: the fingerprint :func:`fingerprint_originals` records."""
    return hashlib.sha256(data).hexdigest()


def fingerprint_originals(store: Store, prefix: str = INGEST_PREFIX) -> dict[str, str]:
    """Every object under ``prefix`` mapped to its SHA-256, to take before a run.

    Pass the result as ``originals`` to :func:`check_nothing_lost` after the run to prove
    that no upload was modified or deleted.
    """
    return {
        key: sha256_hex(store.get_bytes(key))
        for key in store.list_keys(prefix)
        if is_ingest_key(key)
    }


def live_records(store: Store, prefix: str) -> set[str]:
    """The ``.json`` record keys under ``prefix`` that hold a live record, not a marker.

    A record key whose outcome was superseded holds a marker (see :mod:`imgpipe.records`),
    which counts as no record; telling them apart costs one GET per record.
    """
    return {
        key
        for key in store.list_keys(prefix)
        if key.endswith(".json") and is_live_record(store.get_bytes_or_none(key))
    }


def check_nothing_lost(
    store: Store,
    table_keys: Iterable[str] | None = None,
    rejected_before_upload: Iterable[str] = (),
    originals: Mapping[str, str] | None = None,
) -> InvariantReport:
    """Check that every ingest object ended in exactly one of metadata or quarantine.

    Only live records count: a superseded marker (left where an overwritten object's outcome
    flipped) is no record, so it neither accounts for an object nor is an orphan.

    Args:
        store: The bucket (or local output directory).
        table_keys: The ``key`` column of ``processed/images`` after a process run; when
            given, every accepted image must be in it exactly once and nothing else may be.
        rejected_before_upload: Keys quarantined without an ingest object (a local symlink
            is never copied), which are not orphans.
        originals: ``key -> sha256 hex`` of the ingest objects taken before the run (see
            :func:`fingerprint_originals`); when given, every one must still exist under
            its key with the same bytes (the pipeline never rewrites or deletes uploads).
    """
    report = InvariantReport()
    # A console "folder" placeholder (a key ending in "/") is not an upload: no record is due.
    ingest = {k for k in store.list_keys(INGEST_PREFIX) if is_ingest_key(k)}
    accepted = live_records(store, METADATA_PREFIX)
    quarantined = live_records(store, QUARANTINE_PREFIX)
    allowed_orphans = set(rejected_before_upload)
    accepted_keys: set[str] = set()
    for key in sorted(ingest | allowed_orphans):
        in_meta, in_quar = metadata_key(key) in accepted, quarantine_key(key) in quarantined
        if in_meta and in_quar:
            report.in_both.append(key)
        elif not in_meta and not in_quar:
            report.unaccounted.append(key)
        if in_meta:
            accepted_keys.add(key)
    expected_records = {metadata_key(k) for k in ingest | allowed_orphans} | {
        quarantine_key(k) for k in ingest | allowed_orphans
    }
    report.orphan_records = sorted((accepted | quarantined) - expected_records)
    if table_keys is not None:
        counts = Counter(table_keys)
        report.missing_from_table = sorted(accepted_keys - set(counts))
        report.duplicated_in_table = sorted(k for k, n in counts.items() if n > 1)
        report.not_accepted_in_table = sorted(set(counts) - accepted_keys)
    for key, digest in sorted((originals or {}).items()):
        if key not in ingest:
            report.deleted_originals.append(key)
        elif sha256_hex(store.get_bytes(key)) != digest:
            report.modified_originals.append(key)
    return report
