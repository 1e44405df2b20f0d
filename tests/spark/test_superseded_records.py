"""An overwritten upload whose outcome flips keeps exactly one live record, without deletes.

The record of the other kind is overwritten with a superseded marker (the Lambda has no
delete right, and the local run does the same). Every reader must treat a marker as no
record: the invariant, ``previous_outcome``, the process job (no checksum, no table row)
and the analyze job's quarantine view (no reason, no row).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from moto import mock_aws
from pyspark.sql import SparkSession

from analysis import tables_prefix
from analysis.analyze import load_quarantine
from imgpipe.config import PipelineConfig
from imgpipe.ingest import Ingester, IngestItem, previous_outcome
from imgpipe.invariants import check_nothing_lost
from imgpipe.process.stage import read_records
from imgpipe.process.transforms import flatten_records
from imgpipe.progress import ProgressReporter
from imgpipe.records import SUPERSEDED_FIELD, is_live_record, parse_live_record
from imgpipe.runner import run_pipeline
from imgpipe.store import LocalStore, S3Store, Store
from tests.imagefactory import jpeg_bytes, photo_like
from tests.lambdarig import (
    BUCKET,
    Counting,
    Rig,
    invoke,
    moto_rekognition,
    use,
)

KEY = "ingest/flip.jpg"
META, QUAR = "metadata/flip.jpg.json", "quarantine/flip.jpg.json"
PHOTO = jpeg_bytes(photo_like(320, 240, 11))
NOT_A_PHOTO = b"%PDF-1.7 the same name, now a document"
# accepted -> quarantined -> accepted again (with the first content: a marker is not reused)
FLIPS = ((PHOTO, True), (NOT_A_PHOTO, False), (PHOTO, True))


class NoLabeler:
    name = "none"
    model_version = ""

    def label(self, images: Any) -> list[list[Any]]:
        return [[] for _ in images]


class CountingStore(LocalStore):
    """A local store that counts its reads by kind."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[tuple[str, str]] = []

    def exists(self, key: str) -> bool:
        self.reads.append(("exists", key))
        return super().exists(key)

    def get_bytes(self, key: str) -> bytes:
        self.reads.append(("get", key))
        return super().get_bytes(key)

    def get_bytes_or_none(self, key: str) -> bytes | None:
        self.reads.append(("get_or_none", key))
        return super().get_bytes_or_none(key)


def live(store: Store, key: str) -> bool:
    return is_live_record(store.get_bytes_or_none(key))


def assert_one_live_record(store: Store, accepted: bool) -> None:
    """Exactly the expected record is live; the other key is absent or a marker naming it."""
    live_key, other = (META, QUAR) if accepted else (QUAR, META)
    assert (live(store, META), live(store, QUAR)) == (accepted, not accepted)
    record = json.loads(store.get_bytes(live_key))
    assert record["key"] == KEY and SUPERSEDED_FIELD not in record
    leftover = store.get_bytes_or_none(other)
    if leftover is not None:
        marker = json.loads(leftover)
        assert marker[SUPERSEDED_FIELD] == live_key and marker["key"] == KEY
        assert marker["superseded_at"] and "checksum" not in marker and "reason" not in marker
    assert check_nothing_lost(store).ok, check_nothing_lost(store)


# --- store ---------------------------------------------------------------------------------


def test_local_get_bytes_or_none(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("metadata/a.jpg.json", b"{}")
    assert store.get_bytes_or_none("metadata/a.jpg.json") == b"{}"
    assert store.get_bytes_or_none("metadata/missing.json") is None
    assert store.get_bytes_or_none("metadata/a.jpg.json/below") is None  # parent is a file
    assert store.get_bytes_or_none("nowhere/at/all.json") is None


def test_s3_get_bytes_or_none_is_one_get(aws_credentials: None) -> None:
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key="metadata/a.jpg.json", Body=b"{}")
        counting = Counting(client, "get_object", "head_object")
        store = S3Store(BUCKET, counting)
        assert store.get_bytes_or_none("metadata/a.jpg.json") == b"{}"
        assert store.get_bytes_or_none("metadata/missing.json") is None
        assert len(counting.calls["get_object"]) == 2
        assert counting.calls["head_object"] == []
        with pytest.raises(Exception, match="NoSuchBucket"):
            S3Store("no-such-bucket", client).get_bytes_or_none("metadata/a.jpg.json")


# --- the marker contract ---------------------------------------------------------------------


def test_markers_and_missing_keys_are_no_record() -> None:
    assert parse_live_record(None) is None
    assert parse_live_record(b'{"key": "ingest/a", "superseded_by": "quarantine/a.json"}') is None
    assert parse_live_record(b'{"key": "ingest/a", "checksum": "x"}') == {
        "key": "ingest/a",
        "checksum": "x",
    }
    # A corrupt record still counts (and will be superseded), but carries nothing to reuse.
    assert parse_live_record(b"not json") == {}
    assert parse_live_record(b"[1, 2]") == {}


def test_previous_outcome_reads_each_record_once_and_never_reuses_a_marker(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path)
    labeler = NoLabeler()
    ingester = Ingester(store, PipelineConfig(), labeler)
    list(ingester.run([IngestItem(KEY, PHOTO)]))
    digest = json.loads(store.get_bytes(META))["checksum"]
    store.reads.clear()
    assert previous_outcome(store, KEY, digest, labeler) is not None
    assert store.reads == [("get_or_none", META)]  # no exists() probe before the GET

    list(ingester.run([IngestItem(KEY, NOT_A_PHOTO)]))
    store.reads.clear()
    # The old content's checksum is gone with its record: the marker is not an outcome.
    assert previous_outcome(store, KEY, digest, labeler) is None
    assert store.reads == [("get_or_none", META), ("get_or_none", QUAR)]


def test_no_marker_is_written_when_the_outcome_does_not_flip(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ingester = Ingester(store, PipelineConfig(), NoLabeler())
    list(ingester.run([IngestItem(KEY, PHOTO)]))
    list(ingester.run([IngestItem(KEY, jpeg_bytes(photo_like(320, 240, 12)))]))
    assert list(store.list_keys("")) == [META]


def test_invariant_counts_live_records_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    marker = json.dumps({"key": "ingest/a.jpg", SUPERSEDED_FIELD: "metadata/a.jpg.json"})
    store.put_bytes("ingest/a.jpg", b"a")
    store.put_bytes("metadata/a.jpg.json", b"{}")
    store.put_bytes("quarantine/a.jpg.json", marker.encode())
    assert check_nothing_lost(store, table_keys=["ingest/a.jpg"]).ok
    # Only a marker left: the object has no record at all.
    store.put_bytes("metadata/a.jpg.json", marker.encode())
    report = check_nothing_lost(store)
    assert report.unaccounted == ["ingest/a.jpg"] and report.orphan_records == []
    # Two live records are still caught.
    store.put_bytes("metadata/a.jpg.json", b"{}")
    store.put_bytes("quarantine/a.jpg.json", b"{}")
    assert check_nothing_lost(store).in_both == ["ingest/a.jpg"]


# --- readers in Spark ------------------------------------------------------------------------


@pytest.mark.spark
def test_spark_readers_drop_markers(spark: SparkSession, tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ingester = Ingester(store, PipelineConfig(), NoLabeler())
    list(ingester.run([IngestItem(KEY, PHOTO), IngestItem("ingest/bad.jpg", NOT_A_PHOTO)]))
    list(ingester.run([IngestItem(KEY, NOT_A_PHOTO), IngestItem("ingest/bad.jpg", PHOTO)]))
    assert not live(store, META) and not live(store, "quarantine/bad.jpg.json")
    records = flatten_records(read_records(spark, store.uri("metadata/")))
    assert [row["key"] for row in records.collect()] == ["ingest/bad.jpg"]
    assert [(row["key"], row["reason"]) for row in load_quarantine(spark, store).collect()] == [
        (KEY, "not_an_image")
    ]


# --- the local runner, three runs ------------------------------------------------------------


@pytest.mark.spark
def test_local_runs_flip_accepted_quarantined_accepted(tmp_path: Path) -> None:
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    (inputs / "steady.jpg").write_bytes(jpeg_bytes(photo_like(300, 200, 3)))
    store = LocalStore(out)
    for data, accepted in FLIPS:
        (inputs / "flip.jpg").write_bytes(data)
        summary = run_pipeline(
            inputs, out, labeler_name="none", progress=ProgressReporter(quiet=True)
        )
        assert (summary.accepted, summary.quarantined) == (1 + int(accepted), 1 - int(accepted))
        assert_one_live_record(store, accepted)
        table = pq.read_table(out / "processed" / "images", columns=["key"])
        table_keys = table.column("key").to_pylist()
        expected = ["ingest/steady.jpg", KEY] if accepted else ["ingest/steady.jpg"]
        assert sorted(table_keys) == sorted(expected)
        assert check_nothing_lost(store, table_keys).ok
        quarantine_list = pq.read_table(
            out / tables_prefix(summary.run_id) / "quarantine_list.parquet"
        ).to_pylist()
        assert [(row["key"], row["reason"]) for row in quarantine_list] == (
            [] if accepted else [(KEY, "not_an_image")]
        )


# --- the Lambda on moto, three uploads -------------------------------------------------------


def test_lambda_flips_accepted_quarantined_accepted_without_deleting(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = Counting(rig.s3, "delete_object", "delete_objects", "put_object")
    use(monkeypatch, rig, moto_rekognition(), s3=s3, cache=False)
    store = S3Store(BUCKET, rig.s3)
    for data, accepted in FLIPS:
        rig.put(KEY, data)
        assert invoke(rig.receive()) == []
        assert_one_live_record(store, accepted)
    assert s3.calls["delete_object"] == [] and s3.calls["delete_objects"] == []
    # Each run wrote its record, and the last two a marker over the other kind's record.
    assert [call["Key"] for call in s3.calls["put_object"]] == [META, META, QUAR, QUAR, META]
    # A redelivered event after the flip reuses the live record and writes nothing.
    rig.put(KEY, PHOTO)
    s3.calls["put_object"].clear()
    assert invoke(rig.receive()) == []
    assert s3.calls["put_object"] == []
    assert_one_live_record(store, True)
