"""The stores behave alike: content versions, HEAD, ranged and conditional reads.

Versions are what the process job's "nothing changed" check relies on; HEAD and ranged
reads are what the cloud ingest reads objects with. Reads of a missing key
(``get_bytes_or_none``) are also tested in tests/spark/test_superseded_records.py.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from imgpipe.store import LocalStore, ObjectChanged, S3Store, Store, is_missing


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "local":
        yield LocalStore(tmp_path)
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="versions")
        yield S3Store("versions", client)


def test_versions_list_every_key_under_the_prefix_in_order(store: Store) -> None:
    for key in ("metadata/b.json", "metadata/a/c.json", "quarantine/x.json"):
        store.put_bytes(key, b"{}")
    assert [key for key, _ in store.list_versions("metadata/")] == [
        "metadata/a/c.json",
        "metadata/b.json",
    ]


def test_a_version_changes_with_the_content_and_only_with_it(store: Store) -> None:
    store.put_bytes("metadata/a.json", b'{"creator": "alice"}')
    first = dict(store.list_versions("metadata/"))
    store.put_bytes("metadata/a.json", b'{"creator": "alice"}')
    assert dict(store.list_versions("metadata/")) == first
    store.put_bytes("metadata/a.json", b'{"creator": "bobby"}')  # same length, new content
    assert dict(store.list_versions("metadata/")) != first


def test_sizes_list_every_key_under_the_prefix_with_its_bytes(store: Store) -> None:
    # The process stage sizes a first run's tasks from this listing of ingest/.
    store.put_bytes("ingest/b.jpg", b"0123456789")
    store.put_bytes("ingest/a/c.png", b"")
    store.put_bytes("metadata/b.jpg.json", b"{}")
    assert list(store.list_sizes("ingest/")) == [("ingest/a/c.png", 0), ("ingest/b.jpg", 10)]
    assert list(store.list_sizes("absent/")) == []


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_local_writes_get_the_mode_the_umask_gives_new_files(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        LocalStore(tmp_path).put_bytes("reports/run/index.html", b"<html>")
        (tmp_path / "plain.txt").write_bytes(b"x")  # how open() creates a file under this umask
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "reports/run/index.html").stat().st_mode)
    assert mode == 0o666 & ~umask
    assert mode == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)


def test_head_of_a_missing_key_is_none(store: Store) -> None:
    store.put_bytes("ingest/there.jpg", b"x")
    assert store.head("ingest/gone.jpg") is None
    assert store.head("ingest/there.jpg/below.jpg") is None  # a "folder" that is an object


def test_head_gives_the_size_and_the_tag_that_versions_list(store: Store) -> None:
    store.put_bytes("metadata/a.json", b"0123456789")
    head = store.head("metadata/a.json")
    assert head is not None
    assert (head.key, head.size) == ("metadata/a.json", 10)
    assert dict(store.list_versions("metadata/")) == {"metadata/a.json": head.etag}
    store.put_bytes("metadata/a.json", b"9876543210")
    changed = store.head("metadata/a.json")
    assert changed is not None and changed.etag != head.etag


def test_a_ranged_read_returns_those_bytes_and_stops_at_the_end(store: Store) -> None:
    store.put_bytes("ingest/a.jpg", b"0123456789")
    assert store.get_range("ingest/a.jpg", 0, 4) == b"0123"
    assert store.get_range("ingest/a.jpg", 7, 100) == b"789"
    assert store.get_range("ingest/a.jpg", 10, 20) == b""


@pytest.mark.parametrize(("start", "end"), [(4, 4), (5, 4), (-1, 3)])
def test_an_empty_or_negative_range_is_refused(store: Store, start: int, end: int) -> None:
    # S3 would ignore such a Range header and send the whole object.
    store.put_bytes("ingest/a.jpg", b"0123456789")
    with pytest.raises(ValueError, match="bad byte range"):
        store.get_range("ingest/a.jpg", start, end)


def test_a_conditional_read_of_the_version_seen_succeeds(store: Store) -> None:
    store.put_bytes("ingest/a.jpg", b"0123456789")
    head = store.head("ingest/a.jpg")
    assert head is not None
    assert store.get_range("ingest/a.jpg", 2, 5, if_match=head.etag) == b"234"


def test_a_conditional_read_after_a_new_upload_raises_object_changed(store: Store) -> None:
    store.put_bytes("ingest/a.jpg", b"0123456789")
    head = store.head("ingest/a.jpg")
    assert head is not None
    store.put_bytes("ingest/a.jpg", b"abcdefghij")
    with pytest.raises(ObjectChanged, match=r"ingest/a\.jpg"):
        store.get_range("ingest/a.jpg", 0, 4, if_match=head.etag)
    assert store.get_range("ingest/a.jpg", 0, 4) == b"abcd"  # unconditional: the new version


def test_a_read_of_a_missing_key_fails_with_an_error_is_missing_recognises(store: Store) -> None:
    for read in (
        lambda: store.get_bytes("ingest/gone.jpg"),
        lambda: store.get_range("ingest/gone.jpg", 0, 4),
        lambda: store.get_range("ingest/gone.jpg", 0, 4, if_match="tag"),
    ):
        with pytest.raises(Exception) as raised:
            read()
        assert is_missing(raised.value)


def test_a_local_head_has_no_metadata_and_no_stored_checksum(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("ingest/a.jpg", b"0123456789")
    head = store.head("ingest/a.jpg")
    assert head is not None
    assert (dict(head.metadata), head.checksum) == ({}, None)


def _s3_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


def test_access_denied_is_not_a_missing_key() -> None:
    # Without s3:ListBucket S3 answers a missing key with 403: a permission to fix, not a gap.
    assert not is_missing(_s3_error("AccessDenied", 403))
    assert not is_missing(PermissionError("denied"))
    assert is_missing(_s3_error("NoSuchKey", 404)) and is_missing(_s3_error("404", 404))


def _stubbed_head(response: dict[str, object]) -> S3Store:
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    stubber.add_response(
        "head_object",
        {"ContentLength": 10, "ETag": '"e1"', **response},
        {"Bucket": "bucket1", "Key": "ingest/a.jpg", "ChecksumMode": "ENABLED"},
    )
    stubber.activate()
    return S3Store("bucket1", client)


def test_an_s3_head_gives_user_metadata_and_a_full_object_crc64nvme() -> None:
    store = _stubbed_head(
        {
            "Metadata": {"creator": "Ann"},
            "ChecksumCRC64NVME": "AAAAAAAAAAE=",
            "ChecksumType": "FULL_OBJECT",
        }
    )
    head = store.head("ingest/a.jpg")
    assert head is not None
    assert (head.size, head.etag, dict(head.metadata)) == (10, '"e1"', {"creator": "Ann"})
    assert head.checksum == "crc64nvme:AAAAAAAAAAE="


def test_a_composite_s3_checksum_is_no_content_identity() -> None:
    # A multipart upload's per-part checksum differs between copies of the same bytes.
    store = _stubbed_head({"ChecksumCRC64NVME": "AAAAAAAAAAE=", "ChecksumType": "COMPOSITE"})
    head = store.head("ingest/a.jpg")
    assert head is not None and head.checksum is None
