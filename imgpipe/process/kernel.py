"""The image kernel as an Arrow batch function: each image decoded once on the executors.

:func:`with_features` appends the feature columns with ``mapInArrow`` (Arrow batches, not a
row-at-a-time UDF); each row's thumbnail is written to the store as a side effect, the only way
to avoid decoding the image a second time. On a first run each task also writes the features
it computed to the features cache (:func:`write_features_part`), which spares a Spark job.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from imgpipe.config import PipelineConfig
from imgpipe.records import Reason, RejectedImage
from imgpipe.records import thumbnail_key as make_thumbnail_key
from imgpipe.store import Store, is_missing, open_store
from imgpipe.table import feature_fields, features_cache_schema

LOG = logging.getLogger(__name__)

# Bump when the kernel's output changes, so cached features are recomputed.
KERNEL_VERSION = 2
FEATURE_NAMES = [f.name for f in feature_fields()]
# An optional input column: the keys of every copy of the row's content, tried in order.
COPY_KEYS = "copy_keys"
_ARROW_TYPES: dict[type[T.DataType], pa.DataType] = {
    T.IntegerType: pa.int32(),
    T.DoubleType: pa.float64(),
    T.StringType: pa.string(),
    T.TimestampType: pa.timestamp("us", tz="UTC"),  # values: microseconds since the epoch
}
_FEATURE_ARROW_TYPES = [_ARROW_TYPES[type(f.dataType)] for f in feature_fields()]


def processing_settings(config: PipelineConfig) -> str:
    """The settings that change the kernel's output: cached features are reused only on a match."""
    return f"kernel{KERNEL_VERSION}-t{config.thumbnail_size}-q{config.thumbnail_quality}"


def with_features(
    df: DataFrame,
    root: str,
    config: PipelineConfig,
    decoded_column: str | None = None,
    features_prefix: str | None = None,
) -> DataFrame:
    """Append the feature columns, decoding each image once on the executors.

    Needs ``key``, ``checksum`` and ``orientation``; writes each thumbnail to the store as a
    side effect (the only way to avoid a second decode). Arrow batches, not a row UDF. Rows of
    one task with the same checksum (copies, when ``df`` is partitioned by checksum) share one
    decode: the task remembers each content's features, a few hundred bytes per image. A row
    gets its content's features when any copy in its task can be read, whatever the rows'
    order: one whose image is gone waits for the task's end, and gets the error only when no
    copy was read. A ``COPY_KEYS`` column, where there is one, lists the keys to try.

    Args:
        df: The rows to decode.
        root: The store's root, opened again on each executor.
        config: Thumbnail and decoding settings.
        decoded_column: Also append an integer column of this name: 1 on the row whose read
            gave its content's features (or error), null on the copies that reuse them.
        features_prefix: Also cache what the tasks compute: each task writes the features of
            the contents it decoded (not of an image missing from the store: it may come back)
            as one Parquet file under this store prefix (:func:`write_features_part`). A
            first run's features cache, made without a Spark job reading the table back.
    """
    marker = [T.StructField(decoded_column, T.IntegerType())] if decoded_column else []
    schema = T.StructType([*df.schema.fields, *feature_fields(), *marker])
    return df.mapInArrow(_feature_batches(root, config, decoded_column, features_prefix), schema)


def _feature_batches(
    root: str,
    config: PipelineConfig,
    decoded_column: str | None = None,
    features_prefix: str | None = None,
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The mapInArrow function; it runs on executors and opens its own store there."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import cv2

        # Spark already runs one task per core; OpenCV's own thread pool would oversubscribe.
        cv2.setNumThreads(1)
        store = open_store(root)
        seen: dict[str, dict[str, Any]] = {}  # checksum -> features, within this task
        # Rows whose image is gone from the store wait for the task's end: a copy of their
        # content later in the task may still be read, and they then get its features
        # whatever order the rows came in.
        held: list[pa.RecordBatch] = []
        held_errors: list[tuple[str, dict[str, Any]]] = []  # (checksum, the row's own error)
        for batch in batches:
            rows: list[dict[str, Any]] = []
            decoded: list[int | None] = []
            kept: list[int] = []
            keys = batch.column("key").to_pylist()
            # One row per content (a later run's pending images) may list every copy's key.
            candidates = (
                batch.column(COPY_KEYS).to_pylist() if COPY_KEYS in batch.schema.names else None
            )
            for index, (checksum, orientation) in enumerate(
                zip(
                    batch.column("checksum").to_pylist(),
                    batch.column("orientation").to_pylist(),
                    strict=True,
                )
            ):
                row = seen.get(checksum)
                if row is None:
                    tried = (candidates[index] if candidates else None) or [keys[index]]
                    row = read_content(store, tried, checksum, orientation, config)
                    if is_retryable(row.get("process_error")):
                        held.append(batch.slice(index, 1))
                        held_errors.append((checksum, row))
                        continue
                    seen[checksum] = row
                    decoded.append(1)
                else:
                    decoded.append(None)
                rows.append(row)
                kept.append(index)
            if len(kept) < batch.num_rows:
                batch = batch.take(arrow_column(kept, pa.int32()))
            yield with_feature_columns(batch, rows, decoded, decoded_column)
        if held:
            # A copy read later decoded the content for them; otherwise they went to read.
            rows = [seen.get(checksum, error) for checksum, error in held_errors]
            decoded = [None if checksum in seen else 1 for checksum, _ in held_errors]
            yield with_feature_columns(pa.concat_batches(held), rows, decoded, decoded_column)
        # Reached when Spark has taken the last batch: the task's work is done, and cached.
        if features_prefix and seen:
            write_features_part(store, features_prefix, seen.items(), processing_settings(config))

    return run


def with_feature_columns(
    batch: pa.RecordBatch,
    rows: Sequence[dict[str, Any]],
    decoded: Sequence[int | None],
    decoded_column: str | None,
) -> pa.RecordBatch:
    """``batch`` with the feature columns of ``rows`` (one per row) and the decoded marker."""
    columns = [
        arrow_column([row.get(name) for row in rows], arrow_type)
        for name, arrow_type in zip(FEATURE_NAMES, _FEATURE_ARROW_TYPES, strict=True)
    ]
    names = [*batch.schema.names, *FEATURE_NAMES]
    if decoded_column:
        columns.append(arrow_column(list(decoded), pa.int32()))
        names.append(decoded_column)
    return pa.RecordBatch.from_arrays([*batch.columns, *columns], names=names)


def write_features_part(
    store: Store,
    prefix: str,
    contents: Iterable[tuple[str, dict[str, Any]]],
    settings: str,
) -> str:
    """Write ``(checksum, features)`` pairs as one Parquet file of the features cache.

    The file has the ``processed/features/`` schema (:func:`features_cache_schema`) and a name
    of its own under ``prefix``: a retried task writes another file with the same content,
    which readers take as the same features computed twice. Returns its key.
    """
    import pyarrow.parquet as pq

    pairs: Sequence[tuple[str, dict[str, Any]]] = list(contents)
    now = time.time_ns() // 1000
    values: dict[str, list[Any]] = {
        "checksum": [checksum for checksum, _ in pairs],
        "settings": [settings] * len(pairs),
        "computed_at": [now] * len(pairs),
        **{name: [row.get(name) for _, row in pairs] for name in FEATURE_NAMES},
    }
    fields = features_cache_schema().fields
    table = pa.Table.from_arrays(
        [arrow_column(values[f.name], _ARROW_TYPES[type(f.dataType)]) for f in fields],
        names=[f.name for f in fields],
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    key = f"{prefix}part-{uuid.uuid4().hex}.parquet"
    store.put_bytes(key, buffer.getvalue())
    return key


def is_retryable(process_error: str | None) -> bool:
    """True for an image that was missing from the store: it may come back, so retry it."""
    return process_error is not None and process_error.startswith(Reason.UNREADABLE.value)


def arrow_column(values: list[Any], arrow_type: pa.DataType) -> pa.Array:
    """``values`` (None is null) as an Arrow array of ``arrow_type``, built from its buffers.

    Not ``pa.array(values)``: pyarrow's first conversion of Python values in a process imports
    pandas, to ask whether they are a pandas object. That import is ~0.7 s of CPU in each
    Python worker, which nothing else there needs (Spark's Arrow path does not import it).
    ``arrow_type`` is a fixed-width number, a timestamp (values are integer counts of its
    unit) or UTF-8 strings (``pa.string()``).
    """
    valid = np.fromiter((value is not None for value in values), dtype=bool, count=len(values))
    validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    if pa.types.is_string(arrow_type):
        encoded = [value.encode() if value is not None else b"" for value in values]
        offsets = np.zeros(len(values) + 1, dtype=np.int32)
        np.cumsum([len(item) for item in encoded], out=offsets[1:])
        buffers = [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    else:
        # The NumPy type of the Arrow type's values (a mapping only: pandas is not imported;
        # a timestamp's is its integer count, which to_pandas_dtype would ask pandas for).
        numpy_type = np.int64 if pa.types.is_timestamp(arrow_type) else arrow_type.to_pandas_dtype()
        data = np.array([0 if value is None else value for value in values], dtype=numpy_type)
        buffers = [validity, pa.py_buffer(data)]
    return pa.Array.from_buffers(arrow_type, len(values), buffers)


def read_content(
    store: Store,
    keys: Sequence[str],
    checksum: str,
    orientation: int | None,
    config: PipelineConfig,
) -> dict[str, Any]:
    """The features of a content held under ``keys`` (its copies), read from the first there.

    Keys gone from the store are skipped; when every one is gone, the first one's error.
    """
    errors = []
    for key in keys:
        row = process_row(store, key, checksum, orientation, config)
        if not is_retryable(row.get("process_error")):
            return row
        errors.append(row)
    return errors[0]


def process_row(
    store: Store, key: str, checksum: str, orientation: int | None, config: PipelineConfig
) -> dict[str, Any]:
    """Feature values of one image, or only ``process_error`` when it cannot be processed."""
    from imgpipe.imaging import process_image

    try:
        data = store.get_bytes(key)
    except Exception as exc:
        if not is_missing(exc):
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
