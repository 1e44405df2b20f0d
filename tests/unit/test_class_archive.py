"""The class archive's bookkeeping: where it lives, when a run writes it, how it is published."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from imgpipe.class_archive import (
    ARCHIVE_NAME,
    KEEP_OTHERS,
    UNUSED_DAYS,
    ClassArchive,
    class_archive,
)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMGPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("IMGPIPE_CLASS_ARCHIVE", raising=False)
    return tmp_path / "cache"


def test_an_existing_archive_is_mapped(tmp_path: Path) -> None:
    archive = ClassArchive(tmp_path / "spark.jsa")
    archive.path.write_bytes(b"archive")

    assert archive.jvm_option(create=True) == f"-XX:SharedArchiveFile={archive.path}"


def test_without_one_only_a_run_that_waits_for_it_asks_the_jvm_to_write_it(tmp_path: Path) -> None:
    archive = ClassArchive(tmp_path / "cache" / "spark.jsa")

    assert archive.jvm_option(create=False) == ""
    option = archive.jvm_option(create=True)

    assert option == f"-XX:ArchiveClassesAtExit={archive.partial}"
    assert archive.partial.parent.is_dir() and archive.partial != archive.path


def test_partial_archives_of_runs_that_died_are_cleared(tmp_path: Path) -> None:
    archive = ClassArchive(tmp_path / "spark.jsa")
    stale = tmp_path / "spark.jsa.12345.partial"
    stale.write_bytes(b"half an archive")

    archive.jvm_option(create=True)

    assert not stale.exists()


def test_publishing_moves_a_finished_archive_into_place(tmp_path: Path) -> None:
    archive = ClassArchive(tmp_path / "spark.jsa")
    assert not archive.publish()  # the JVM wrote nothing

    archive.partial.write_bytes(b"archive")

    assert archive.publish()
    assert archive.path.read_bytes() == b"archive" and not archive.partial.exists()


def test_the_archive_belongs_to_one_jdk(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = class_archive()
    assert first is not None and first.path.parent == cache

    other_jdk = tmp_path / "jdk"
    (other_jdk / "bin").mkdir(parents=True)
    (other_jdk / "bin" / "java").write_bytes(b"#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(other_jdk))
    second = class_archive()

    assert second is not None and second.path != first.path


def test_a_reinstalled_pyspark_writes_its_own_archive(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same folder, same version, new jar files: the JVM refuses the old archive (it compares
    # each jar's size and modification time), so the new installation must not be given it.
    import pyspark

    package = tmp_path / "site-packages" / "pyspark"
    (package / "jars").mkdir(parents=True)
    jar = package / "jars" / "spark-core.jar"
    jar.write_bytes(b"classes")
    monkeypatch.setattr(pyspark, "__file__", str(package / "__init__.py"))
    installed = class_archive()
    assert installed is not None and class_archive() == installed  # stable while nothing changes

    jar.write_bytes(b"classes")  # reinstalled: rewritten in place, a new modification time
    os.utime(jar, ns=(jar.stat().st_atime_ns, jar.stat().st_mtime_ns + 1_000_000_000))
    reinstalled = class_archive()

    assert reinstalled is not None and reinstalled.path != installed.path


def test_it_can_be_turned_off_and_needs_a_java(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMGPIPE_CLASS_ARCHIVE", "0")
    assert class_archive() is None

    monkeypatch.delenv("IMGPIPE_CLASS_ARCHIVE")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-such-jdk"))
    assert class_archive() is None


def test_other_installations_archives_unused_for_a_month_are_deleted(tmp_path: Path) -> None:
    month_ago = time.time() - (UNUSED_DAYS + 1) * 24 * 3600
    archive = ClassArchive(tmp_path / ARCHIVE_NAME.format(key="mine"))
    unused = tmp_path / ARCHIVE_NAME.format(key="reinstalled")
    recent = tmp_path / ARCHIVE_NAME.format(key="other-venv")
    unrelated = tmp_path / "notes.txt"
    for path in (archive.path, unused, recent, unrelated):
        path.write_bytes(b"archive")
        os.utime(path, (month_ago, month_ago))
    os.utime(recent)  # used by another environment today

    option = archive.jvm_option(create=True)

    assert option == f"-XX:SharedArchiveFile={archive.path}"
    assert not unused.exists()
    assert recent.exists() and unrelated.exists()
    # Its own archive was old too, and is kept: mapping it marks it used now.
    assert archive.path.stat().st_mtime > time.time() - 60
    assert archive.prune_unused(now=time.time() + (UNUSED_DAYS + 1) * 24 * 3600) == [recent]


def test_only_the_most_recently_used_other_archives_are_kept(tmp_path: Path) -> None:
    archive = ClassArchive(tmp_path / ARCHIVE_NAME.format(key="mine"))
    archive.path.write_bytes(b"archive")
    now = time.time()
    others = []
    for age in range(KEEP_OTHERS + 2):  # one used an hour ago, the next two hours ago...
        other = tmp_path / ARCHIVE_NAME.format(key=f"venv-{age}")
        other.write_bytes(b"archive")
        os.utime(other, (now - 3600 * (age + 1), now - 3600 * (age + 1)))
        others.append(other)

    removed = archive.prune_unused(now=now)

    assert sorted(removed) == sorted(others[KEEP_OTHERS:])
    assert all(other.exists() for other in others[:KEEP_OTHERS]) and archive.path.exists()
