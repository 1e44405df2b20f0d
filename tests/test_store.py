"""The stores' content versions: what the process job's "nothing changed" check relies on.

Reads of a missing key (``get_bytes_or_none``) are tested in tests/test_superseded_records.py.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from imgpipe.store import LocalStore, S3Store, Store


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
