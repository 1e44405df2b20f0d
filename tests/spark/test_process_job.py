"""The process job end to end on local Spark: records + images in, Parquet + thumbnails out."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imgpipe.config import PipelineConfig
from imgpipe.process.kernel import is_retryable
from imgpipe.process.stage import run_process
from imgpipe.process.transforms import partition_count, retryable_error
from imgpipe.records import (
    Exif,
    Gps,
    Instance,
    Label,
    Reason,
    image_record_to_json,
    metadata_key,
    thumbnail_key,
)
from imgpipe.store import LocalStore
from imgpipe.table import image_table_schema
from spark_jobs.process import main
from tests.tablefixtures import add_image

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.spark


def picture(width: int, height: int, fmt: str) -> bytes:
    image = Image.new("RGB", (width, height), (40, 90, 160))
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, width // 2, height // 2), fill="red")
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    store = LocalStore(tmp_path_factory.mktemp("bucket"))
    photo = picture(1200, 900, "JPEG")
    add_image(
        store,
        "ingest/alice/rotated.jpg",
        photo,
        width=1200,
        height=900,
        orientation=6,  # stored landscape, displayed portrait
        exif=Exif(
            make="Canon",
            model="EOS 40D",
            datetime_original="2021-06-01T12:30:00",
            gps=Gps(latitude=51.5, longitude=-0.12),
        ),
        labels=(
            Label(
                "Cat",
                97.5,
                parents=("Animal", "Pet"),
                categories=("Animals and Pets",),
                instances=(Instance(0.1, 0.2, 0.3, 0.4, 96.0),),
            ),
        ),
        labeler="local",
        labeler_version="test-1",
    )
    # Same bytes, so same checksum, orientation and thumbnail as the first one.
    add_image(store, "ingest/bob/copy of rotated.jpg", photo, orientation=6, creator="bob")
    add_image(store, "ingest/small.png", picture(300, 200, "PNG"), format="PNG")
    broken = picture(800, 600, "JPEG")
    add_image(store, "ingest/broken.jpg", broken[: len(broken) // 2])
    return store


@pytest.fixture(scope="module")
def first_run(spark: SparkSession, bucket: LocalStore) -> dict[str, int]:
    return run_process(spark, str(bucket.root), PipelineConfig())


@pytest.fixture(scope="module")
def table(spark: SparkSession, bucket: LocalStore, first_run: dict[str, int]) -> DataFrame:
    return spark.read.parquet(bucket.uri("processed/images/"))


def rows_by_key(table: DataFrame) -> dict[str, Any]:
    return {row["key"]: row for row in table.collect()}


def type_signature(schema: Any) -> list[tuple[str, str]]:
    # Parquet makes every column nullable, so compare names and types, not nullability.
    return [(f.name, f.dataType.simpleString()) for f in schema.fields]


def test_every_record_becomes_exactly_one_row(table: DataFrame, first_run: dict[str, int]) -> None:
    keys = sorted(row["key"] for row in table.select("key").collect())
    assert keys == [
        "ingest/alice/rotated.jpg",
        "ingest/bob/copy of rotated.jpg",
        "ingest/broken.jpg",
        "ingest/small.png",
    ]
    # Two records share their bytes: three distinct contents are decoded.
    assert first_run == {"records": 4, "processed": 3, "failed": 1, "decoded": 3}


def test_table_has_exactly_the_image_table_schema(table: DataFrame) -> None:
    assert type_signature(table.schema) == type_signature(image_table_schema())


def test_record_fields_are_flattened_and_typed(table: DataFrame) -> None:
    row = rows_by_key(table)["ingest/alice/rotated.jpg"]
    assert (row["camera_make"], row["camera_model"]) == ("Canon", "EOS 40D")
    # PySpark hands timestamps back as naive local times; astimezone() makes them comparable.
    assert row["datetime_original"].astimezone(UTC) == datetime(2021, 6, 1, 12, 30, tzinfo=UTC)
    assert row["ingested_at"].astimezone(UTC) == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert (row["gps_latitude"], row["gps_longitude"]) == (51.5, -0.12)
    [label] = row["labels"]
    assert (label["name"], label["confidence"]) == ("Cat", 97.5)
    assert label["parents"] == ["Animal", "Pet"]
    assert label["instances"][0]["width"] == pytest.approx(0.3)
    assert row["processed_at"] is not None


def test_features_follow_the_record_orientation(table: DataFrame) -> None:
    row = rows_by_key(table)["ingest/alice/rotated.jpg"]
    assert (row["display_width"], row["display_height"]) == (900, 1200)
    assert (row["thumbnail_width"], row["thumbnail_height"]) == (384, 512)
    assert row["megapixels"] == pytest.approx(1.08)
    assert len(row["phash"]) == 16
    assert row["dominant_color"].startswith("#")
    assert row["process_error"] is None


def test_thumbnails_are_written_at_their_content_key(table: DataFrame, bucket: LocalStore) -> None:
    rows = rows_by_key(table)
    for key, size in [("ingest/alice/rotated.jpg", (384, 512)), ("ingest/small.png", (300, 200))]:
        row = rows[key]
        assert row["thumbnail_key"] == thumbnail_key(row["checksum"])
        with Image.open(io.BytesIO(bucket.get_bytes(row["thumbnail_key"]))) as thumb:
            assert thumb.format == "JPEG"
            assert thumb.size == size
    copy, original = rows["ingest/bob/copy of rotated.jpg"], rows["ingest/alice/rotated.jpg"]
    assert copy["thumbnail_key"] == original["thumbnail_key"]


def test_rotated_thumbnail_is_turned_clockwise(table: DataFrame, bucket: LocalStore) -> None:
    row = rows_by_key(table)["ingest/alice/rotated.jpg"]
    thumb = np.asarray(Image.open(io.BytesIO(bucket.get_bytes(row["thumbnail_key"])))).astype(int)
    redness = thumb[..., 0] - thumb[..., 2]
    height, width = redness.shape
    # The ellipse was in the stored image's upper-left quarter; orientation 6 turns the
    # picture 90° clockwise for display, which puts it in the upper-right quarter.
    assert redness[: height // 2, width // 2 :].mean() > redness[: height // 2, : width // 2].mean()


def test_corrupt_image_keeps_its_row_with_a_process_error(table: DataFrame) -> None:
    row = rows_by_key(table)["ingest/broken.jpg"]
    assert row["process_error"].startswith("truncated: ")
    assert row["phash"] is None and row["thumbnail_key"] is None


def test_second_run_replaces_the_table_without_duplicates(
    spark: SparkSession, bucket: LocalStore, first_run: dict[str, int]
) -> None:
    again = run_process(spark, bucket.uri(), PipelineConfig())
    assert again == {**first_run, "decoded": 0}
    assert spark.read.parquet(bucket.uri("processed/images/")).count() == 4


@pytest.mark.parametrize("make_metadata_dir", [False, True])
def test_no_records_give_an_empty_table(
    spark: SparkSession, tmp_path: Path, make_metadata_dir: bool
) -> None:
    if make_metadata_dir:
        (tmp_path / "metadata").mkdir()
    counts = run_process(spark, str(tmp_path), PipelineConfig())
    assert counts == {"records": 0, "processed": 0, "failed": 0, "decoded": 0}
    written = spark.read.parquet((tmp_path / "processed" / "images").as_uri())
    assert written.count() == 0
    assert type_signature(written.schema) == type_signature(image_table_schema())


def test_main_processes_a_root_given_as_file_uri(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path)
    add_image(store, "ingest/one.jpg", picture(640, 480, "JPEG"))
    assert main(["--root", tmp_path.as_uri(), "--thumbnail-size", "100"]) == 0
    assert '"processed": 1' in capsys.readouterr().out
    [row] = spark.read.parquet(store.uri("processed/images/")).collect()
    assert (row["thumbnail_width"], row["thumbnail_height"]) == (100, 75)


def test_main_rejects_an_unsupported_root_in_one_line() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--root", "ftp://example.com/bucket"])
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("records", "cores", "expected"), [(0, 2, 1), (3, 2, 3), (10, 2, 4), (1000, 2, 16)]
)
def test_partitions_keep_cores_busy_without_empty_tasks(
    records: int, cores: int, expected: int
) -> None:
    assert partition_count(records, cores) == expected


@pytest.mark.parametrize(
    ("records", "total_bytes", "expected"),
    [
        (48, 48 * 3_000_000, 4),  # 144 MB of photos: 3 x 64 MiB, but at least 2 tasks per core
        (400, 400 * 3_000_000, 18),  # 1.2 GB: ceil(1.2e9 / 64 MiB) = 18 tasks of ~22 photos
        (10_000, 10_000 * 60_000, 10),  # 600 MB of small images: 9 -> 10 (whole waves), not 157
        (120, 120 * 2_500_000, 6),  # 300 MB of 12 MP photos: 5 x 64 MiB -> 3 waves of 2
        (3, 3 * 50_000_000, 3),  # never more tasks than images
    ],
)
def test_partitions_are_sized_by_compressed_bytes(
    records: int, total_bytes: int, expected: int
) -> None:
    assert partition_count(records, 2, total_bytes) == expected


def test_records_without_sizes_are_still_processed(spark: SparkSession, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    add_image(store, "ingest/a.jpg", picture(640, 480, "JPEG"))
    record = add_image(store, "ingest/b.jpg", picture(480, 640, "JPEG"))
    # An older record without "size": the job must fall back to counting images.
    legacy = image_record_to_json(record).replace(f'"size": {record.size},'.encode(), b"")
    assert b'"size"' not in legacy
    store.put_bytes(metadata_key("ingest/b.jpg"), legacy)
    counts = run_process(spark, str(tmp_path), PipelineConfig())
    assert counts == {"records": 2, "processed": 2, "failed": 0, "decoded": 2}


def test_the_retry_rule_reads_the_same_in_python_and_in_spark(spark: SparkSession) -> None:
    # A row is retried when its image was missing: the kernel asks in Python (is_retryable),
    # the table's counts and the features cache ask in Spark (retryable_error). One rule.
    errors = [
        None,
        f"{Reason.UNREADABLE.value}: ingest/a.jpg is gone from the store",
        f"{Reason.UNREADABLE.value}: the image could not be read when it was processed",
        f"{Reason.TRUNCATED.value}: image file is truncated",
        f"{Reason.UNDECODABLE.value}: unexpected ValueError: {Reason.UNREADABLE.value}",
        "",
    ]
    frame = spark.createDataFrame([(error,) for error in errors], "process_error string")
    in_spark = [row[0] for row in frame.select(retryable_error()).collect()]
    in_python = [is_retryable(error) for error in errors]
    assert in_python == [False, True, True, False, False, False]
    # Spark's null for no error is "not retryable" wherever the Column is used (coalesced).
    assert [bool(value) for value in in_spark] == in_python
