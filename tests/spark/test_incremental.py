"""Incremental processing: only content without cached features is decoded.

The images decoded are counted by the job itself (``decoded``) and, independently, by the
thumbnails' modification times: a content that is not decoded is not written again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from imgpipe.config import PipelineConfig
from imgpipe.process import stage
from imgpipe.process.manifest import INPUTS_MANIFEST
from imgpipe.process.stage import run_process
from imgpipe.records import metadata_key
from imgpipe.store import LocalStore
from tests.imagefactory import jpeg_bytes, photo_like
from tests.tablefixtures import add_image

pytestmark = pytest.mark.spark


def add_photos(store: LocalStore, start: int, count: int) -> None:
    for seed in range(start, start + count):
        add_image(store, f"ingest/p{seed:03d}.jpg", jpeg_bytes(photo_like(320, 240, seed)))


def thumbnail_times(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (root / "processed/thumbnails").glob("*.jpg")}


def table_count(spark: SparkSession, store: LocalStore) -> int:
    return spark.read.parquet(store.uri("processed/images/")).count()


def test_rerun_without_new_images_decodes_nothing(spark: SparkSession, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 6)
    assert run_process(spark, store.uri(), PipelineConfig())["decoded"] == 6
    before = thumbnail_times(tmp_path)
    again = run_process(spark, store.uri(), PipelineConfig())
    assert again == {"records": 6, "processed": 6, "failed": 0, "decoded": 0}
    assert thumbnail_times(tmp_path) == before
    assert table_count(spark, store) == 6


def test_new_images_cost_in_proportion_to_their_number(spark: SparkSession, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 5)
    run_process(spark, store.uri(), PipelineConfig())
    before = thumbnail_times(tmp_path)
    add_photos(store, 100, 2)
    counts = run_process(spark, store.uri(), PipelineConfig())
    assert counts["decoded"] == 2 and counts["records"] == 7
    after = thumbnail_times(tmp_path)
    assert len(after) == 7
    assert {name: after[name] for name in before} == before  # the old five were not redone
    assert table_count(spark, store) == 7


def test_a_copy_under_a_new_key_reuses_the_features(spark: SparkSession, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 2)
    run_process(spark, store.uri(), PipelineConfig())
    add_image(store, "ingest/elsewhere/copy.jpg", store.get_bytes("ingest/p000.jpg"))
    counts = run_process(spark, store.uri(), PipelineConfig())
    assert (counts["decoded"], counts["records"], counts["processed"]) == (0, 3, 3)


def test_changed_thumbnail_settings_decode_everything_again(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 3)
    run_process(spark, store.uri(), PipelineConfig())
    counts = run_process(spark, store.uri(), PipelineConfig(thumbnail_size=128))
    assert counts["decoded"] == 3
    widths = {
        row["thumbnail_width"]
        for row in spark.read.parquet(store.uri("processed/images/")).collect()
    }
    assert widths == {128}


def table_files(root: Path) -> dict[str, int]:
    table = root / "processed/images"
    return {p.name: p.stat().st_mtime_ns for p in table.iterdir()}


def test_rerun_without_changed_records_keeps_the_table_as_it_is(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 3)
    first = run_process(spark, store.uri(), PipelineConfig())
    before = table_files(tmp_path)
    again = run_process(spark, store.uri(), PipelineConfig())
    assert again == {**first, "decoded": 0}
    assert table_files(tmp_path) == before  # not rewritten: same files, same times


def test_a_changed_record_rebuilds_the_table_without_decoding(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 2)
    run_process(spark, store.uri(), PipelineConfig())
    # Same image bytes, new record content (e.g. a creator fixed and the image re-ingested).
    add_image(store, "ingest/p001.jpg", store.get_bytes("ingest/p001.jpg"), creator="bob")
    counts = run_process(spark, store.uri(), PipelineConfig())
    assert counts["decoded"] == 0
    creators = {
        row["key"]: row["creator"]
        for row in spark.read.parquet(store.uri("processed/images/")).collect()
    }
    assert creators == {"ingest/p000.jpg": "alice", "ingest/p001.jpg": "bob"}


def test_a_removed_record_rebuilds_the_table(spark: SparkSession, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 3)
    run_process(spark, store.uri(), PipelineConfig())
    store.path(metadata_key("ingest/p002.jpg")).unlink()
    assert run_process(spark, store.uri(), PipelineConfig())["records"] == 2
    assert table_count(spark, store) == 2


def test_an_image_missing_when_processed_is_retried_when_it_is_back(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 2)
    data = store.get_bytes("ingest/p001.jpg")
    store.path("ingest/p001.jpg").unlink()
    first = run_process(spark, store.uri(), PipelineConfig())
    assert (first["processed"], first["failed"]) == (1, 1)
    store.put_bytes("ingest/p001.jpg", data)  # the record did not change, the object is back
    again = run_process(spark, store.uri(), PipelineConfig())
    assert (again["processed"], again["failed"], again["decoded"]) == (2, 0, 1)


def test_a_damaged_manifest_only_costs_a_rebuild(spark: SparkSession, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 2)
    first = run_process(spark, store.uri(), PipelineConfig())
    store.put_bytes(INPUTS_MANIFEST, b"{not json")
    before = table_files(tmp_path)
    assert run_process(spark, store.uri(), PipelineConfig()) == {**first, "decoded": 0}
    assert table_files(tmp_path) != before  # rebuilt, and a valid manifest written again
    assert run_process(spark, store.uri(), PipelineConfig()) == {**first, "decoded": 0}


def test_a_first_run_killed_before_its_manifest_is_rebuilt_from_the_cached_features(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 0, 2)

    def killed(*_: object) -> None:
        raise RuntimeError("killed")  # the run stops after the table was swapped in

    with monkeypatch.context() as patch:
        patch.setattr(stage, "write_manifest", killed)
        with pytest.raises(RuntimeError, match="killed"):
            run_process(spark, store.uri(), PipelineConfig())
    assert table_count(spark, store) == 2 and store.get_bytes_or_none(INPUTS_MANIFEST) is None
    # Nothing records that the table is complete: the next run builds it again, from the
    # features the first run's tasks cached (nothing decoded twice), then says so.
    again = run_process(spark, store.uri(), PipelineConfig())
    assert again == {"records": 2, "processed": 2, "failed": 0, "decoded": 0}
    assert store.get_bytes_or_none(INPUTS_MANIFEST) is not None
    assert run_process(spark, store.uri(), PipelineConfig()) == again


@pytest.mark.parametrize("path", ["placed", "spark-read", "later-run"])
@pytest.mark.parametrize(("gone", "kept"), [("a.jpg", "b.jpg"), ("b.jpg", "a.jpg")])
def test_an_image_gone_from_the_store_gets_the_features_of_a_copy_that_is_not(
    spark: SparkSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    gone: str,
    kept: str,
) -> None:
    # Features belong to a content: whichever copy the kernel meets first, and whichever way
    # the records came in (placed by the driver, read by Spark, pending in a later run).
    store = LocalStore(tmp_path)
    earlier = 0
    if path == "later-run":
        add_photos(store, 0, 1)
        run_process(spark, store.uri(), PipelineConfig())  # the features cache exists
        earlier = 1
    if path == "spark-read":
        monkeypatch.setattr(stage, "DRIVER_READ_MAX_RECORDS", 0)
    data = jpeg_bytes(photo_like(320, 240, 7))
    add_image(store, f"ingest/{gone}", data)
    add_image(store, f"ingest/{kept}", data)
    store.path(f"ingest/{gone}").unlink()

    counts = run_process(spark, store.uri(), PipelineConfig())

    assert counts == {"records": 2 + earlier, "processed": 2 + earlier, "failed": 0, "decoded": 1}
    rows = {
        row["key"]: row.asDict()
        for row in spark.read.parquet(store.uri("processed/images/")).collect()
    }
    assert rows[f"ingest/{gone}"]["process_error"] is None
    assert rows[f"ingest/{gone}"]["phash"] == rows[f"ingest/{kept}"]["phash"] is not None
