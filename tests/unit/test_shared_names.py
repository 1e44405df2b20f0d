"""Names the stack and the running code share are spelled once, in :mod:`imgpipe.deployment`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imgpipe import deployment
from imgpipe.records import new_run_id
from tests.repo import REPO_ROOT

ROOT = REPO_ROOT
SOURCES = ("imgpipe", "lambda_src", "stacks", "spark_jobs", "analysis", "app.py")


def shared_names() -> list[str]:
    """Every string constant of the module, and the metric names."""
    names = [
        value
        for name, value in vars(deployment).items()
        if name.isupper() and isinstance(value, str)
    ]
    names += [metric.value for metric in deployment.IngestMetric]
    # "imgpipe", the metric namespace, is also the package's name: it cannot be searched for.
    return [name for name in names if name != deployment.METRIC_NAMESPACE]


def source_files() -> list[Path]:
    files: list[Path] = []
    for source in SOURCES:
        path = ROOT / source
        if path.is_dir():
            files += sorted(path.rglob("*.py"))
        elif path.exists():
            files.append(path)
    return files


def test_the_module_names_the_crossing_names_the_stack_and_handler_use() -> None:
    names = shared_names()
    for expected in ("IMGPIPE_BUCKET", "BucketName", "imgpipe-ingest", "FailedMessages"):
        assert expected in names
    assert "_imgpipe-check/" in names


@pytest.mark.parametrize("name", shared_names())
def test_shared_name_is_spelled_only_in_the_deployment_module(name: str) -> None:
    literal = re.compile(rf"""["']{re.escape(name)}["']""")
    spelled = [
        path.relative_to(ROOT).as_posix()
        for path in source_files()
        if literal.search(path.read_text(encoding="utf-8"))
    ]
    assert spelled == ["imgpipe/deployment.py"]


def test_run_id_is_the_utc_second_and_counts_up_while_taken() -> None:
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert new_run_id(now=now) == "20250102T030405Z"
    taken = {"20250102T030405Z", "20250102T030405Z-2"}
    assert new_run_id(taken.__contains__, now=now) == "20250102T030405Z-3"
