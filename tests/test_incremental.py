"""Incremental processing: only content without cached features is decoded.

The images decoded are counted by the job itself (``decoded``) and, independently, by the
thumbnails' modification times: a content that is not decoded is not written again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from imgpipe.config import PipelineConfig
from imgpipe.store import LocalStore
from spark_jobs.process import run_process
from tests.imagefactory import jpeg_bytes, photo_like
from tests.test_process_job import add_image

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
