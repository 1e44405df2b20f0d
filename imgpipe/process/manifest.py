"""What the image table was built from: a fingerprint of its inputs, kept beside the table.

When no record changed since the table was built (same keys, same content, same settings,
nothing left to retry), the process stage keeps the table as it is and runs no Spark job.
"""

from __future__ import annotations

import hashlib
import json

from imgpipe.records import IMAGES_TABLE_PREFIX, METADATA_PREFIX
from imgpipe.store import Store
from imgpipe.table import image_table_schema

# Inside the table's folder: the "_" prefix keeps Spark and Athena from reading it as data,
# and the atomic swap replaces it together with the table.
INPUTS_MANIFEST = f"{IMAGES_TABLE_PREFIX}_imgpipe_inputs.json"
COUNT_NAMES = ("records", "processed", "failed")


def inputs_fingerprint(store: Store, settings: str) -> str:
    """A digest of everything the image table is built from: each record's key and content
    version (S3 ETag, or a local content digest), the kernel's settings and the table schema."""
    digest = hashlib.sha256(f"{settings}\n{image_table_schema().json()}".encode())
    for key, version in store.list_versions(METADATA_PREFIX):
        if key.endswith(".json"):
            digest.update(f"\n{key}\t{version}".encode())
    return digest.hexdigest()


def unchanged_counts(store: Store, fingerprint: str) -> dict[str, int] | None:
    """The table's counts when it was built from exactly ``fingerprint``; None otherwise."""
    raw = store.get_bytes_or_none(INPUTS_MANIFEST)
    if raw is None:
        return None
    try:
        manifest = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(manifest, dict) or manifest.get("fingerprint") != fingerprint:
        return None
    counts = manifest.get("counts")
    if not isinstance(counts, dict):
        return None
    return {name: int(counts[name]) for name in COUNT_NAMES}


def write_manifest(store: Store, fingerprint: str, counts: dict[str, int]) -> None:
    """Record that the table now holding ``counts`` was built from ``fingerprint``."""
    manifest = {"fingerprint": fingerprint, "counts": counts}
    store.put_bytes(INPUTS_MANIFEST, json.dumps(manifest).encode(), "application/json")
