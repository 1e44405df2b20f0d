"""A local first run reads its records on the driver and places them in tasks itself.

The records must read exactly as Spark's JSON source reads them (the path a large or S3 run
still takes), copies of one content must meet in one task, and the tasks must hold even bytes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from imgpipe.config import PipelineConfig
from imgpipe.process import stage
from imgpipe.process.stage import run_process
from imgpipe.records import (
    FEATURES_PREFIX,
    Exif,
    Gps,
    Label,
    SupersededMarker,
    metadata_key,
    superseded_marker_to_json,
)
from imgpipe.spark import session_settings
from imgpipe.stages import LOCAL_PROCESS_SQL
from imgpipe.store import LocalStore
from tests.imagefactory import jpeg_bytes, photo_like
from tests.tablefixtures import add_image

pytestmark = pytest.mark.spark


def odd_records_store(root: Path) -> LocalStore:
    """Photos, copies and every kind of record a reader must survive, as files on disk."""
    store = LocalStore(root)
    for seed in range(4):
        add_image(
            store,
            f"ingest/p{seed}.jpg",
            jpeg_bytes(photo_like(160 + 40 * seed, 120, seed)),
            exif=Exif(
                make="Canon",
                model=f"EOS {seed}",
                datetime_original=f"2023-06-0{seed + 1}T12:00:00",
                gps=Gps(latitude=52.5, longitude=13.4, altitude=None) if seed == 1 else None,
            ),
            labels=(Label("Dog", 97.5, parents=("Animal",), categories=("Pets",)),),
            labeler="local",
        )
    copy = store.get_bytes("ingest/p1.jpg")
    add_image(store, "ingest/sub/copy.jpg", copy, creator="bob")
    # Readers must take these the lenient way Spark's JSON source does.
    add_image(
        store,
        "ingest/bad-date.jpg",
        jpeg_bytes(photo_like(90, 60, 7)),
        exif=Exif(datetime_original="2023:13:45 99:99:99"),
    )
    odd = json.loads(store.get_bytes(metadata_key("ingest/p2.jpg")))
    odd.update(key="ingest/odd-types.jpg", width="wide", orientation=None, extra={"x": 1})
    store.put_bytes("ingest/odd-types.jpg", store.get_bytes("ingest/p2.jpg"))
    store.put_bytes(metadata_key("ingest/odd-types.jpg"), json.dumps(odd, indent=2).encode())
    store.put_bytes("metadata/ingest/broken.jpg.json", b'{"key": "ingest/broken.jpg", "size": ')
    store.put_bytes("metadata/ingest/list.jpg.json", b"[1, 2, 3]")
    store.put_bytes(
        metadata_key("ingest/flipped.jpg"),
        superseded_marker_to_json(SupersededMarker("ingest/flipped.jpg", "quarantine/x.json")),
    )
    # Not records: Spark's file listing skips these, and so must the driver's.
    hidden = json.loads(store.get_bytes(metadata_key("ingest/p0.jpg")))
    for key in ("metadata/_staging/p9.jpg.json", "metadata/.p9.jpg.json", "metadata/p9.txt"):
        store.put_bytes(key, json.dumps({**hidden, "key": "ingest/" + key}).encode())
    # ...but not a "_name=value" folder: Spark reads that one, and so must the driver.
    add_image(store, "ingest/_k=v/p8.jpg", jpeg_bytes(photo_like(100, 80, 8)))
    store.put_bytes("metadata/ingest/deep.jpg.json", b"[" * 100_000)
    add_image(store, "ingest/gone.jpg", b"")  # its record stays; its image is missing
    (root / "ingest" / "gone.jpg").unlink()
    return store


def image_table(spark: SparkSession, store: LocalStore) -> list[dict]:
    table = spark.read.parquet(store.uri("processed/images/")).drop("processed_at")
    return [row.asDict(recursive=True) for row in table.orderBy("key").collect()]


def test_records_read_on_the_driver_make_the_same_table_as_sparks_json_source(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed = odd_records_store(tmp_path / "placed")
    shutil.copytree(tmp_path / "placed", tmp_path / "read")
    read = LocalStore(tmp_path / "read")
    with session_settings(spark, LOCAL_PROCESS_SQL):
        placed_counts = run_process(spark, placed.uri(), PipelineConfig())
        monkeypatch.setattr(stage, "DRIVER_READ_MAX_RECORDS", 0)  # Spark reads the records
        read_counts = run_process(spark, read.uri(), PipelineConfig())

    assert placed_counts == read_counts
    # 4 photos, the copy, the bad date, the odd types, the missing image, the "_k=v" record;
    # not the broken, listed or too deep records, the marker (no checksum) or the hidden files.
    assert placed_counts["records"] == 9
    assert placed_counts["decoded"] == 7  # the copy and the odd types reuse p1 and p2
    placed_rows, read_rows = image_table(spark, placed), image_table(spark, read)
    assert placed_rows == read_rows
    by_key = {row["key"]: row for row in placed_rows}
    assert by_key["ingest/bad-date.jpg"]["datetime_original"] is None
    assert by_key["ingest/odd-types.jpg"]["width"] is None
    assert by_key["ingest/p1.jpg"]["gps_latitude"] == 52.5
    assert by_key["ingest/p0.jpg"]["labels"][0]["parents"] == ["Animal"]


def test_a_first_local_run_places_copies_together_in_tasks_of_even_bytes(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path)
    sizes: dict[str, int] = {}
    for seed in range(18):
        data = jpeg_bytes(photo_like(120 + 37 * (seed % 7), 90 + 23 * (seed % 5), seed))
        add_image(store, f"ingest/p{seed:02d}.jpg", data)
        sizes["sha256:" + hashlib.sha256(data).hexdigest()] = len(data)
    for name in ("a", "b", "c"):
        add_image(store, f"ingest/copy-{name}.jpg", store.get_bytes("ingest/p03.jpg"))
    with session_settings(spark, LOCAL_PROCESS_SQL):
        counts = run_process(spark, store.uri(), PipelineConfig())
    assert counts["decoded"] == 18  # each copy in its content's task

    # Each task wrote the contents it decoded as one cache file: one file a task.
    parts = [pq.read_table(path) for path in (tmp_path / FEATURES_PREFIX).rglob("*.parquet")]
    assert len(parts) > 1
    loads = sorted(sum(sizes[c] for c in part.column("checksum").to_pylist()) for part in parts)
    assert sum(part.num_rows for part in parts) == 18
    # Largest content first, each to the lightest task: no two tasks differ by more than one
    # content (hash partitions of 120 photos in 6 tasks came out 18 to 25 photos).
    assert loads[-1] - loads[0] <= max(sizes.values())


@pytest.mark.parametrize(("photos", "tasks"), [(1, 1), (5, 5), (13, 13), (13, 2)])
def test_each_group_of_records_starts_as_one_partition_of_its_own(
    spark: SparkSession, tmp_path: Path, photos: int, tasks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny photos would make one task: ask for the tasks wanted.
    monkeypatch.setattr(stage, "partition_count", lambda *_: tasks)
    store = LocalStore(tmp_path)
    for seed in range(photos):
        add_image(store, f"ingest/p{seed:02d}.jpg", jpeg_bytes(photo_like(64, 48, seed)))
    add_image(store, "ingest/copy.jpg", store.get_bytes("ingest/p00.jpg"))

    # Arrow batches of 2 rows: a group of more records must still be one partition.
    with session_settings(spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": "2"}):
        records = stage._records_by_content(spark, store)
        placed = records.select("key", "checksum", F.spark_partition_id().alias("p")).collect()
        assert spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch") == "2"

    assert records.rdd.getNumPartitions() == tasks
    # A partition for each group, every copy of a content in its group, no shuffle.
    assert len({row["p"] for row in placed}) == tasks
    partition_of = {row["checksum"]: row["p"] for row in placed}
    assert all(partition_of[row["checksum"]] == row["p"] for row in placed)
    assert len(placed) == photos + 1
    assert "Exchange" not in records._jdf.queryExecution().executedPlan().toString()
