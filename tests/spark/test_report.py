"""The HTML report: charts on disk, an index that references them, escaped user text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from analysis.analyze import run_analyze
from analysis.charts import CHARTS, chart, figure_png, short_name
from analysis.report import build_report
from imgpipe.config import PipelineConfig
from imgpipe.store import LocalStore
from tests.tablefixtures import SCRIPT_LABEL, sample_quarantine, sample_rows, write_collection

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SUMMARY: dict[str, Any] = {
    "run_id": "run-1",
    "inputs": 17,
    "accepted": 14,
    "quarantined": 3,
    "processed": 14,
    "skipped_unchanged": 0,
    "stages": {"ingest": {"seconds": 1.5, "images": 17}, "process": {"seconds": 9.0, "images": 14}},
}


@pytest.fixture(scope="module")
def report_dir(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose report is built from the tables stored by the analyze job (tables=None)."""
    root = tmp_path_factory.mktemp("bucket")
    store = LocalStore(root)
    write_collection(spark, store, sample_rows(), sample_quarantine())
    run_analyze(spark, str(root), "run-1", PipelineConfig())
    key = build_report(store, "run-1", None, SUMMARY)
    assert key == "reports/run-1/index.html"
    return root / "reports" / "run-1"


def referenced_images(html: str) -> set[str]:
    return set(re.findall(r'<img[^>]*\ssrc="([^"]+)"', html))


def test_index_references_every_chart_png_on_disk(report_dir: Path) -> None:
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    on_disk = {p.name for p in report_dir.glob("*.png")}
    assert on_disk == {f"{name}.png" for name in CHARTS}
    assert on_disk <= referenced_images(html)


def test_chart_pngs_are_valid_images(report_dir: Path) -> None:
    from PIL import Image

    for png in report_dir.glob("*.png"):
        assert png.read_bytes().startswith(PNG_MAGIC), png.name
        with Image.open(png) as image:
            image.verify()
            assert image.width > 100 and image.height > 50


def test_label_names_from_user_files_are_html_escaped(report_dir: Path) -> None:
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    assert SCRIPT_LABEL not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert html.count("<script") == 1  # the gallery filter, and no script from a label name


def test_summary_counts_and_stages_are_shown(report_dir: Path) -> None:
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    assert re.search(r"<b>17</b>\s*inputs<small>14 accepted \+ 3 quarantined</small>", html)
    assert "<td>process</td>" in html
    assert "<td>report</td>" in html  # the report stage has its own row


def test_quarantine_list_shows_keys_and_reasons(report_dir: Path) -> None:
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    for record in sample_quarantine():
        assert f"<td>{record.key}</td><td>{record.reason}</td>" in html


def test_gallery_links_thumbnails_relative_to_the_bucket_root(report_dir: Path) -> None:
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    thumbs = {src for src in referenced_images(html) if src.startswith("../../")}
    expected = {f"../../{r['thumbnail_key']}" for r in sample_rows() if r["thumbnail_key"]}
    assert thumbs == expected


def test_empty_run_still_renders_a_report_with_no_data_charts(
    spark: SparkSession, tmp_path: Path
) -> None:
    tables = run_analyze(spark, str(tmp_path), "empty", PipelineConfig())
    key = build_report(LocalStore(tmp_path), "empty", tables, {"run_id": "empty"})
    html = (tmp_path / key).read_text(encoding="utf-8")
    assert "nothing was quarantined" in html
    assert {p.name for p in (tmp_path / key).parent.glob("*.png")} <= referenced_images(html)


def test_missing_table_draws_no_data_instead_of_failing() -> None:
    for name in CHARTS:
        png = figure_png(chart(name, None))
        assert png.startswith(PNG_MAGIC)
        fig = chart(name, pd.DataFrame())
        assert any("no data" in t.get_text() for t in fig.axes[0].texts)


def test_long_names_are_truncated_with_an_ellipsis_and_dollars_escaped() -> None:
    assert short_name("x" * 100) == "x" * 39 + "…"
    assert short_name("price $5 and $6") == r"price \$5 and \$6"
    assert short_name("two\nlines") == "two lines"
    assert short_name(None) == "(empty)"
