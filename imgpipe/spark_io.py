"""Atomic table writes for Spark jobs: readers never see a half-written table.

Spark's ``mode("overwrite")`` deletes the old files before it writes the new ones, so a job
killed mid-write leaves a partial table behind. Here the new table is written to a staging
folder first and swapped into place only once it is complete: a job killed while writing
leaves the old table whole, and the next run clears the leftover staging folder.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

STAGING_FOLDER = "_staging"  # "_" prefix: Spark's file listing skips it, so do readers


def _filesystem(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """The Hadoop FileSystem serving ``uri`` and the JVM Path class (local, HDFS, S3)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "needs an active SparkContext"
    path_class = jvm.org.apache.hadoop.fs.Path
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    return path_class(uri).getFileSystem(conf), path_class


def write_parquet_atomically(spark: SparkSession, df: DataFrame, uri: str) -> None:
    """Replace the Parquet table at ``uri`` with ``df``, all at once or not at all.

    The table is written to ``<parent>/_staging/<name>-<id>/``; when that job has committed,
    the old table is moved aside, the new one moved into place and the old one deleted.
    On S3 a "move" is a copy and a delete, so there the swap narrows the window in which a
    reader can see no table rather than closing it; a failed write never touches the table.
    """
    fs, path_class = _filesystem(spark, uri)
    target = path_class(uri.rstrip("/"))
    staging_root = path_class(target.getParent(), STAGING_FOLDER)
    token = uuid.uuid4().hex
    staged = path_class(staging_root, f"{target.getName()}-{token}")
    retired = path_class(staging_root, f"{target.getName()}-{token}-old")
    _clear_leftovers(fs, staging_root, target.getName())
    df.write.mode("errorifexists").parquet(staged.toString())
    if fs.exists(target) and not fs.rename(target, retired):
        raise OSError(f"could not move the old table {uri} aside")
    if not fs.rename(staged, target):
        # Put the old table back rather than leave none.
        if fs.exists(retired):
            fs.rename(retired, target)
        raise OSError(f"could not move the new table into {uri}")
    fs.delete(retired, True)


def _clear_leftovers(fs: Any, staging_root: Any, name: str) -> None:
    """Delete staging folders that a killed run of this table left behind."""
    if not fs.exists(staging_root):
        return
    for status in fs.listStatus(staging_root):
        if status.getPath().getName().startswith(f"{name}-"):
            fs.delete(status.getPath(), True)
