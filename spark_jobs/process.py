"""The process job: image records + image bytes -> JPEG thumbnails + the Parquet image table.

Reads every ``metadata/**.json`` record, decodes each image once on the executors (thumbnail
and features from the same pixels), writes thumbnails to ``processed/thumbnails/`` through
the store and the table to ``processed/images/`` (overwritten, one row per record). An image
that cannot be decoded keeps its row with ``process_error`` set; it never fails the job.

Run on EMR Serverless as ``process.py --root s3://BUCKET [--thumbnail-size 512 ...]``; the local
runner calls :func:`run_process` with its own session.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from imgpipe.config import PipelineConfig, config_from_namespace
from imgpipe.jobs import job_parser
from imgpipe.records import (
    FEATURES_PREFIX,
    IMAGES_TABLE_PREFIX,
    METADATA_PREFIX,
    Reason,
    RejectedImage,
)
from imgpipe.records import thumbnail_key as make_thumbnail_key
from imgpipe.spark_io import write_parquet_atomically
from imgpipe.store import Store, open_store
from imgpipe.table import (
    feature_fields,
    features_cache_schema,
    image_table_schema,
    record_schema,
)

LOG = logging.getLogger(__name__)

APP_NAME = "imgpipe-process"
# Bump when the kernel's output changes, so cached features are recomputed.
KERNEL_VERSION = 2
# Entropy decoding dominates the kernel, so a task's time follows its compressed bytes, not its
# image count: 64 MiB is ~25 12-MP photos or ~700 640 px images, about a second of CPU either
# way - short enough to balance across cores and cheap to retry, long enough to amortise the
# per-task cost (~0.15 s of Python worker CPU, measured) that count-sized tasks of small images
# paid over and over (157 tasks for 10,000 640 px images of ~90 KB, now 14).
TARGET_PARTITION_BYTES = 64 * 1024 * 1024
# Without sizes (records missing ``size``) fall back to counting: 64 photos is a few seconds.
MAX_IMAGES_PER_PARTITION = 64
TASKS_PER_CORE = 2
# What the table was built from, inside the table's folder: the "_" prefix keeps Spark and
# Athena from reading it as data, and the atomic swap replaces it together with the table.
INPUTS_MANIFEST = f"{IMAGES_TABLE_PREFIX}_imgpipe_inputs.json"


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


def flatten_records(records: DataFrame) -> DataFrame:
    """Records -> the table's record columns (EXIF flattened, ISO strings as timestamps).

    Records without a key or checksum (unparseable JSON) cannot identify an image and are dropped.
    """
    return records.where(F.col("key").isNotNull() & F.col("checksum").isNotNull()).select(
        "key",
        "checksum",
        "size",
        "format",
        "width",
        "height",
        "orientation",
        "creator",
        "creator_source",
        F.col("exif.make").alias("camera_make"),
        F.col("exif.model").alias("camera_model"),
        # try_: a malformed date in one record's EXIF becomes null instead of failing the job.
        F.try_to_timestamp("exif.datetime_original").alias("datetime_original"),
        F.col("exif.gps.latitude").alias("gps_latitude"),
        F.col("exif.gps.longitude").alias("gps_longitude"),
        "labels",
        "labeler",
        "labeler_version",
        F.try_to_timestamp("ingested_at").alias("ingested_at"),
    )


def with_features(df: DataFrame, root: str, config: PipelineConfig) -> DataFrame:
    """Append the feature columns, decoding each image once on the executors.

    Needs ``key``, ``checksum`` and ``orientation``; writes each thumbnail to the store as a
    side effect (the only way to avoid a second decode). Arrow batches, not a row UDF.
    """
    schema = T.StructType([*df.schema.fields, *feature_fields()])
    return df.mapInArrow(_feature_batches(root, config), schema)


def to_image_table(df: DataFrame) -> DataFrame:
    """Stamp ``processed_at`` and select exactly the image table's columns, in order."""
    stamped = df.withColumn("processed_at", F.current_timestamp())
    return stamped.select(*(F.col(name) for name in image_table_schema().fieldNames()))


def partition_count(records: int, parallelism: int, total_bytes: int | None = None) -> int:
    """Enough partitions to keep every core busy, each about TARGET_PARTITION_BYTES of input.

    Args:
        records: Images to decode.
        parallelism: Cores (Spark's default parallelism).
        total_bytes: Their compressed size; None (unknown) sizes partitions by count instead,
            at most MAX_IMAGES_PER_PARTITION each.
    """
    if records <= 0:
        return 1
    if total_bytes is None:
        by_size = math.ceil(records / MAX_IMAGES_PER_PARTITION)
    else:
        by_size = math.ceil(total_bytes / TARGET_PARTITION_BYTES)
    return min(records, max(parallelism * TASKS_PER_CORE, by_size))


def processing_settings(config: PipelineConfig) -> str:
    """The settings that change the kernel's output: cached features are reused only on a match."""
    return f"kernel{KERNEL_VERSION}-t{config.thumbnail_size}-q{config.thumbnail_quality}"


def pending_images(records: DataFrame, known: DataFrame) -> DataFrame:
    """One row per content checksum that has no cached features yet (copies decode once)."""
    distinct = records.groupBy("checksum").agg(
        F.min("key").alias("key"),
        F.first("orientation").alias("orientation"),
        F.max("size").alias("size"),  # same content, same size: any copy's will do
    )
    return distinct.join(known.select("checksum"), on="checksum", how="left_anti").select(
        "key", "checksum", "orientation", "size"
    )


def retryable_error() -> Column:
    """True for a row whose image was missing from the store: it may come back, so retry it."""
    return F.col("process_error").startswith(Reason.UNREADABLE.value)


def to_feature_rows(df: DataFrame, settings: str) -> DataFrame:
    """Kernel output -> feature-cache rows. A missing object is not cached: it may come back."""
    cacheable = F.coalesce(~retryable_error(), F.lit(True))
    return (
        df.where(cacheable)
        .withColumn("settings", F.lit(settings))
        .withColumn("computed_at", F.current_timestamp())
        .select(*features_cache_schema().fieldNames())
    )


def with_cached_features(records: DataFrame, known: DataFrame) -> DataFrame:
    """Records joined to their content's features (newest when computed twice)."""
    newest = Window.partitionBy("checksum").orderBy(F.col("computed_at").desc())
    features = (
        known.withColumn("rank", F.row_number().over(newest))
        .where(F.col("rank") == 1)
        .select("checksum", *_FEATURE_NAMES)
    )
    missing = F.when(
        F.col("thumbnail_key").isNull() & F.col("process_error").isNull(),
        F.lit(f"{Reason.UNREADABLE.value}: the image could not be read when it was processed"),
    )
    return records.join(features, on="checksum", how="left").withColumn(
        "process_error", F.coalesce(F.col("process_error"), missing)
    )


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
        manifest = {"fingerprint": fingerprint, "counts": counts}
        store.put_bytes(INPUTS_MANIFEST, json.dumps(manifest).encode(), "application/json")
    LOG.info("process: %s -> %s", counts, table_uri)
    return {**counts, "decoded": pending}


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
    return {name: int(counts[name]) for name in ("records", "processed", "failed")}


_FEATURE_NAMES = [f.name for f in feature_fields()]
_ARROW_TYPES: dict[type[T.DataType], pa.DataType] = {
    T.IntegerType: pa.int32(),
    T.DoubleType: pa.float64(),
    T.StringType: pa.string(),
}


def _feature_batches(
    root: str, config: PipelineConfig
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow function; it runs on executors and opens its own store there."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import cv2

        # Spark already runs one task per core; OpenCV's own thread pool would oversubscribe.
        cv2.setNumThreads(1)
        store = open_store(root)
        arrow_types = [_ARROW_TYPES[type(f.dataType)] for f in feature_fields()]
        for batch in batches:
            rows = [
                _process_row(store, key, checksum, orientation, config)
                for key, checksum, orientation in zip(
                    batch.column("key").to_pylist(),
                    batch.column("checksum").to_pylist(),
                    batch.column("orientation").to_pylist(),
                    strict=True,
                )
            ]
            features = [
                pa.array([row.get(name) for row in rows], type=arrow_type)
                for name, arrow_type in zip(_FEATURE_NAMES, arrow_types, strict=True)
            ]
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, *features], names=[*batch.schema.names, *_FEATURE_NAMES]
            )

    return run


def _is_missing_object(exc: Exception) -> bool:
    if isinstance(exc, FileNotFoundError):
        return True
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in {"404", "NoSuchKey", "NotFound"}


def _process_row(
    store: Store, key: str, checksum: str, orientation: int | None, config: PipelineConfig
) -> dict[str, Any]:
    """Feature values of one image, or only ``process_error`` when it cannot be processed."""
    from imgpipe.imaging import process_image

    try:
        data = store.get_bytes(key)
    except Exception as exc:
        if not _is_missing_object(exc):
            raise  # access or network trouble affects every image: fail loudly, Spark retries
        return {"process_error": f"{Reason.UNREADABLE.value}: {key} is gone from the store"}
    try:
        result = process_image(data, config, orientation)
    except RejectedImage as exc:
        return {"process_error": f"{exc.reason.value}: {exc.message}"}
    except Exception as exc:  # one pathological file must not fail a whole collection's run
        LOG.warning("unexpected error processing %s", key, exc_info=True)
        return {
            "process_error": f"{Reason.UNDECODABLE.value}: unexpected {type(exc).__name__}: {exc}"
        }
    thumb_key = make_thumbnail_key(checksum)
    store.put_bytes(thumb_key, result.thumbnail, content_type="image/jpeg")
    features = result.features
    return {
        "display_width": features.display_width,
        "display_height": features.display_height,
        "megapixels": features.megapixels,
        "aspect": features.aspect,
        "phash": features.phash,
        "sharpness": features.sharpness,
        "brightness": features.brightness,
        "dominant_color": features.dominant_color,
        "thumbnail_key": thumb_key,
        "thumbnail_width": result.thumbnail_width,
        "thumbnail_height": result.thumbnail_height,
        "process_error": None,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The job's arguments (:mod:`imgpipe.jobs`), with the root and config validated."""
    parser = job_parser("process")
    args = parser.parse_args(argv)
    try:
        open_store(args.root)
        config_from_namespace(args)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point on EMR Serverless: parse arguments, run, print the counts as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = parse_args(argv)
    spark = SparkSession.builder.appName(APP_NAME).getOrCreate()
    counts = run_process(spark, args.root, config_from_namespace(args))
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
