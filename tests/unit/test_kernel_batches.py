"""The process stage's Arrow batch function: its feature columns, and no pandas in the workers.

The batch function runs in Spark's Python workers. Building its columns with ``pa.array``
made pyarrow import pandas in each worker (~0.7 s of CPU, measured in benchmarks/README.md),
so the columns are built from their buffers; these tests pin both the values and the import.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from imgpipe.process.kernel import FEATURE_NAMES, arrow_column
from tests.imagefactory import jpeg_bytes, photo_like
from tests.repo import run_fresh


@pytest.mark.parametrize(
    ("values", "arrow_type"),
    [
        ([640, None, 0, -3, 2**31 - 1], pa.int32()),
        ([1.5, None, 0.0, float("nan"), -2e300], pa.float64()),
        (["ff00aa", None, "", "Zoë 写真", "x" * 1000], pa.string()),
        ([None, None], pa.string()),
        ([], pa.int32()),
    ],
)
def test_arrow_column_round_trips_values_and_nulls(values, arrow_type):
    column = arrow_column(values, arrow_type)
    column.validate(full=True)
    assert column.type == arrow_type
    # repr, not ==: NaN round-trips but is not equal to itself.
    assert repr(column.to_pylist()) == repr(values)
    assert column.null_count == sum(value is None for value in values)


def test_arrow_column_takes_a_timestamp_as_its_count_of_microseconds():
    column = arrow_column([1_700_000_000_123_456, None], pa.timestamp("us", tz="UTC"))
    column.validate(full=True)
    assert column.cast(pa.int64()).to_pylist() == [1_700_000_000_123_456, None]


# Runs in a fresh interpreter, as a Spark Python worker would: the batch function over a real
# JPEG, keys that are gone from the store (one with no copy, two whose content the JPEG is,
# before and after it), then whether pandas was imported, then the features cache file the
# task wrote.
_WORKER = """
import json, sys
import pyarrow as pa
from imgpipe.config import PipelineConfig
from imgpipe.process.kernel import _feature_batches, arrow_column

root = sys.argv[1]
# Only ingest/photo.jpg is in the store; "before" and "copy" hold its content (c1) too.
keys = ["ingest/before.jpg", "ingest/photo.jpg", "ingest/gone.jpg", "ingest/copy.jpg"]
batch = pa.RecordBatch.from_arrays(
    [
        arrow_column(keys, pa.string()),
        arrow_column(["c1", "c1", "c2", "c1"], pa.string()),
        arrow_column([1, 1, None, 1], pa.int32()),
    ],
    names=["key", "checksum", "orientation"],
)
run = _feature_batches(root, PipelineConfig(), "decoded", "processed/features/run=t/")
out = pa.Table.from_batches(list(run(iter([batch]))))  # to the generator's end, as Spark does
pandas = "pandas" in sys.modules
import pathlib
import pyarrow.parquet as pq
parts = sorted(pathlib.Path(root, "processed/features/run=t").iterdir())
cached = pq.read_table(parts[0]).to_pylist() if len(parts) == 1 else [str(p) for p in parts]
for row in cached:
    row["computed_at"] = str(row["computed_at"].tzinfo)
print(json.dumps({"rows": out.to_pylist(), "pandas": pandas, "cached": cached}))
"""


def test_batch_function_decodes_without_importing_pandas(tmp_path: Path):
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "photo.jpg").write_bytes(jpeg_bytes(photo_like(640, 480, seed=3)))
    found = run_fresh(_WORKER, str(tmp_path), timeout=120)
    by_key = {row["key"]: row for row in found["rows"]}
    assert len(found["rows"]) == 4
    photo, gone, copy = (by_key[f"ingest/{name}.jpg"] for name in ("photo", "gone", "copy"))
    assert (photo["display_width"], photo["display_height"]) == (640, 480)
    assert photo["process_error"] is None and len(photo["phash"]) == 16
    assert (tmp_path / photo["thumbnail_key"]).is_file()
    assert gone["process_error"].startswith("unreadable") and gone["phash"] is None
    # The copies got the photo's features, though their own keys are not in the store: the
    # one after it without a read, the one before it when the task ended.
    for other in (copy, by_key["ingest/before.jpg"]):
        assert {**other, "key": photo["key"]} == {**photo, "decoded": None}
    assert (photo["decoded"], gone["decoded"]) == (1, 1)
    assert found["pandas"] is False
    # One file of the task's contents: the photo's features, not the gone image's (it may come
    # back), once for the photo and its copy.
    (cached,) = found["cached"]
    assert cached["checksum"] == "c1" and cached["settings"].startswith("kernel")
    assert cached["computed_at"] == "UTC"
    assert {name: cached[name] for name in FEATURE_NAMES} == {
        name: photo[name] for name in FEATURE_NAMES
    }
