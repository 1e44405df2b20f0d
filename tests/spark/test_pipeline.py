"""End-to-end local runs: real files, real decoding, real local Spark."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imgpipe.invariants import check_nothing_lost
from imgpipe.progress import ProgressReporter
from imgpipe.runner import RunSummary, run_pipeline
from imgpipe.store import LocalStore
from tests.imagefactory import jpeg_bytes, photo_like, png_bytes

pytestmark = pytest.mark.spark

ACCEPTED = {
    "ingest/alice/a1.jpg": "alice",
    "ingest/alice/a2.jpg": "alice",
    "ingest/alice/a2 copy+1%.jpg": "alice",
    "ingest/bob/b1.png": "bob",
    "ingest/bob/b2.jpg": "Carol",
    "ingest/top.jpg": "unknown",
}
QUARANTINED = {
    "ingest/bad/empty.jpg": "empty_file",
    "ingest/bad/page.jpg": "not_an_image",
    "ingest/bad/cut.jpg": "truncated",
    "ingest/bad/tiny.png": "too_small",
    "ingest/bad/link.jpg": "not_a_regular_file",
}


def make_collection(root: Path) -> None:
    files = {
        "alice/a1.jpg": jpeg_bytes(
            photo_like(640, 480, 1), make="Canon", model="EOS 40D", taken="2021:05:03 10:00:00"
        ),
        "alice/a2.jpg": jpeg_bytes(
            photo_like(800, 600, 2), make="Canon", model="EOS 40D", taken="2021:05:20 11:00:00"
        ),
        "bob/b1.png": png_bytes(photo_like(300, 200, 3)),
        "bob/b2.jpg": jpeg_bytes(
            photo_like(500, 500, 4),
            make="NIKON",
            model="D70",
            artist="Carol  \x00\x00",
            taken="2022:01:02 03:04:05",
        ),
        "top.jpg": jpeg_bytes(photo_like(400, 300, 5)),
        "bad/empty.jpg": b"",
        "bad/page.jpg": b"<!DOCTYPE html><html><body>not a photo</body></html>",
        "bad/tiny.png": png_bytes(photo_like(40, 40, 6)),
    }
    files["alice/a2 copy+1%.jpg"] = files["alice/a2.jpg"]
    whole = jpeg_bytes(photo_like(640, 480, 7))
    files["bad/cut.jpg"] = whole[: len(whole) // 2]
    for name, payload in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
    (root / "bad/link.jpg").symlink_to(root / "top.jpg")
    (root / "bad/folder.jpg").mkdir()  # a directory named like an image holds nothing


def run(inputs: Path, out: Path) -> RunSummary:
    return run_pipeline(inputs, out, labeler_name="none", progress=ProgressReporter(quiet=True))


def table_keys(out: Path) -> list[str]:
    return pq.read_table(out / "processed" / "images", columns=["key"]).column("key").to_pylist()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, RunSummary]:
    inputs, out = tmp_path_factory.mktemp("inputs"), tmp_path_factory.mktemp("out")
    make_collection(inputs)
    return inputs, out, run(inputs, out)


def test_every_input_is_accepted_or_quarantined_with_its_reason(first_run) -> None:
    _, out, summary = first_run
    assert (summary.inputs, summary.accepted, summary.quarantined) == (11, 6, 5)
    store = LocalStore(out)
    accepted = {json.loads(store.get_bytes(k))["key"] for k in store.list_keys("metadata/")}
    assert accepted == set(ACCEPTED)
    reasons = {
        record["key"]: record["reason"]
        for record in (json.loads(store.get_bytes(k)) for k in store.list_keys("quarantine/"))
    }
    assert reasons == QUARANTINED
    report = check_nothing_lost(
        store, table_keys(out), rejected_before_upload=["ingest/bad/link.jpg"]
    )
    assert report.ok, report


def test_originals_are_copied_unchanged(first_run) -> None:
    inputs, out, _ = first_run
    for key in set(ACCEPTED) | set(QUARANTINED) - {"ingest/bad/link.jpg"}:
        relative = key.removeprefix("ingest/")
        assert (out / key).read_bytes() == (inputs / relative).read_bytes()


def test_creators_follow_the_precedence(first_run) -> None:
    _, out, _ = first_run
    store = LocalStore(out)
    creators = {
        record["key"]: record["creator"]
        for record in (json.loads(store.get_bytes(k)) for k in store.list_keys("metadata/"))
    }
    assert creators == ACCEPTED


def test_table_has_one_row_per_accepted_image_with_thumbnails(first_run) -> None:
    _, out, summary = first_run
    table = pq.read_table(out / "processed" / "images").to_pylist()
    assert sorted(row["key"] for row in table) == sorted(ACCEPTED)
    assert summary.processed == len(ACCEPTED)
    for row in table:
        assert row["process_error"] is None
        assert (out / row["thumbnail_key"]).is_file()
    # a2 and its copy share content, so they share one thumbnail
    by_key = {row["key"]: row for row in table}
    assert (
        by_key["ingest/alice/a2.jpg"]["thumbnail_key"]
        == by_key["ingest/alice/a2 copy+1%.jpg"]["thumbnail_key"]
    )


def test_report_and_summary_are_written(first_run) -> None:
    _, out, summary = first_run
    run_dir = out / "reports" / summary.run_id
    assert (run_dir / "index.html").is_file()
    assert list(run_dir.glob("*.png"))
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["accepted"] == 6 and written["quarantined"] == 5
    assert set(written["stages"]) == {"ingest", "process", "analyze", "report"}
    assert all(stage["seconds"] >= 0 for stage in written["stages"].values())


def test_first_run_counts_add_up_and_claim_no_last_run(first_run) -> None:
    _, out, summary = first_run
    assert summary.inputs == summary.accepted + summary.quarantined
    assert summary.first_run and summary.skipped_unchanged == 0
    written = json.loads((out / "reports" / summary.run_id / "summary.json").read_text())
    process = written["stages"]["process"]
    # a2 and its exact copy are one decode: 5 decoded + 1 reused = the 6 rows of the table.
    assert (process["images"], process["decoded"], process["reused"]) == (6, 5, 1)
    assert written["processed"] == 6
    assert written["stages"]["analyze"]["images"] == written["stages"]["report"]["images"] == 6
    assert written["stages"]["ingest"]["images"] == 11
    line = summary.describe()
    assert "first run" in line and "unchanged since the last run" not in line
    assert line.startswith("11 inputs: 6 accepted, 5 quarantined")


def test_first_run_report_shows_counts_that_add_up_and_every_stage(first_run) -> None:
    _, out, summary = first_run
    html = (out / "reports" / summary.run_id / "index.html").read_text(encoding="utf-8")
    assert re.search(r"<b>11</b>inputs<small>6 accepted \+ 5 quarantined</small>", html)
    assert "first run: every input is new" in html
    assert "5 decoded by this run + 1 reused" in html
    for stage in ("ingest", "process", "analyze", "report"):
        assert f"<td>{stage}</td>" in html


def test_second_run_reuses_records_and_duplicates_nothing(first_run) -> None:
    inputs, out, first = first_run
    second = run(inputs, out)
    assert second.run_id != first.run_id
    assert (second.accepted, second.quarantined) == (6, 5)
    # Everything that had bytes was reused; the empty file and the link are re-checked.
    assert second.skipped_unchanged == 9
    assert not second.first_run
    assert "2 inspected, 9 unchanged since the last run" in second.describe()
    process = second.stages["process"]
    assert (process["images"], process["decoded"], process["reused"]) == (6, 0, 6)
    assert second.processed == 6
    html = (out / "reports" / second.run_id / "index.html").read_text(encoding="utf-8")
    assert "9 unchanged since the last run were not inspected again" in html
    assert "0 decoded by this run + 6 reused" in html
    keys = table_keys(out)
    assert sorted(keys) == sorted(ACCEPTED)
    report = check_nothing_lost(
        LocalStore(out), keys, rejected_before_upload=["ingest/bad/link.jpg"]
    )
    assert report.ok, report
