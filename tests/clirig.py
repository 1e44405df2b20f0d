"""Helpers for driving ``imgpipe run`` as a user would: a folder of photos, the JVM's chatter."""

from __future__ import annotations

from pathlib import Path

from tests.imagefactory import jpeg_bytes, photo_like

# Lines the driver JVM prints at start-up, outside log4j (see imgpipe/spark.py).
JVM_CHATTER = ("WARNING: Using incubator", "Setting default log level", "For SparkR")


def write_photos(folder: Path, count: int, width: int = 200, height: int = 160) -> Path:
    folder.mkdir()
    for seed in range(count):
        (folder / f"photo{seed}.jpg").write_bytes(jpeg_bytes(photo_like(width, height, seed)))
    return folder
