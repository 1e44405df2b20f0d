"""The local sessions' Python daemon drops Spark's bundled archives from its workers' path."""

from __future__ import annotations

import os
import sys
import zipimport
from pathlib import Path

import pytest

from imgpipe.local_daemon import without_spark_archives


def spark_home(tmp_path: Path) -> tuple[str, list[str]]:
    home = tmp_path / "pyspark"
    lib = home / "python" / "lib"
    lib.mkdir(parents=True)
    archives = [str(lib / "pyspark.zip"), str(lib / "py4j-0.10.9.9-src.zip")]
    archives.append(str(home / "jars" / "spark-core_2.13-4.0.5.jar"))
    return str(home), archives


def test_the_archives_and_their_importers_go_when_pyspark_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, archives = spark_home(tmp_path)
    monkeypatch.setenv("SPARK_HOME", home)
    monkeypatch.setattr(sys, "path", [*archives, *sys.path])
    # What importing a package from a zip leaves behind: an importer per package folder.
    inside = os.path.join(archives[0], "pyspark", "sql")
    monkeypatch.setitem(sys.path_importer_cache, inside, object.__new__(zipimport.zipimporter))
    without_spark_archives()
    assert not set(archives) & set(sys.path)
    assert inside not in sys.path_importer_cache


def test_the_archives_stay_when_pyspark_is_only_in_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, archives = spark_home(tmp_path)
    monkeypatch.setenv("SPARK_HOME", home)
    monkeypatch.setattr(sys, "path", [*archives, str(tmp_path)])
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    without_spark_archives()
    assert sys.path == [*archives, str(tmp_path)]
