"""The first local run writes the JVM's class archive; the next one starts from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirig import write_photos
from tests.repo import REPO_ROOT

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def run(photos: Path, out: Path, environment: dict[str, str]) -> dict[str, object]:
    """``imgpipe run`` in a child process (its own JVM); returns its summary."""
    command = [sys.executable, "-m", "imgpipe.cli", "run", str(photos), "--out", str(out)]
    result = subprocess.run(
        [*command, "--labeler", "none"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    (summary,) = (out / "reports").glob("*/summary.json")
    return {"console": result.stdout + result.stderr, **json.loads(summary.read_text())}


def test_the_first_run_writes_the_archive_and_the_next_run_maps_it(tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "photos", 2)
    cache = tmp_path / "cache"
    environment = {**os.environ, "IMGPIPE_CACHE_DIR": str(cache)}
    environment.pop("IMGPIPE_CLASS_ARCHIVE", None)

    first = run(photos, tmp_path / "first", environment)

    (archive,) = cache.glob("spark-classes-*.jsa")
    assert archive.stat().st_size > 10_000_000 and not list(cache.glob("*.partial"))
    assert "class archive" in str(first["console"])
    assert "class_archive" in first["overheads"]  # type: ignore[operator]

    # -Xshare:on: the JVM refuses to start unless it can map the archive, so this run
    # succeeding proves the archive matches the JVM and classpath Spark starts with.
    strict = {**environment, "IMGPIPE_JVM_OPTIONS": "-Xshare:on -XX:TieredStopAtLevel=1"}
    second = run(photos, tmp_path / "second", strict)

    assert "class archive" not in str(second["console"])
    assert "class_archive" not in second["overheads"]  # type: ignore[operator]
    assert second["processed"] == first["processed"] == 2
