"""The report job: from the analyze job's stored tables to charts, index.html and summary.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from analysis.analyze import run_analyze
from analysis.charts import CHARTS
from analysis.report_stage import MissingTablesError, run_report
from imgpipe.config import PipelineConfig
from imgpipe.store import LocalStore
from spark_jobs.report import main
from tests.tablefixtures import sample_quarantine, sample_rows, write_collection

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def analyzed_root(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose run ``run-1`` has tables written by the analyze job (and nothing else)."""
    root = tmp_path_factory.mktemp("bucket")
    write_collection(spark, LocalStore(root), sample_rows(), sample_quarantine())
    run_analyze(spark, str(root), "run-1", PipelineConfig())
    assert not (root / "reports" / "run-1" / "index.html").exists()
    return root


@pytest.fixture(scope="module")
def report_dir(analyzed_root: Path) -> Path:
    key = run_report(str(analyzed_root), "run-1", PipelineConfig())
    assert key == "reports/run-1/index.html"
    return analyzed_root / "reports" / "run-1"


def test_report_writes_index_and_every_chart_as_png(report_dir: Path) -> None:
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    for name in CHARTS:
        png = report_dir / f"{name}.png"
        assert png.read_bytes().startswith(PNG_MAGIC), name
        assert f'src="{name}.png"' in html


def test_summary_counts_come_from_the_collection(report_dir: Path) -> None:
    rows, quarantine = sample_rows(), sample_quarantine()
    failed = sum(1 for row in rows if row.get("process_error"))
    summary: dict[str, Any] = json.loads((report_dir / "summary.json").read_text())
    assert summary["run_id"] == "run-1"
    assert summary["accepted"] == len(rows)
    assert summary["quarantined"] == len(quarantine)
    assert summary["inputs"] == len(rows) + len(quarantine)
    assert summary["processed"] == len(rows) - failed
    assert summary["report"] == "reports/run-1/index.html"
    assert set(summary["stages"]) == {"report"}
    assert summary["stages"]["report"]["seconds"] > 0


def test_report_of_a_run_without_tables_fails_with_a_clear_message(analyzed_root: Path) -> None:
    with pytest.raises(MissingTablesError, match="run the analyze job for run 'never-analyzed'"):
        run_report(str(analyzed_root), "never-analyzed", PipelineConfig())
    assert not (analyzed_root / "reports" / "never-analyzed").exists()


def test_main_takes_the_job_arguments_and_reports(
    analyzed_root: Path, spark: SparkSession, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(analyzed_root), "--run-id", "run-1", "--top-n", "5"]) == 0
    assert json.loads(capsys.readouterr().out) == {"report": "reports/run-1/index.html"}


def test_main_requires_a_run_id(analyzed_root: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--root", str(analyzed_root)])
    assert exc.value.code == 2
