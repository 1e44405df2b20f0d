"""The report page: a gallery of every image once with in-page filters, quality flags that
name their images, one line instead of an empty chart, readable file modes, summary cards."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from analysis.analyze import run_analyze
from analysis.charts import chart
from analysis.report import build_report, summary_cards
from imgpipe.config import PipelineConfig
from imgpipe.store import LocalStore
from tests.tablefixtures import image_row, sample_quarantine, sample_rows, write_collection

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark


class Page(HTMLParser):
    """The gallery's figures (attributes, image sources, caption text) and the filter selects."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[dict[str, Any]] = []
        self.selects: list[dict[str, Any]] = []
        self.sections: dict[str, str] = {}
        self._section: str | None = None
        self._in_gallery = False
        self._caption = False
        self._option: dict[str, Any] | None = None
        self.script = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes.get("id")
            self.sections[self._section or ""] = ""
            self._in_gallery = self._section == "gallery"
        elif tag == "figure" and self._in_gallery:
            self.figures.append({"attrs": attributes, "src": None, "caption": ""})
        elif tag == "img" and self._in_gallery and self.figures:
            self.figures[-1]["src"] = attributes.get("src")
        elif tag == "figcaption":
            self._caption = True
        elif tag == "select":
            self.selects.append({**attributes, "options": []})
        elif tag == "option" and self.selects:
            self._option = {"value": attributes.get("value"), "none": "data-none" in attributes}
            self.selects[-1]["options"].append(self._option)
        elif tag == "script":
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "figcaption":
            self._caption = False
        elif tag == "option":
            self._option = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script += data
        if self._option is not None and self._option["value"] is None:
            self._option["value"] = data  # an option without a value attribute: its text
        if self._caption and self.figures:
            self.figures[-1]["caption"] += data
        if self._section:
            self.sections[self._section] += data


SUMMARY: dict[str, Any] = {"run_id": "run-1", "inputs": 20, "accepted": 17, "quarantined": 3}


@pytest.fixture(scope="module")
def report_dir(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bucket")
    store = LocalStore(root)
    write_collection(spark, store, sample_rows(), sample_quarantine())
    tables = run_analyze(spark, str(root), "run-1", PipelineConfig())
    build_report(store, "run-1", tables, dict(SUMMARY))
    return root / "reports" / "run-1"


@pytest.fixture(scope="module")
def page(report_dir: Path) -> Page:
    parser = Page()
    parser.feed((report_dir / "index.html").read_text(encoding="utf-8"))
    return parser


def test_every_accepted_image_is_in_the_gallery_exactly_once(page: Page) -> None:
    rows = sample_rows()
    sources = [f["src"] for f in page.figures if f["src"]]
    thumbnails = {f"../../{r['thumbnail_key']}" for r in rows if r["thumbnail_key"]}
    assert sorted(sources) == sorted(thumbnails)  # each thumbnail once, none missing
    captions = " ".join(f["caption"] for f in page.figures)
    for row in rows:  # exact copies share a thumbnail, but every key is named once
        assert captions.count(row["key"]) == 1, row["key"]
    unlabeled = [r for r in rows if not r["labels"] and r["thumbnail_key"]]
    assert unlabeled and all(f"../../{r['thumbnail_key']}" in sources for r in unlabeled)


def test_gallery_figures_carry_what_the_filters_match(page: Page) -> None:
    filters = {s.get("data-filter") for s in page.selects}
    assert {"labels", "creators", "flags"} <= filters
    by_src = {f["src"]: f["attrs"] for f in page.figures if f["src"]}
    cat_and_dog = next(a for src, a in by_src.items() if "aaaa" in src)
    assert json.loads(cat_and_dog["data-labels"]) == ["Cat", "Dog"]
    assert json.loads(cat_and_dog["data-creators"]) == ["alice", "bob"]
    blank = next(a for src, a in by_src.items() if "6666" in src)
    assert json.loads(blank["data-labels"]) == []


def test_the_page_reads_without_javascript_and_loads_nothing_from_the_network(
    report_dir: Path,
) -> None:
    html = (report_dir / "index.html").read_text(encoding="utf-8")
    assert 'id="gallery-filter" hidden' in html  # controls appear only when the script runs
    assert "http://" not in html and "https://" not in html
    assert "<script src" not in html


def test_quality_flags_name_their_images(page: Page) -> None:
    quality = page.sections["quality"]
    assert "ingest/bob/dog-on-grass.png" in quality  # blurry and dark
    assert "ingest/carol/sky1.jpg" in quality  # overexposed
    dog = next(f for f in page.figures if "dog-on-grass" in f["caption"])
    assert "blurry" in dog["caption"] and "dark" in dog["caption"]


def test_hierarchy_is_shown_once_with_the_labels_below_each_parent(page: Page) -> None:
    hierarchy = page.sections["label_parents"]
    assert "Label hierarchy" in hierarchy
    assert "Rocket (1), Vehicle (1)" in hierarchy
    assert "Rocket + Vehicle" not in page.sections["label_pairs"]


def test_report_files_have_the_mode_of_other_output(report_dir: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    parquet = next((report_dir / "tables").glob("*.parquet"))
    expected = 0o666 & ~umask
    for path in [report_dir / "index.html", *report_dir.glob("*.png"), parquet]:
        assert stat.S_IMODE(path.stat().st_mode) == expected, path.name


def test_analysis_with_nothing_to_show_says_why_in_one_line(
    spark: SparkSession, tmp_path: Path
) -> None:
    # Photos without EXIF: no date taken, no camera (one "unknown unknown" row).
    rows = [image_row(f"ingest/p{i}.png", f"sha256:{i}", format="PNG") for i in range(3)]
    store = LocalStore(tmp_path)
    write_collection(spark, store, rows, [])
    tables = run_analyze(spark, str(tmp_path), "run-1", PipelineConfig())
    build_report(store, "run-1", tables, {"run_id": "run-1"})
    html = (tmp_path / "reports/run-1/index.html").read_text(encoding="utf-8")
    parser = Page()
    parser.feed(html)
    assert "No image has an EXIF date taken." in parser.sections["images_over_time"]
    assert "No image records its camera" in parser.sections["cameras"]
    assert "no data" not in html
    pngs = {p.name for p in (tmp_path / "reports/run-1").glob("*.png")}
    assert "images_over_time.png" not in pngs and "cameras.png" not in pngs
    assert "formats.png" in pngs


def test_resolution_bin_names_do_not_overlap() -> None:
    bins = ["< 1 MP", "1-2 MP", "2-5 MP", "5-8 MP", "8-12 MP", "12-16 MP", "16-24 MP", ">= 24 MP"]
    fig = chart("megapixels", pd.DataFrame({"bin": bins, "images": range(1, 9)}))
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = [t for t in (*ax.get_xticklabels(), *ax.get_yticklabels()) if t.get_text() in bins]
    assert len(labels) == len(bins)
    boxes = [t.get_window_extent() for t in labels]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)


def test_long_month_labels_are_turned_rather_than_overlapping() -> None:
    months = [f"20{y:02d}-{m:02d}" for y in range(20, 23) for m in range(1, 13)]
    fig = chart("images_over_time", pd.DataFrame({"month": months, "images": [1] * len(months)}))
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert all(a.x1 <= b.x0 for a, b in itertools.pairwise(boxes))


def test_cards_add_up_and_a_first_run_does_not_claim_unchanged_inputs() -> None:
    process = {"seconds": 1.0, "images": 15, "decoded": 14, "reused": 1}
    base = {"inputs": 17, "accepted": 15, "quarantined": 2, "processed": 15}
    first = summary_cards(
        {**base, "skipped_unchanged": 0, "first_run": True, "stages": {"process": process}}
    )
    assert [(c["value"], c["name"]) for c in first] == [
        (17, "inputs"),
        (17, "inspected by this run"),
        (15, "processed (thumbnail and features)"),
    ]
    assert first[0]["detail"] == "15 accepted + 2 quarantined"
    assert first[1]["detail"] == "first run: every input is new"
    assert "14 decoded by this run + 1 reused" in first[2]["detail"]
    again = summary_cards(
        {
            **base,
            "skipped_unchanged": 17,
            "first_run": False,
            "stages": {"process": {**process, "decoded": 0, "reused": 15}},
        }
    )
    assert (again[1]["value"], again[1]["detail"]) == (
        0,
        "17 unchanged since the last run were not inspected again",
    )
    assert "0 decoded by this run + 15 reused" in again[2]["detail"]


# Runs the page's script against a stand-in for the few DOM calls it makes, then applies
# each choice of filters and prints which figures stay shown.
FILTER_HARNESS = """
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const figures = input.figures.map((attrs) => ({
  hidden: false, getAttribute: (name) => attrs[name],
}));
const selects = input.selects.map((s) => ({
  selectedIndex: 0,
  options: s.options.map((o) => ({
    value: o.value, hasAttribute: (n) => n === "data-none" && o.none,
  })),
  get value() { return this.options[this.selectedIndex].value; },
  getAttribute: () => s.filter,
}));
let onChange = null;
const form = { hidden: true, querySelectorAll: () => selects,
  addEventListener: (event, handler) => { onChange = handler; } };
const counter = { textContent: "" };
globalThis.document = {
  getElementById: (id) => (id === "gallery-filter" ? form : counter),
  querySelectorAll: () => figures,
};
eval(input.script);
const results = input.choices.map((choice) => {
  choice.forEach((index, i) => { selects[i].selectedIndex = index; });
  onChange();
  return figures.map((f, i) => (f.hidden ? -1 : i)).filter((i) => i >= 0);
});
console.log(JSON.stringify({ shownForm: !form.hidden, results }));
"""


def _node() -> str | None:
    beside_python = Path(sys.executable).parent / "node"
    return shutil.which("node") or (str(beside_python) if beside_python.exists() else None)


@pytest.mark.skipif(_node() is None, reason="needs node to run the page's script")
def test_gallery_filter_script_shows_exactly_the_matching_images(page: Page) -> None:
    selects = [{"filter": s["data-filter"], "options": s["options"]} for s in page.selects]
    figures = [f["attrs"] for f in page.figures]
    data = [{s["filter"]: json.loads(f[f"data-{s['filter']}"]) for s in selects} for f in figures]

    def index(filter_name: str, *, value: str = "", none: bool = False) -> int:
        select = next(s for s in selects if s["filter"] == filter_name)
        return next(
            i
            for i, o in enumerate(select["options"])
            if o["none"] == none and (none or o["value"] == value)
        )

    def choice(**picked: int) -> list[int]:
        return [picked.get(s["filter"], 0) for s in selects]

    cases = {
        "Cat": (choice(labels=index("labels", value="Cat")), lambda d: "Cat" in d["labels"]),
        "Cat by bob": (
            choice(labels=index("labels", value="Cat"), creators=index("creators", value="bob")),
            lambda d: "Cat" in d["labels"] and "bob" in d["creators"],
        ),
        "no label": (choice(labels=index("labels", none=True)), lambda d: not d["labels"]),
        "dark": (choice(flags=index("flags", value="dark")), lambda d: "dark" in d["flags"]),
        "all": (choice(), lambda d: True),
    }
    harness = {
        "script": page.script,
        "figures": figures,
        "selects": selects,
        "choices": [c for c, _ in cases.values()],
    }
    node = _node()
    assert node is not None
    done = subprocess.run(
        [node, "-e", FILTER_HARNESS],
        input=json.dumps(harness),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    output = json.loads(done.stdout)
    assert output["shownForm"]  # the controls appear once the script runs
    for (name, (_, keeps)), shown in zip(cases.items(), output["results"], strict=True):
        expected = [i for i, d in enumerate(data) if keeps(d)]
        assert expected, name  # each case selects something, so the check means something
        assert shown == expected, name
