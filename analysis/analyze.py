"""The analyze stage: SparkSQL over ``processed/images`` and the quarantine records.

Each analysis is one named SparkSQL query, ``analysis/sql/NAME.sql`` (see :data:`ANALYSES`),
over two temp views, ``images`` (the Parquet image table) and ``quarantine`` (the quarantine
JSON records), plus the helper views in :data:`VIEWS`. Queries take named parameters
(``:top_n``...) from :func:`query_parameters`. The results are small: each is collected to
pandas and written through the :class:`~imgpipe.store.Store` as
``reports/RUN_ID/tables/NAME.csv`` and ``NAME.parquet``.

The EMR entry point (``spark_jobs/analyze.py``) and the local runner both call
:func:`run_analyze`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis import tables_prefix
from imgpipe.config import PipelineConfig
from imgpipe.records import IMAGES_TABLE_PREFIX, QUARANTINE_PREFIX
from imgpipe.spark import INTERPRETED, session_settings
from imgpipe.store import Store, open_store
from imgpipe.table import image_table_schema, quarantine_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Helper views, registered in this order before the analyses run.
VIEWS = ("image_labels",)
# The analyses, in report order; each names its query file and its result table.
ANALYSES = (
    "overview",
    "top_labels",
    "label_parents",
    "label_categories",
    "label_pairs",
    "creators",
    "images_over_time",
    "cameras",
    "formats",
    "megapixels",
    "sharpness",
    "brightness",
    "quality",
    "exact_duplicates",
    "near_duplicates",
    "quarantine_reasons",
    "quarantine_list",
    "gallery",
)

# Quality thresholds. Sharpness is the variance of the Laplacian: below ~100 a photo looks
# soft at full size (the usual rule of thumb for this measure). Brightness is mean luma 0-255.
BLURRY_SHARPNESS_BELOW = 100.0
DARK_BRIGHTNESS_BELOW = 40.0
OVEREXPOSED_BRIGHTNESS_ABOVE = 215.0
# Analyses submitted to Spark at once.
CONCURRENT_QUERIES = 4
# Session settings while a local run analyzes. Its tables are KB to a few MB, held in one
# partition (see register_views), and a Spark job costs tens of ms of scheduling, more in a
# young JVM, whatever its size. Adaptive execution runs every shuffle stage as a job of its
# own, and a broadcast join collects its small side in one: these make each query one job.
# EMR keeps Spark's defaults (and stacks/processing.py's settings): right for large tables.
LOCAL_SETTINGS = {
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.autoBroadcastJoinThreshold": "-1",
    "spark.sql.shuffle.partitions": "1",
}

# A local run over a table of up to INTERPRETED_MAX_ROWS images (the count is the cache being
# filled, which the first query would do anyway) evaluates expressions interpreted: compiling
# Java for each of the 18 plans costs a young JVM more than running them. Measured (driver JVM
# CPU, fresh JVM, load 3-5): 120 rows cold 10.4-12.7 -> 8.1-8.2 s, warm 4.3-5.6 -> 2.6-2.7 s.
# The profile of a warm round at 120 rows with generated code: 62% of the JVM's samples in code
# generation (43% Janino compiling). Larger tables, generated code -> interpreted, run_analyze
# in a fresh JVM (load 2-3): 10,000 640 px images 8.0-9.5 -> 6.5-8.6 s (8 interleaved pairs,
# each faster interpreted; one query at a time: 12.1 -> 7.8 s), or 6.8-7.1 -> 5.7-6.1 s after
# the process stage decoded them, as bench_e2e.py measures (3 pairs); that table copied under new
# keys: 40,000 rows 10.8-11.9 -> 10.2-11.0 s, but 80,000 rows 20.6 -> 22.0 s and 160,000 rows
# 22.3 -> 26.0 s: there the rows outweigh the plans. (Interpreted lost at 10,000 too while the
# near-duplicates query listed every pair.) The tables are checked equal both ways
# (tests/spark/test_analyze.py).
INTERPRETED_MAX_ROWS = 40_000


def query_parameters(config: PipelineConfig) -> dict[str, Any]:
    """The named parameters (``:name``) the queries use, from the config and the thresholds."""
    return {
        "top_n": config.top_n,
        "max_distance": config.near_duplicate_distance,
        "blurry_below": BLURRY_SHARPNESS_BELOW,
        "dark_below": DARK_BRIGHTNESS_BELOW,
        "overexposed_above": OVEREXPOSED_BRIGHTNESS_ABOVE,
    }


@cache
def query_text(name: str) -> str:
    """The SQL text of a view or analysis (``analysis/sql/NAME.sql``, shipped as package data)."""
    return files("analysis").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def _has_objects(store: Store, prefix: str) -> bool:
    return next(iter(store.list_keys(prefix)), None) is not None


def load_images(spark: SparkSession, store: Store) -> DataFrame:
    """The image table with its explicit schema; empty when nothing was processed yet."""
    schema = image_table_schema()
    if not _has_objects(store, IMAGES_TABLE_PREFIX):
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(store.uri(IMAGES_TABLE_PREFIX))


def load_quarantine(spark: SparkSession, store: Store) -> DataFrame:
    """The quarantine records (pretty-printed JSON, nested folders); empty when there are none.

    A superseded marker (left where an overwritten object was accepted after all) has no
    ``reason``, which every quarantine record has: those rows are no record and are dropped.
    """
    schema = quarantine_schema()
    if not _has_objects(store, QUARANTINE_PREFIX):
        return spark.createDataFrame([], schema)
    return (
        spark.read.schema(schema)
        .option("multiLine", True)
        .option("recursiveFileLookup", True)
        .option("pathGlobFilter", "*.json")
        .json(store.uri(QUARANTINE_PREFIX))
        .where("reason IS NOT NULL")
    )


def is_local(spark: SparkSession) -> bool:
    """Whether Spark runs in local mode (one machine), not on a cluster such as EMR."""
    return (spark.sparkContext.master or "").startswith("local")


@contextmanager
def local_settings(spark: SparkSession) -> Iterator[None]:
    """Apply :data:`LOCAL_SETTINGS` for the block in local mode; restore them after it.

    The session is shared with the other stages (the process stage runs before analyze).
    """
    if not is_local(spark):
        yield
        return
    with session_settings(spark, LOCAL_SETTINGS):
        yield


def register_views(
    spark: SparkSession, images: DataFrame, quarantine: DataFrame, *, one_partition: bool = False
) -> None:
    """Register ``images``, ``quarantine`` and the helper views the queries read.

    With ``one_partition`` (for small tables), the cached tables are each one partition: a
    group-by, window, join or sort over them needs no shuffle, so most queries run as one
    Spark stage.
    """
    if one_partition:
        images, quarantine = images.coalesce(1), quarantine.coalesce(1)
    images.createOrReplaceTempView("images")
    quarantine.createOrReplaceTempView("quarantine")
    for name in VIEWS:
        spark.sql(query_text(name)).createOrReplaceTempView(name)
    # Every analysis reads these views: cache them (lazily, on first use) so the files are
    # listed and parsed once per run, not once per query.
    for name in ("images", "quarantine", *VIEWS):
        spark.catalog.cacheTable(name)


def run_query(spark: SparkSession, name: str, params: Mapping[str, Any]) -> DataFrame:
    """One named analysis as a DataFrame (the views must be registered)."""
    return spark.sql(query_text(name), args=dict(params))


def table_bytes(frame: pd.DataFrame) -> tuple[bytes, bytes]:
    """A result table as CSV and Parquet bytes, built in memory for the store."""
    csv = frame.to_csv(index=False).encode("utf-8")
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return csv, sink.getvalue()


def write_tables(store: Store, run_id: str, tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Write each table as ``reports/RUN_ID/tables/NAME.{csv,parquet}``; return the keys."""
    prefix = tables_prefix(run_id)
    keys: list[str] = []
    for name, frame in tables.items():
        csv, parquet = table_bytes(frame)
        store.put_bytes(f"{prefix}{name}.csv", csv, "text/csv; charset=utf-8")
        store.put_bytes(f"{prefix}{name}.parquet", parquet, "application/vnd.apache.parquet")
        keys += [f"{prefix}{name}.csv", f"{prefix}{name}.parquet"]
    return keys


def run_analyze(
    spark: SparkSession, root: str, run_id: str, config: PipelineConfig
) -> dict[str, pd.DataFrame]:
    """Run every analysis over the bucket (or local directory) at ``root`` and write the tables.

    Args:
        spark: The session to run the queries in.
        root: The store root: ``s3://BUCKET``, ``file:///path`` or a local path.
        run_id: The run whose ``reports/RUN_ID/tables/`` receives the results.
        config: Supplies ``top_n`` and ``near_duplicate_distance``.

    Returns:
        The result tables by analysis name, as pandas DataFrames.
    """
    tables_prefix(run_id)  # reject a bad run id before any Spark work
    store = open_store(root)
    params = query_parameters(config)
    with local_settings(spark), ExitStack() as small:
        images, quarantine = load_images(spark, store), load_quarantine(spark, store)
        register_views(spark, images, quarantine, one_partition=is_local(spark))
        if is_local(spark) and spark.table("images").count() <= INTERPRETED_MAX_ROWS:
            small.enter_context(session_settings(spark, INTERPRETED))
        try:
            # The queries are small and independent: submitted together, Spark's scheduler
            # fills the cores with one query's tasks while another waits on its job's overhead.
            with ThreadPoolExecutor(max_workers=CONCURRENT_QUERIES) as pool:
                frames = pool.map(lambda name: run_query(spark, name, params).toPandas(), ANALYSES)
                tables = dict(zip(ANALYSES, frames, strict=True))
        finally:
            for name in ("images", "quarantine", *VIEWS):
                spark.catalog.uncacheTable(name)
    write_tables(store, run_id, tables)
    return tables
