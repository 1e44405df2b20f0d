"""Shared fixtures: the real-image corpus and one local SparkSession for the whole run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "exif-samples"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-image corpus beside the repository (``../shared/corpus/exif-samples``)."""
    if not CORPUS.is_dir():
        pytest.skip(f"real-image corpus not found at {CORPUS} (only in the project workspace)")
    return CORPUS


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One local SparkSession shared by every test that needs Spark (JVM start-up is slow)."""
    from imgpipe.spark import local_session

    session = local_session("imgpipe-tests", cores="2")
    yield session
    session.stop()
