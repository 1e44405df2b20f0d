"""The process stage's fixed cost in a local run: few Spark jobs, the records hashed once.

Jobs are counted by Spark's own status tracker, for the stage as the local runner runs it
(``LOCAL_PROCESS_SQL``): a first run decodes every record in one pass as it writes the table
(no aggregate, no join), and the table's counts come from the write itself.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from imgpipe.config import PipelineConfig
from imgpipe.process import stage
from imgpipe.process.kernel import FEATURE_NAMES, processing_settings
from imgpipe.process.stage import read_features, run_process
from imgpipe.records import FEATURES_PREFIX
from imgpipe.rerun import records_fingerprint
from imgpipe.spark import session_settings, task_slots
from imgpipe.stages import LOCAL_PROCESS_SQL
from imgpipe.store import LocalStore
from tests.imagefactory import jpeg_bytes, photo_like
from tests.tablefixtures import add_image

pytestmark = pytest.mark.spark


def add_photos(store: LocalStore, count: int, start: int = 0) -> None:
    for seed in range(start, start + count):
        add_image(store, f"ingest/p{seed:03d}.jpg", jpeg_bytes(photo_like(320, 240, seed)))


def spark_jobs(spark: SparkSession, work: Callable[[], Any]) -> tuple[int, Any]:
    """How many Spark jobs ``work`` ran, and what it returned."""
    context = spark.sparkContext
    group = f"counted-{uuid.uuid4().hex}"
    context.setJobGroup(group, "jobs counted by a test")
    try:
        result = work()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
    return len(context.statusTracker().getJobIdsForGroup(group)), result


def test_a_first_local_run_takes_one_spark_job(spark: SparkSession, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 5)
    with session_settings(spark, LOCAL_PROCESS_SQL):
        jobs, counts = spark_jobs(spark, lambda: run_process(spark, store.uri(), PipelineConfig()))
    assert counts == {"records": 5, "processed": 5, "failed": 0, "decoded": 5}
    # The decode with the table write (its counts observed); its tasks write the features
    # cache. Session 11: a second job read the table back for the cache. Before that: the
    # pending images' totals, the decode with its own features write, the features' broadcast
    # for a join back to the records, then the table write.
    assert jobs == 1


def test_a_first_run_decodes_each_content_once_and_caches_its_features(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 3)
    copy = store.get_bytes("ingest/p001.jpg")
    for name in ("copy-a.jpg", "copy-b.jpg"):
        add_image(store, f"ingest/{name}", copy)
    with session_settings(spark, LOCAL_PROCESS_SQL):
        counts = run_process(spark, store.uri(), PipelineConfig())
    assert counts == {"records": 5, "processed": 5, "failed": 0, "decoded": 3}
    rows = {row["key"]: row for row in spark.read.parquet(store.uri("processed/images/")).collect()}
    copies = [rows[key] for key in ("ingest/p001.jpg", "ingest/copy-a.jpg", "ingest/copy-b.jpg")]
    assert len({(row["checksum"], row["thumbnail_key"], row["phash"]) for row in copies}) == 1
    # The tasks cached each content once, with the features the table has.
    settings = processing_settings(PipelineConfig())
    cached = read_features(spark, store.uri(FEATURES_PREFIX), settings)
    assert cached is not None
    by_checksum = {row["checksum"]: row for row in cached.collect()}
    assert len(by_checksum) == cached.count() == 3
    for row in rows.values():
        features = by_checksum[row["checksum"]]
        assert all(features[name] == row[name] for name in FEATURE_NAMES), row["key"]
        assert features["computed_at"] is not None
    # A later run with one new photo decodes only that one: the rest comes from the cache.
    add_photos(store, 1, start=3)
    with session_settings(spark, LOCAL_PROCESS_SQL):
        again = run_process(spark, store.uri(), PipelineConfig())
    assert again == {"records": 6, "processed": 6, "failed": 0, "decoded": 1}


def test_session_settings_are_restored_after_the_stage(spark: SparkSession) -> None:
    before = spark.conf.get("spark.sql.adaptive.enabled")
    with session_settings(spark, {"spark.sql.adaptive.enabled": "false"}):
        assert spark.conf.get("spark.sql.adaptive.enabled") == "false"
    assert spark.conf.get("spark.sql.adaptive.enabled") == before


def test_session_settings_are_restored_when_the_stage_fails(spark: SparkSession) -> None:
    before = spark.conf.get("spark.sql.adaptive.enabled")
    with (
        pytest.raises(ValueError),
        session_settings(spark, {"spark.sql.adaptive.enabled": "false"}),
    ):
        raise ValueError("the stage failed")
    assert spark.conf.get("spark.sql.adaptive.enabled") == before


def test_session_settings_make_no_jvm_call_while_an_interrupt_unwinds(spark: SparkSession) -> None:
    # A Ctrl-C can cut a py4j call off mid-answer; the run ends, so nothing is worth a new call.
    name = "spark.sql.adaptive.enabled"
    before = spark.conf.get(name)
    with pytest.raises(KeyboardInterrupt), session_settings(spark, {name: "false"}):
        raise KeyboardInterrupt
    assert spark.conf.get(name) == "false"
    spark.conf.set(name, before)


def test_the_runners_fingerprint_spares_hashing_the_records_again(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    add_photos(store, 3)
    config = PipelineConfig()
    fingerprint = records_fingerprint(store, config)

    def hashed_again(*_: object) -> str:
        raise AssertionError("the records were listed and hashed a second time")

    with monkeypatch.context() as patch:
        patch.setattr(stage, "inputs_fingerprint", hashed_again)
        counts = run_process(spark, store.uri(), config, fingerprint=fingerprint)
    assert counts == {"records": 3, "processed": 3, "failed": 0, "decoded": 3}
    # The manifest holds the fingerprint given: a run that hashes the records itself finds
    # nothing changed, and runs no Spark job at all.
    jobs, again = spark_jobs(spark, lambda: run_process(spark, store.uri(), config))
    assert again == {"records": 3, "processed": 3, "failed": 0, "decoded": 0}
    assert jobs == 0


def test_a_local_run_over_no_records_counts_an_empty_table(
    spark: SparkSession, tmp_path: Path
) -> None:
    (tmp_path / "metadata").mkdir()
    with session_settings(spark, LOCAL_PROCESS_SQL):
        counts = run_process(spark, str(tmp_path), PipelineConfig())
    assert counts == {"records": 0, "processed": 0, "failed": 0, "decoded": 0}
    assert spark.read.parquet((tmp_path / "processed" / "images").as_uri()).count() == 0


def test_local_workers_import_pyspark_from_the_environment(spark: SparkSession) -> None:
    # Not from Spark's zip: every task re-reads each archive on the path (imgpipe.local_daemon).
    paths = spark.sparkContext.parallelize([0], 1).map(lambda _: list(sys.path)).first()
    assert not [entry for entry in paths if entry.endswith((".zip", ".jar")) and "pyspark" in entry]


def test_the_decode_is_sized_for_the_local_sessions_cores(spark: SparkSession) -> None:
    # The test session runs 2 cores; its default parallelism (4) is for small shuffles.
    assert spark.sparkContext.defaultParallelism == 4
    assert task_slots(spark) == 2


def test_the_local_jvm_reserves_room_for_spark_generated_code(spark: SparkSession) -> None:
    # C1 alone reserves 48 MB, which a long session's generated classes filled: the JVM died
    # ("Out of space in CodeCache for adapters"). IMGPIPE_JVM_OPTIONS, after it, may override.
    options = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions") or ""
    user = os.environ.get("IMGPIPE_JVM_OPTIONS", "-XX:TieredStopAtLevel=1")
    assert "-XX:ReservedCodeCacheSize=240m " in options
    assert options.endswith(f"-XX:ReservedCodeCacheSize=240m {user}")
