"""A small hand-built image table (``image_table_schema``) whose counts are known.

Rows are plain dicts so tests can compute expectations in Python, independently of the SQL.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from imgpipe.records import (
    ImageRecord,
    QuarantineRecord,
    image_record_to_json,
    metadata_key,
    quarantine_record_to_json,
    thumbnail_key,
)
from imgpipe.store import LocalStore
from imgpipe.table import image_table_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Row = dict[str, Any]

SCRIPT_LABEL = "<script>alert('x')</script>"


def label(
    name: str,
    confidence: float,
    parents: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A label struct in the table's shape (Rekognition-like, confidence 0-100)."""
    return {
        "name": name,
        "confidence": confidence,
        "parents": list(parents),
        "categories": list(categories),
        "instances": [],
    }


CAT = ("Cat", ("Animal", "Mammal", "Pet"), ("Animals and Pets",))
DOG = ("Dog", ("Animal", "Mammal"), ("Animals and Pets",))
GRASS = ("Grass", ("Plant",), ("Nature",))


def _label(spec: tuple[str, tuple[str, ...], tuple[str, ...]], confidence: float) -> Any:
    return label(spec[0], confidence, spec[1], spec[2])


def image_row(key: str, checksum: str, **values: Any) -> Row:
    """One table row with plausible, measured defaults; ``values`` override any column."""
    row: Row = {field: None for field in image_table_schema().fieldNames()}
    row.update(
        key=key,
        checksum=checksum,
        size=1000,
        format="JPEG",
        width=4000,
        height=3000,
        orientation=1,
        creator="alice",
        creator_source="metadata",
        labels=[],
        labeler="local",
        labeler_version="test",
        ingested_at=datetime(2024, 1, 1, 12, 0, 0),
        display_width=4000,
        display_height=3000,
        megapixels=12.0,
        aspect=4000 / 3000,
        phash="0123456789abcdef",
        sharpness=300.0,
        brightness=120.0,
        dominant_color="#808080",
        thumbnail_key=thumbnail_key(checksum),
        thumbnail_width=512,
        thumbnail_height=384,
        processed_at=datetime(2024, 1, 2, 12, 0, 0),
    )
    row.update(values)
    return row


def failed_row(key: str, checksum: str, **values: Any) -> Row:
    """A row whose decode failed: counted in totals, every feature null."""
    features = {
        "display_width",
        "display_height",
        "megapixels",
        "aspect",
        "phash",
        "sharpness",
        "brightness",
        "dominant_color",
        "thumbnail_key",
        "thumbnail_width",
        "thumbnail_height",
    }
    row = image_row(key, checksum, **values)
    row.update(dict.fromkeys(features), process_error="undecodable: broken JPEG stream")
    return row


def sample_rows() -> list[Row]:
    """The synthetic collection the analyze and report tests use."""
    rows = [
        # A cat and a dog: Animal and Mammal are parents of both, the image counts once.
        image_row(
            "ingest/alice/cat-and-dog.jpg",
            "sha256:aaaa",
            size=2000,
            labels=[_label(CAT, 95.0), _label(DOG, 81.0)],
            camera_make="Canon",
            camera_model="EOS 5D",
            datetime_original=datetime(2021, 3, 5, 10, 0),
            phash="0000000000000000",
        ),
        # An exact copy (same checksum, another key and creator).
        image_row(
            "ingest/bob/cat-and-dog-copy.jpg",
            "sha256:aaaa",
            size=2000,
            creator="bob",
            labels=[_label(CAT, 95.0), _label(DOG, 81.0)],
            camera_make="Canon",
            camera_model="EOS 5D",
            datetime_original=datetime(2021, 3, 5, 10, 0),
            phash="0000000000000000",
        ),
        # pHash distance 3 from the cat-and-dog hash: a near duplicate at threshold 6.
        image_row(
            "ingest/alice/cat2.jpg",
            "sha256:bbbb",
            size=3000,
            labels=[_label(CAT, 90.0), _label(CAT, 70.0)],  # listed twice: counts once
            camera_make="Canon",
            camera_model="EOS 5D",
            datetime_original=datetime(2021, 3, 20, 9, 0),
            phash="0000000000000007",
        ),
        # Distance 8 from cat-and-dog (not a near duplicate), 5 from cat2 (a near duplicate).
        image_row(
            "ingest/bob/dog-on-grass.png",
            "sha256:cccc",
            size=5000,
            creator="bob",
            format="PNG",
            labels=[_label(DOG, 88.0), _label(GRASS, 70.0)],
            camera_make="NIKON CORPORATION",
            camera_model="NIKON D750",
            datetime_original=datetime(2022, 7, 1, 18, 30),
            phash="00000000000000ff",
            megapixels=0.5,
            sharpness=30.0,
            brightness=20.0,  # blurry and dark
        ),
        # High-bit hashes (above a signed 64-bit range): distance 1 between them.
        image_row(
            "ingest/carol/sky1.jpg",
            "sha256:dddd",
            size=700,
            creator="carol",
            labels=[label("Sky", 99.0, categories=("Nature",))],
            phash="ffffffffffffffff",
            megapixels=24.0,
            brightness=230.0,  # overexposed
        ),
        image_row(
            "ingest/carol/sky2.jpg",
            "sha256:eeee",
            size=800,
            creator="carol",
            labels=[label("Sky", 97.5, categories=("Nature",))],
            phash="fffffffffffffffe",
            megapixels=1.0,
            sharpness=1500.0,
        ),
        # A user-chosen label name that must be escaped in HTML.
        image_row(
            "ingest/carol/weird.jpg",
            "sha256:ffff",
            size=900,
            creator="carol",
            labels=[label(SCRIPT_LABEL, 60.0)],
            phash="5555555555555555",
        ),
        # Decode failed: counts in totals, has no features.
        failed_row("ingest/dave/broken.jpg", "sha256:9999", size=123, creator="dave"),
        # No creator at all.
        image_row(
            "ingest/nobody.jpg",
            "sha256:8888",
            size=321,
            creator=None,
            labels=[label("Tree", 75.0, parents=("Plant",))],
            phash="3333333333333333",
        ),
    ]
    # Rekognition-style: the parents are labels too (Vehicle under Transportation), so the
    # pairs with an ancestor must not count as "seen together"; Sky is unrelated to them.
    rows.append(
        image_row(
            "ingest/frank/rocket.jpg",
            "sha256:7777",
            creator="frank",
            labels=[
                label("Rocket", 92.0, ("Vehicle", "Transportation"), ("Transport",)),
                label("Vehicle", 92.0, ("Transportation",), ("Transport",)),
                label("Transportation", 92.0, (), ("Transport",)),
                label("Sky", 80.0, categories=("Nature",)),
            ],
            phash="a5a5a5a5a5a5a5a5",
        )
    )
    # Measured, with a thumbnail, but no label at all: it must still be in the gallery.
    rows.append(
        image_row(
            "ingest/frank/blank.jpg", "sha256:6666", creator="frank", phash="5a5a5a5a5a5a5a5a"
        )
    )
    # Enough cats for the gallery to be capped (confidences 61..65, hashes far apart).
    for i, phash in enumerate(
        [
            "0f0f0f0f0f0f0f0f",
            "f0f0f0f0f0f0f0f0",
            "00ff00ff00ff00ff",
            "ff00ff00ff00ff00",
            "0ff00ff00ff00ff0",
        ]
    ):
        rows.append(
            image_row(
                f"ingest/erin/cat{i}.jpg",
                f"sha256:e{i}",
                creator="erin",
                labels=[_label(CAT, 61.0 + i)],
                phash=phash,
            )
        )
    return rows


def image_table(spark: SparkSession, rows: list[Row]) -> DataFrame:
    """The rows as a DataFrame with the image table's explicit schema."""
    schema = image_table_schema()
    return spark.createDataFrame([tuple(r[f] for f in schema.fieldNames()) for r in rows], schema)


def sample_quarantine() -> list[QuarantineRecord]:
    """Quarantine records: two reasons, one used twice, one in a nested folder."""
    return [
        QuarantineRecord("ingest/empty.jpg", 0, "empty_file", "the file is empty"),
        QuarantineRecord("ingest/notes.txt", 12, "not_an_image", "not an image: text"),
        QuarantineRecord("ingest/bob/readme.md", 40, "not_an_image", "not an image: text"),
    ]


def write_collection(
    spark: SparkSession, root: LocalStore, rows: list[Row], quarantine: list[QuarantineRecord]
) -> None:
    """Lay out ``processed/images/`` and ``quarantine/`` under a local bucket root."""
    if rows:
        image_table(spark, rows).write.mode("overwrite").parquet(root.uri("processed/images"))
    for record in quarantine:
        name = record.key.removeprefix("ingest/")
        root.put_bytes(f"quarantine/{name}.json", quarantine_record_to_json(record))


def add_image(store: LocalStore, key: str, data: bytes, **overrides: Any) -> ImageRecord:
    """Put an ingest object and its metadata record, as the ingest step would."""
    store.put_bytes(key, data)
    fields: dict[str, Any] = {
        "key": key,
        "size": len(data),
        "checksum": "sha256:" + hashlib.sha256(data).hexdigest(),
        "format": "JPEG",
        "width": 0,
        "height": 0,
        "orientation": 1,
        "creator": "alice",
        "creator_source": "folder",
        "ingested_at": "2024-05-01T10:00:00Z",
        **overrides,
    }
    record = ImageRecord(**fields)
    store.put_bytes(metadata_key(key), image_record_to_json(record))
    return record
