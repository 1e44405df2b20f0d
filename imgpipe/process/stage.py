"""The process stage's run: read the records, decode what is new, rewrite ``processed/images/``.

Every ``metadata/**.json`` record becomes one row of the table; each image is decoded once on
the executors (thumbnail and features from the same pixels), thumbnails go to
``processed/thumbnails/`` through the store. An image that cannot be decoded keeps its row with
``process_error`` set; it never fails the stage. The EMR entry point
(``spark_jobs/process.py``) and the local runner both call :func:`run_process`.
"""

from __future__ import annotations

import logging
import uuid

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from imgpipe.config import PipelineConfig
from imgpipe.process.kernel import processing_settings, with_features
from imgpipe.process.manifest import inputs_fingerprint, unchanged_counts, write_manifest
from imgpipe.process.transforms import (
    flatten_records,
    partition_count,
    pending_images,
    retryable_error,
    to_feature_rows,
    to_image_table,
    with_cached_features,
)
from imgpipe.records import FEATURES_PREFIX, IMAGES_TABLE_PREFIX, METADATA_PREFIX
from imgpipe.spark_io import write_parquet_atomically
from imgpipe.store import open_store
from imgpipe.table import features_cache_schema, record_schema

LOG = logging.getLogger(__name__)


def read_records(spark: SparkSession, metadata_uri: str) -> DataFrame:
    """Every metadata JSON record under ``metadata_uri``; an absent prefix reads as empty."""
    reader = (
        spark.read.schema(record_schema())
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.json")
        .option("multiLine", "true")  # records are pretty-printed, one object per file
    )
    try:
        return reader.json(metadata_uri)
    except AnalysisException as exc:
        if exc.getCondition() != "PATH_NOT_FOUND":
            raise
        LOG.info("no records under %s: writing an empty image table", metadata_uri)
        return spark.createDataFrame([], record_schema())


def read_features(spark: SparkSession, features_uri: str, settings: str) -> DataFrame:
    """Cached features for ``settings``; none yet reads as empty."""
    schema = features_cache_schema()
    try:
        cached = (
            spark.read.schema(schema).option("recursiveFileLookup", "true").parquet(features_uri)
        )
    except AnalysisException as exc:
        if exc.getCondition() != "PATH_NOT_FOUND":
            raise
        cached = spark.createDataFrame([], schema)
    return cached.where(F.col("settings") == settings)


def run_process(spark: SparkSession, root: str, config: PipelineConfig) -> dict[str, int]:
    """Process new content under ``root`` and rewrite ``processed/images/``.

    Only checksums without cached features (for these settings) are decoded; everything else
    is joined from ``processed/features/``, so a re-run with no new images decodes nothing.
    When no record changed since the table was built (same keys, same content, same settings,
    nothing left to retry), the table is kept as it is and no Spark job runs at all.

    Returns:
        Counts: ``records`` (table rows), ``processed`` (rows with features), ``failed`` (rows
        with process_error), ``decoded`` (images decoded by this run).
    """
    store = open_store(root)
    settings = processing_settings(config)
    # Taken before the records are read: a record written meanwhile changes the next run's
    # fingerprint, so it can never be skipped.
    fingerprint = inputs_fingerprint(store, settings)
    unchanged = unchanged_counts(store, fingerprint)
    if unchanged is not None:
        LOG.info("process: no record changed since the table was built; kept %s", unchanged)
        return {**unchanged, "decoded": 0}
    features_uri = store.uri(FEATURES_PREFIX)
    records = flatten_records(read_records(spark, store.uri(METADATA_PREFIX)))
    todo = pending_images(records, read_features(spark, features_uri, settings)).cache()
    totals = todo.agg(
        F.count("*").alias("images"), F.count("size").alias("sized"), F.sum("size").alias("bytes")
    ).first()
    pending = int(totals["images"]) if totals else 0
    if totals and pending:
        # One record without a size makes the total unknown: partitions are counted then.
        total_bytes = int(totals["bytes"]) if totals["sized"] == pending else None
        partitions = partition_count(pending, spark.sparkContext.defaultParallelism, total_bytes)
        decoded = to_feature_rows(
            with_features(todo.repartition(partitions), root, config), settings
        )
        # A folder of its own per run: appends never touch what earlier runs wrote.
        run_folder = f"{FEATURES_PREFIX}run={uuid.uuid4().hex}/"
        decoded.write.mode("errorifexists").parquet(store.uri(run_folder))
    todo.unpersist()
    joined = with_cached_features(records, read_features(spark, features_uri, settings))
    table_uri = store.uri(IMAGES_TABLE_PREFIX)
    # Staged, then swapped in: a run killed while writing leaves the previous table whole.
    write_parquet_atomically(spark, to_image_table(joined), table_uri)
    row = (
        spark.read.parquet(table_uri)
        .agg(
            F.count("*").alias("records"),
            F.count("process_error").alias("failed"),
            F.count("thumbnail_key").alias("processed"),
            F.count(F.when(retryable_error(), True)).alias("retryable"),
        )
        .first()
    )
    counts = {
        "records": int(row["records"]) if row else 0,
        "processed": int(row["processed"]) if row else 0,
        "failed": int(row["failed"]) if row else 0,
    }
    if row is None or not row["retryable"]:
        # Inside the table's folder: it is swapped out together with the table it describes.
        write_manifest(store, fingerprint, counts)
    LOG.info("process: %s -> %s", counts, table_uri)
    return {**counts, "decoded": pending}
