"""The stores' content versions: what the process job's "nothing changed" check relies on.

Reads of a missing key (``get_bytes_or_none``) are tested in tests/test_superseded_records.py.
"""

from __future__ import annotations

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
