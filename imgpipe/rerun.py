"""A local re-run with nothing new: the last run's analysis is reused, and Spark never starts.

The analysis of a run depends only on the image table (built from the ``metadata/`` records),
the ``quarantine/`` records and the settings. Their fingerprint is kept in ``summary.json``;
when the newest run's fingerprint is the current one, its tables are the answer again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from analysis import tables_prefix
from imgpipe.config import PipelineConfig
from imgpipe.records import QUARANTINE_PREFIX, REPORTS_PREFIX
from imgpipe.store import Store

SUMMARY_NAME = "summary.json"


@dataclass(frozen=True)
class Reusable:
    """The run whose tables still hold, and the image table's counts it was built on."""

    run_id: str
    counts: dict[str, int]


def last_summary(store: Store) -> dict[str, Any] | None:
    """The newest run's ``summary.json`` (run ids sort by time), or None before any run."""
    runs = sorted(
        key.removeprefix(REPORTS_PREFIX).split("/")[0]
        for key in store.list_keys(REPORTS_PREFIX)
        if key.endswith(f"/{SUMMARY_NAME}") and key.count("/") == 2
    )
    for run_id in reversed(runs):
        try:
            summary = json.loads(store.get_bytes(f"{REPORTS_PREFIX}{run_id}/{SUMMARY_NAME}"))
        except ValueError:
            continue  # a summary cut short: not a run to build on
        if isinstance(summary, dict):
            return summary
    return None


def records_fingerprint(store: Store, config: PipelineConfig) -> str:
    """The process stage's fingerprint of the records (and kernel settings) it builds from."""
    from imgpipe.process.kernel import processing_settings
    from imgpipe.process.manifest import inputs_fingerprint

    return inputs_fingerprint(store, processing_settings(config))


def analysis_fingerprint(store: Store, config: PipelineConfig, records: str) -> str:
    """A digest of everything a run's analysis is computed from: records and settings.

    ``records`` is :func:`records_fingerprint`, computed once by the caller (it reads every
    record's version) and shared with :func:`reusable_run`.
    """
    digest = hashlib.sha256(records.encode())
    digest.update(json.dumps(dataclasses.asdict(config), sort_keys=True, default=str).encode())
    digest.update(analysis_code_digest().encode())
    for key, version in store.list_versions(QUARANTINE_PREFIX):
        digest.update(f"\n{key}\t{version}".encode())
    return digest.hexdigest()


@cache
def analysis_code_digest() -> str:
    """A digest of the code that turns the table into the report: its queries and charts.

    An upgrade that changes an analysis or a chart must not reuse the older run's results.
    """
    return code_digest(files("analysis"))


def code_digest(package: Traversable) -> str:
    """A digest of a package's code files (Python, SQL, templates), names included."""
    digest = hashlib.sha256()
    for name, entry in sorted(_code_files(package), key=lambda found: found[0]):
        digest.update(f"{name}\n".encode())
        digest.update(entry.read_bytes())
    return digest.hexdigest()


def _code_files(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir() and entry.name != "__pycache__":
            yield from _code_files(entry, f"{name}/")
        elif entry.name.endswith((".py", ".sql", ".j2", ".css", ".js")):
            yield name, entry


def reusable_run(
    store: Store, previous: dict[str, Any] | None, fingerprint: str, records: str
) -> Reusable | None:
    """The previous run, when nothing it was computed from changed and its tables are whole."""
    from imgpipe.process.manifest import unchanged_counts

    if previous is None or previous.get("inputs_fingerprint") != fingerprint:
        return None
    # The table itself must be current too (and hold nothing worth retrying).
    counts = unchanged_counts(store, records)
    run_id = str(previous.get("run_id", ""))
    if counts is None or not run_id or not any(store.list_keys(tables_prefix(run_id))):
        return None
    return Reusable(run_id, counts)


def copy_tables(store: Store, source_run: str, target_run: str) -> int:
    """Copy a run's result tables into another run's report; returns how many files."""
    source, target = tables_prefix(source_run), tables_prefix(target_run)
    copied = 0
    for key in list(store.list_keys(source)):
        store.put_bytes(target + key.removeprefix(source), store.get_bytes(key))
        copied += 1
    return copied
