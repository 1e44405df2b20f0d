"""The process stage's run: read the records, decode what is new, rewrite ``processed/images/``.

Every ``metadata/**.json`` record becomes one row of the table; each image is decoded once on
the executors (thumbnail and features from the same pixels), thumbnails go to
``processed/thumbnails/`` through the store. An image that cannot be decoded keeps its row with
``process_error`` set; it never fails the stage. The EMR entry point
(``spark_jobs/process.py``) and the local runner both call :func:`run_process`.
"""

from __future__ import annotations

import json
import logging
import uuid

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from imgpipe.config import PipelineConfig
from imgpipe.process.kernel import processing_settings, with_features
from imgpipe.process.manifest import (
    COUNT_NAMES,
    inputs_fingerprint,
    unchanged_counts,
    write_manifest,
)
from imgpipe.process.transforms import (
    balanced_groups,
    content_weights,
    flatten_records,
    partition_count,
    pending_images,
    table_counts,
    to_feature_rows,
    to_image_table,
    with_cached_features,
)
from imgpipe.records import FEATURES_PREFIX, IMAGES_TABLE_PREFIX, INGEST_PREFIX, METADATA_PREFIX
from imgpipe.spark import session_settings, task_slots
from imgpipe.spark_io import write_parquet_atomically
from imgpipe.store import LocalStore, Store, open_store
from imgpipe.table import features_cache_schema, record_schema

LOG = logging.getLogger(__name__)
# A local first run of up to this many records reads them on the driver: they are files on this
# machine (~0.1 ms each), while Spark's JSON source costs a young JVM 1-2 s to start. Knowing
# each record before the decode, the driver also places them (balanced_groups): hash partitions
# by checksum came out 18-25 photos a task for 120 photos in 6 tasks, leaving a core idle at the
# end. Beyond this, or on S3 (EMR), Spark reads the records.
DRIVER_READ_MAX_RECORDS = 20_000
# A first run's marker of the rows whose image the kernel went to read (not the copies that
# reused it): counted while the table is written, not kept in it.
_DECODED = "_decoded"


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


def read_features(spark: SparkSession, features_uri: str, settings: str) -> DataFrame | None:
    """Cached features for ``settings``; None before any run cached some.

    None rather than an empty DataFrame: an empty one made on the driver is an RDD that Spark
    cannot see is empty, so a first run would pay a join (and its jobs) against nothing.
    """
    try:
        cached = (
            spark.read.schema(features_cache_schema())
            .option("recursiveFileLookup", "true")
            .parquet(features_uri)
        )
    except AnalysisException as exc:
        if exc.getCondition() != "PATH_NOT_FOUND":
            raise
        return None
    return cached.where(F.col("settings") == settings)


def run_process(
    spark: SparkSession, root: str, config: PipelineConfig, fingerprint: str | None = None
) -> dict[str, int]:
    """Process new content under ``root`` and rewrite ``processed/images/``.

    A first run (no features cached yet) sends every record through the kernel in one pass,
    whose tasks also write the features cache. Later runs decode only the checksums
    without cached features (for these settings) and join everything else from
    ``processed/features/``, so a re-run with no new images decodes nothing.
    When no record changed since the table was built (same keys, same content, same settings,
    nothing left to retry), the table is kept as it is and no Spark job runs at all.

    Args:
        spark: The session.
        root: The store's root (a local folder or ``s3://BUCKET``).
        config: Thumbnail and decoding settings.
        fingerprint: :func:`~imgpipe.process.manifest.inputs_fingerprint` of the records, when
            the caller has just computed it (the local runner does); computed here otherwise.
            It must be taken before this call reads the records.

    Returns:
        Counts: ``records`` (table rows), ``processed`` (rows with features), ``failed`` (rows
        with process_error), ``decoded`` (images decoded by this run).
    """
    store = open_store(root)
    settings = processing_settings(config)
    # Taken before the records are read: a record written meanwhile changes the next run's
    # fingerprint, so it can never be skipped.
    if fingerprint is None:
        fingerprint = inputs_fingerprint(store, settings)
    unchanged = unchanged_counts(store, fingerprint)
    if unchanged is not None:
        LOG.info("process: no record changed since the table was built; kept %s", unchanged)
        return {**unchanged, "decoded": 0}
    known = read_features(spark, store.uri(FEATURES_PREFIX), settings)
    observation = Observation("image_table")
    pending = 0
    if known is None:
        # Nothing to reuse: every record goes through the kernel in one pass.
        records = _records_by_content(spark, store)
        rows = _decode_all(store, records, config)
        metrics = [*table_counts(), F.count(_DECODED).alias("decoded")]
    else:
        # Read once: the pending images and the table are both built from the same records.
        records = flatten_records(read_records(spark, store.uri(METADATA_PREFIX))).cache()
        pending, features = _decode_pending(spark, store, records, known, config, settings)
        rows = with_cached_features(records, features)
        metrics = table_counts()
    table_uri = store.uri(IMAGES_TABLE_PREFIX)
    # Staged, then swapped in: a run killed while writing leaves the previous table whole.
    # The counts are observed while the table is written: no second pass reads it back.
    write_parquet_atomically(spark, to_image_table(rows.observe(observation, *metrics)), table_uri)
    records.unpersist()
    observed = observation.get
    counts = {name: int(observed.get(name) or 0) for name in COUNT_NAMES}
    # A first run counts its decodes as it writes; a later one knew them before it decoded.
    decoded = pending if known is not None else int(observed.get("decoded") or 0)
    if not observed.get("retryable"):
        # Inside the table's folder: it is swapped out together with the table it describes.
        # Written last: a run killed before it is never taken for a complete one.
        write_manifest(store, fingerprint, counts)
    LOG.info("process: %s -> %s", counts, table_uri)
    return {**counts, "decoded": decoded}


def _decode_all(store: Store, records: DataFrame, config: PipelineConfig) -> DataFrame:
    """Every record with its features, for a first run: one pass, no aggregate, no join.

    ``records`` come partitioned so that the copies of one content meet in one task
    (:func:`_records_by_content`), which decodes it once and writes its contents' features to
    the cache (a folder of this run's) when done: the cache costs no Spark job of its own.
    """
    return with_features(
        records,
        store.uri(),
        config,
        decoded_column=_DECODED,
        features_prefix=_new_features_folder(),
    )


def _records_by_content(spark: SparkSession, store: Store) -> DataFrame:
    """The flattened records, partitioned so that the copies of one content share a task.

    A local store's records (up to :data:`DRIVER_READ_MAX_RECORDS`) are read on the driver,
    which sizes the tasks from their contents and places them in tasks of even bytes.
    Otherwise Spark reads them and partitions them by checksum, the tasks sized from the
    listing of ``ingest/`` (its objects' count and bytes, quarantined ones included: an
    overestimate, at worst a few more tasks) rather than from the records, whose totals would
    cost a Spark job of their own before the decode could start.
    """
    if isinstance(store, LocalStore):
        keys = _record_keys(store)
        if len(keys) <= DRIVER_READ_MAX_RECORDS:
            return _placed_records(spark, store, keys)
    images, total_bytes = ingest_totals(store)
    partitions = partition_count(images, task_slots(spark), total_bytes)
    records = flatten_records(read_records(spark, store.uri(METADATA_PREFIX)))
    return records.repartition(partitions, "checksum")


def _placed_records(spark: SparkSession, store: LocalStore, keys: list[str]) -> DataFrame:
    """The records at ``keys``, read here and handed to Spark one partition per task's group.

    Each group (:func:`~imgpipe.process.transforms.balanced_groups`) is one Arrow batch, and
    Spark makes an Arrow table above ``localRelationThreshold`` bytes into one partition per
    batch: the records start in their tasks, with no shuffle to get there.
    Spark still parses them (``from_json`` with the record schema: the same parser and the
    same leniency as its JSON source), so a record reads the same whichever way it came in.
    """
    import pyarrow as pa

    texts = [store.get_bytes(key).decode("utf-8", "replace") for key in keys]
    contents = [_content_of(text) for text in texts]
    weights = content_weights(contents)
    partitions = partition_count(len(weights), task_slots(spark), sum(weights.values()))
    groups = balanced_groups(contents, partitions)
    members: list[list[str]] = [[] for _ in range(partitions)]
    for text, group in zip(texts, groups, strict=True):
        members[group].append(text)
    schema = pa.schema([pa.field("record", pa.string())])
    table = pa.Table.from_batches(
        [pa.record_batch([pa.array(group, pa.string())], schema=schema) for group in members],
        schema,
    )
    # pyspark cuts the table into batches of at most maxRecordsPerBatch rows (64 in a local
    # session), "one batch per partition" above localRelationThreshold bytes (below it, a local
    # relation that Spark splits as it likes): each group must stay one batch.
    largest = max(map(len, members))
    with session_settings(
        spark,
        {
            "spark.sql.execution.arrow.localRelationThreshold": "0",
            "spark.sql.execution.arrow.maxRecordsPerBatch": str(max(largest, 1)),
        },
    ):
        frame = spark.createDataFrame(table)
    parsed = frame.select(F.from_json("record", record_schema()).alias("r"))
    return flatten_records(parsed.select("r.*"))


def _record_keys(store: Store) -> list[str]:
    """The record files Spark's JSON source would read: ``*.json``, in no folder it skips."""
    return [
        key
        for key in store.list_keys(METADATA_PREFIX)
        if key.endswith(".json")
        and not any(map(_skipped_by_spark, key.removeprefix(METADATA_PREFIX).split("/")))
    ]


def _skipped_by_spark(name: str) -> bool:
    """Spark's rule for the files and folders a file source leaves out of its listing.

    Hidden (``.``), temporary (``_``, but not a ``_name=value`` partition folder) and files
    being copied; ``_metadata`` and ``_common_metadata`` are kept for Parquet. Spark's own
    ``HadoopFSUtils.shouldFilterOutPathName`` is JVM-side and not exposed to Python.
    """
    skipped = (
        (name.startswith("_") and "=" not in name)
        or name.startswith(".")
        or name.endswith("._COPYING_")
    )
    return skipped and not name.startswith(("_common_metadata", "_metadata"))


def _content_of(text: str) -> tuple[str | None, int]:
    """A record's checksum and size, to place it; a record that does not parse weighs nothing."""
    try:
        record = json.loads(text)
        checksum, size = record.get("checksum"), record.get("size")
    except (ValueError, AttributeError, RecursionError):  # not JSON, not an object, too deep
        return None, 0
    return (
        checksum if isinstance(checksum, str) else None,
        size if isinstance(size, int) and not isinstance(size, bool) else 0,
    )


def _new_features_folder() -> str:
    """A features-cache folder of this run's own: appends never touch what earlier runs wrote."""
    return f"{FEATURES_PREFIX}run={uuid.uuid4().hex}/"


def ingest_totals(store: Store) -> tuple[int, int]:
    """How many objects ``ingest/`` holds, and their bytes: from the listing, nothing read."""
    sizes = [size for _, size in store.list_sizes(INGEST_PREFIX)]
    return len(sizes), sum(sizes)


def _decode_pending(
    spark: SparkSession,
    store: Store,
    records: DataFrame,
    known: DataFrame,
    config: PipelineConfig,
    settings: str,
) -> tuple[int, DataFrame]:
    """Decode the content without cached features: how many, and every usable feature row.

    The new features are written to a folder of their own under ``processed/features/`` and
    read back from there alone; ``known`` keeps the listing of the earlier folders it was read
    with, so nothing is listed twice.
    """
    # Not cached: the totals and the decode each group the cached records again, cheaper than
    # caching the result (another plan and in-memory relation for a young JVM to build).
    todo = pending_images(records, known)
    totals = todo.agg(
        F.count("*").alias("images"), F.count("size").alias("sized"), F.sum("size").alias("bytes")
    ).first()
    pending = int(totals["images"]) if totals else 0
    if not totals or not pending:
        return 0, known
    # One record without a size makes the total unknown: partitions are counted then.
    total_bytes = int(totals["bytes"]) if totals["sized"] == pending else None
    partitions = partition_count(pending, task_slots(spark), total_bytes)
    decoded = to_feature_rows(
        with_features(todo.repartition(partitions), store.uri(), config), settings
    )
    run_uri = store.uri(_new_features_folder())
    decoded.write.mode("errorifexists").parquet(run_uri)
    new = read_features(spark, run_uri, settings)
    return pending, known if new is None else known.unionByName(new)
