"""A table write killed halfway leaves the old table whole; the re-run replaces it cleanly."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from pyspark.sql import SparkSession

from imgpipe.spark_io import STAGING_FOLDER, write_parquet_atomically

pytestmark = pytest.mark.spark


def explode_on(bad: int) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if bad in batch.column("id").to_pylist():
                raise RuntimeError("killed mid-write")
            yield batch

    return run


def test_failed_write_leaves_the_old_table_and_rerun_replaces_it(
    spark: SparkSession, tmp_path: Path
) -> None:
    uri = (tmp_path / "processed" / "images").as_uri()
    write_parquet_atomically(spark, spark.range(5), uri)
    # Several partitions: some tasks finish and write files before another one dies.
    doomed = spark.range(100, 200, numPartitions=4)
    with pytest.raises(Exception, match="killed mid-write"):
        write_parquet_atomically(spark, doomed.mapInArrow(explode_on(180), doomed.schema), uri)
    assert sorted(r.id for r in spark.read.parquet(uri).collect()) == [0, 1, 2, 3, 4]

    write_parquet_atomically(spark, spark.range(100, 200, numPartitions=4), uri)
    ids = [r.id for r in spark.read.parquet(uri).collect()]
    assert sorted(ids) == list(range(100, 200))  # all rows, none twice, none of the old ones
    staging = tmp_path / "processed" / STAGING_FOLDER
    assert not staging.exists() or list(staging.iterdir()) == []


def test_first_write_creates_the_table(spark: SparkSession, tmp_path: Path) -> None:
    uri = (tmp_path / "t").as_uri()
    write_parquet_atomically(spark, spark.range(3), uri)
    assert spark.read.parquet(uri).count() == 3
