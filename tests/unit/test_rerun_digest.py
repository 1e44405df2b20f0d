"""The analysis code's digest: an upgrade that changes a query or a chart changes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from imgpipe.rerun import analysis_code_digest, code_digest
from tests.repo import REPO_ROOT


@pytest.mark.parametrize("changed", ["sql/top_labels.sql", "charts.py"])
def test_changing_a_query_or_a_chart_changes_the_digest(tmp_path: Path, changed: str) -> None:
    copy = tmp_path / "analysis"
    shutil.copytree(REPO_ROOT / "analysis", copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_digest(copy)
    assert before == analysis_code_digest()  # the copy is the installed package's code

    with (copy / changed).open("a") as file:
        file.write("\n-- changed\n" if changed.endswith(".sql") else "\n# changed\n")

    assert code_digest(copy) != before
