"""The process stage's Spark transforms: ``DataFrame -> DataFrame``, no I/O, no session."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from imgpipe.process.kernel import COPY_KEYS, FEATURE_NAMES
from imgpipe.records import Reason
from imgpipe.table import features_cache_schema, image_table_schema

# Entropy decoding dominates the kernel, so a task's time follows its compressed bytes, not its
# image count: 64 MiB is ~25 12-MP photos or ~700 640 px images, about a second of CPU either
# way - short enough to balance across cores and cheap to retry, long enough to amortise the
# per-task cost (~0.15 s of Python worker CPU, measured) that count-sized tasks of small images
# paid over and over (157 tasks for 10,000 640 px images of ~90 KB, now 14).
TARGET_PARTITION_BYTES = 64 * 1024 * 1024
# Without sizes (records missing ``size``) fall back to counting: 64 photos is a few seconds.
MAX_IMAGES_PER_PARTITION = 64
TASKS_PER_CORE = 2


def flatten_records(records: DataFrame, keep: Sequence[str] = ()) -> DataFrame:
    """Records -> the table's record columns (EXIF flattened, ISO strings as timestamps).

    Records without a key or checksum (unparseable JSON) cannot identify an image and are dropped.
    The columns named in ``keep`` follow the record columns unchanged.
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
        *keep,
    )


def to_image_table(df: DataFrame) -> DataFrame:
    """Stamp ``processed_at`` and select exactly the image table's columns, in order."""
    stamped = df.withColumn("processed_at", F.current_timestamp())
    return stamped.select(*(F.col(name) for name in image_table_schema().fieldNames()))


def partition_count(records: int, parallelism: int, total_bytes: int | None = None) -> int:
    """Enough partitions to keep every core busy, each about TARGET_PARTITION_BYTES of input.

    The count is rounded up to whole waves of ``parallelism`` tasks: 5 tasks on 2 cores would
    leave one core idle for the last one's time (~1 s of decoding).

    Args:
        records: Images to decode.
        parallelism: Tasks that run at once (cores).
        total_bytes: Their compressed size; None (unknown) sizes partitions by count instead,
            at most MAX_IMAGES_PER_PARTITION each.
    """
    if records <= 0:
        return 1
    if total_bytes is None:
        by_size = math.ceil(records / MAX_IMAGES_PER_PARTITION)
    else:
        by_size = math.ceil(total_bytes / TARGET_PARTITION_BYTES)
    waves = math.ceil(max(parallelism * TASKS_PER_CORE, by_size) / parallelism)
    return min(records, waves * parallelism)


def balanced_groups(contents: Sequence[tuple[str | None, int]], groups: int) -> list[int]:
    """For each record, given as (checksum, size), a group in ``range(groups)``.

    Copies (records of one checksum) share a group, so one task decodes their content once,
    and the groups hold even bytes of content: each content, largest first, goes to the
    lightest group so far (longest-processing-time first). Records without a checksum share
    one content.
    """
    weights = content_weights(contents)
    loads = [(0, group) for group in range(groups)]  # a heap of (bytes, group)
    group_of: dict[str | None, int] = {}
    for checksum, weight in sorted(weights.items(), key=lambda item: -item[1]):
        load, group = heapq.heappop(loads)
        group_of[checksum] = group
        heapq.heappush(loads, (load + weight, group))
    return [group_of[checksum] for checksum, _ in contents]


def content_weights(contents: Sequence[tuple[str | None, int]]) -> dict[str | None, int]:
    """Each content's bytes to decode, from its records' (checksum, size).

    A content is decoded once: it weighs its size, not its copies' (the largest size, if its
    records disagree).
    """
    weights: dict[str | None, int] = {}
    for checksum, size in contents:
        weights[checksum] = max(weights.get(checksum, 0), size)
    return weights


def pending_images(records: DataFrame, known: DataFrame) -> DataFrame:
    """One row per content checksum that has no cached features yet (copies decode once).

    Each row lists every copy's key (``COPY_KEYS``, smallest first, ``key`` the smallest): the
    kernel reads the first that is still in the store.
    """
    distinct = records.groupBy("checksum").agg(
        F.array_sort(F.collect_set("key")).alias(COPY_KEYS),
        F.first("orientation").alias("orientation"),
        F.max("size").alias("size"),  # same content, same size: any copy's will do
    )
    pending = distinct.join(known.select("checksum"), on="checksum", how="left_anti")
    key = F.element_at(COPY_KEYS, 1).alias("key")
    return pending.select(key, "checksum", "orientation", "size", COPY_KEYS)


def retryable_error() -> Column:
    """True for a row whose image was missing from the store (``kernel.is_retryable``)."""
    return F.col("process_error").startswith(Reason.UNREADABLE.value)


def table_counts() -> list[Column]:
    """The image table's counts as aggregate columns (``COUNT_NAMES`` and ``retryable``)."""
    return [
        F.count(F.lit(1)).alias("records"),
        F.count("thumbnail_key").alias("processed"),
        F.count("process_error").alias("failed"),
        F.count(F.when(retryable_error(), True)).alias("retryable"),
    ]


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
    features = known.withColumn("rank", F.row_number().over(newest)).where(F.col("rank") == 1)
    joined = records.join(features.select("checksum", *FEATURE_NAMES), on="checksum", how="left")
    missing = F.when(
        F.col("thumbnail_key").isNull() & F.col("process_error").isNull(),
        F.lit(f"{Reason.UNREADABLE.value}: the image could not be read when it was processed"),
    )
    return joined.withColumn("process_error", F.coalesce(F.col("process_error"), missing))
