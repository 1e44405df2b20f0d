"""The "nothing lost" check itself: it must see what it is meant to catch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from imgpipe.invariants import check_nothing_lost, fingerprint_originals
from imgpipe.store import LocalStore


def store_with_two_records(root: Path) -> LocalStore:
    store = LocalStore(root)
    store.put_bytes("ingest/a.jpg", b"original a")
    store.put_bytes("ingest/b.jpg", b"original b")
    store.put_bytes("metadata/a.jpg.json", b"{}")
    store.put_bytes("quarantine/b.jpg.json", b"{}")
    return store


def test_untouched_originals_pass(tmp_path: Path) -> None:
    store = store_with_two_records(tmp_path)
    originals = fingerprint_originals(store)
    assert sorted(originals) == ["ingest/a.jpg", "ingest/b.jpg"]
    assert check_nothing_lost(store, originals=originals).ok


def test_a_rewritten_original_is_reported_as_modified(tmp_path: Path) -> None:
    store = store_with_two_records(tmp_path)
    originals = fingerprint_originals(store)
    store.put_bytes("ingest/a.jpg", b"rewritten by a bug")
    report = check_nothing_lost(store, originals=originals)
    assert report.modified_originals == ["ingest/a.jpg"]
    assert not report.ok


def test_a_deleted_original_is_reported_as_deleted(tmp_path: Path) -> None:
    store = store_with_two_records(tmp_path)
    originals = fingerprint_originals(store)
    (tmp_path / "ingest" / "b.jpg").unlink()
    report = check_nothing_lost(store, originals=originals)
    assert report.deleted_originals == ["ingest/b.jpg"]
    # Its quarantine record now has no ingest object either.
    assert report.orphan_records == ["quarantine/b.jpg.json"]


class WithFolderPlaceholder(LocalStore):
    """A store that also lists an S3 console folder placeholder, as S3 does."""

    def list_keys(self, prefix: str) -> Iterator[str]:
        yield from super().list_keys(prefix)
        if prefix == "ingest/":
            yield "ingest/album.jpg/"


def test_folder_placeholder_needs_no_record(tmp_path: Path) -> None:
    store_with_two_records(tmp_path)
    store = WithFolderPlaceholder(tmp_path)
    assert "ingest/album.jpg/" in list(store.list_keys("ingest/"))
    assert "ingest/album.jpg/" not in fingerprint_originals(store)
    assert check_nothing_lost(store).ok


def test_without_originals_the_check_is_unchanged(tmp_path: Path) -> None:
    store = store_with_two_records(tmp_path)
    store.put_bytes("ingest/c.jpg", b"no record")
    report = check_nothing_lost(store)
    assert report.unaccounted == ["ingest/c.jpg"]
    assert report.modified_originals == report.deleted_originals == []
