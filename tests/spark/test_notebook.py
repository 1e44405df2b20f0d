"""The exploration notebook runs top to bottom against a run made by the analyze job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from analysis.analyze import run_analyze
from imgpipe.config import PipelineConfig
from imgpipe.store import LocalStore
from tests.repo import REPO_ROOT
from tests.tablefixtures import sample_quarantine, sample_rows, write_collection

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

NOTEBOOK = REPO_ROOT / "analysis" / "explore.ipynb"


@pytest.fixture(scope="module")
def out_dir(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("out")
    write_collection(spark, LocalStore(root), sample_rows(), sample_quarantine())
    run_analyze(spark, str(root), "20240101T000000Z", PipelineConfig())
    return root


def execute(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Run the notebook in a fresh kernel (cwd = its folder); return its text and image outputs."""
    import nbformat
    from nbclient import NotebookClient

    for name in ("IMGPIPE_RUN_DIR", "IMGPIPE_OUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": NOTEBOOK.parent}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    return [o.get("text", "") for o in outputs] + [
        "image/png" for o in outputs if "image/png" in o.get("data", {})
    ]


def test_notebook_draws_every_chart_for_the_run_in_imgpipe_run_dir(
    out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis.charts import CHARTS

    outputs = execute(
        {"IMGPIPE_RUN_DIR": str(out_dir / "reports" / "20240101T000000Z")}, monkeypatch
    )
    assert any("run 20240101T000000Z" in text for text in outputs)
    assert outputs.count("image/png") == len(CHARTS)


def test_notebook_defaults_to_the_newest_run_under_imgpipe_out(
    spark: SparkSession, out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_analyze(spark, str(out_dir), "20250101T000000Z", PipelineConfig())
    outputs = execute({"IMGPIPE_OUT": str(out_dir)}, monkeypatch)
    assert any("run 20250101T000000Z" in text for text in outputs)


def test_relative_imgpipe_out_is_read_from_where_jupyter_was_started(
    out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `cd DIR && IMGPIPE_OUT=out jupyter notebook analysis/explore.ipynb`: the kernel runs in
    # analysis/ and inherits the shell's PWD, DIR.
    outputs = execute({"PWD": str(out_dir.parent), "IMGPIPE_OUT": out_dir.name}, monkeypatch)
    assert any(f"tables from {out_dir / 'reports'}" in text for text in outputs)
