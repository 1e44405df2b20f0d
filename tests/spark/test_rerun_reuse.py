"""A re-run with nothing new computes nothing: no Spark, the last run's analysis reused.

Also: the run summary accounts for the whole run (stages + the time around them = wall time).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from imgpipe import runner
from imgpipe.progress import ProgressReporter
from imgpipe.runner import RunSummary, run_pipeline
from tests.imagefactory import jpeg_bytes, photo_like

pytestmark = pytest.mark.spark


def run(inputs: Path, out: Path) -> RunSummary:
    return run_pipeline(inputs, out, labeler_name="none", progress=ProgressReporter(quiet=True))


def add_photo(inputs: Path, seed: int) -> None:
    (inputs / f"p{seed:03d}.jpg").write_bytes(jpeg_bytes(photo_like(320, 240, seed)))


def tables(out: Path, run_id: str) -> dict[str, pd.DataFrame]:
    folder = out / "reports" / run_id / "tables"
    return {path.name: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}


def written_summary(out: Path, run_id: str) -> dict:
    return json.loads((out / "reports" / run_id / "summary.json").read_text())


@pytest.fixture
def counted_spark_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the runner's Spark starts (the real start still happens)."""
    starts: list[int] = []
    real = runner._start_spark

    def counting():  # type: ignore[no-untyped-def]
        starts.append(1)
        return real()

    monkeypatch.setattr(runner, "_start_spark", counting)
    return starts


def test_rerun_with_nothing_new_reuses_the_analysis_without_spark(
    tmp_path: Path, counted_spark_starts: list[int]
) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for seed in range(3):
        add_photo(inputs, seed)
    (inputs / "broken.jpg").write_bytes(b"not an image at all")
    first = run(inputs, out)
    assert len(counted_spark_starts) == 1

    second = run(inputs, out)
    assert len(counted_spark_starts) == 1  # no Spark this time
    assert first.reused_analysis_of is None and second.reused_analysis_of == first.run_id
    before, after = tables(out, first.run_id), tables(out, second.run_id)
    assert before and sorted(before) == sorted(after)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(frame, after[name])
    assert (out / "reports" / second.run_id / "index.html").is_file()
    summary = written_summary(out, second.run_id)
    assert summary["reused_analysis_of"] == first.run_id
    assert (summary["accepted"], summary["quarantined"], summary["processed"]) == (3, 1, 3)
    assert summary["stages"]["analyze"]["images"] == 0
    assert first.run_id in summary["stages"]["analyze"]["note"]
    assert summary["stages"]["process"]["decoded"] == 0
    assert f"nothing changed since run {first.run_id}: report reused" in second.describe()
    # Same tables, same charts: the earlier run's PNGs are copied, not drawn again.
    charts = sorted(path.name for path in (out / "reports" / first.run_id).glob("*.png"))
    assert charts
    for name in charts:
        copied = out / "reports" / second.run_id / name
        assert copied.read_bytes() == (out / "reports" / first.run_id / name).read_bytes()


def test_a_changed_analysis_is_not_answered_from_the_last_run(
    tmp_path: Path, counted_spark_starts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgpipe import rerun

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    add_photo(inputs, 2)
    run(inputs, out)
    # What an upgrade that changes a query or a chart does to the code's digest.
    monkeypatch.setattr(rerun, "analysis_code_digest", lambda: "another version")

    second = run(inputs, out)

    assert second.reused_analysis_of is None and len(counted_spark_starts) == 2


def test_rerun_with_one_new_image_starts_spark_and_decodes_only_it(
    tmp_path: Path, counted_spark_starts: list[int]
) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for seed in range(3):
        add_photo(inputs, seed)
    run(inputs, out)
    add_photo(inputs, 50)
    second = run(inputs, out)
    assert len(counted_spark_starts) == 2
    assert second.reused_analysis_of is None
    process = second.stages["process"]
    assert (process["images"], process["decoded"], process["reused"]) == (4, 1, 3)
    assert written_summary(out, second.run_id)["stages"]["analyze"]["images"] == 4


def test_a_later_run_starts_spark_with_its_first_new_record_not_after_ingest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for seed in range(3):
        add_photo(inputs, seed)
    run(inputs, out)
    for seed in range(50, 56):
        add_photo(inputs, seed)
    # The records on disk when Spark's start begins (the real start still happens). Each
    # time ingest reports a new record, it waits for that start to have begun, so that the
    # count does not depend on when the starter's thread is scheduled.
    records_at_start: list[int] = []
    started = threading.Event()
    real_start, real_ingest = runner._start_spark, runner.run_ingest

    def counting():  # type: ignore[no-untyped-def]
        records_at_start.append(len(list((out / "metadata").rglob("*.json"))))
        started.set()
        return real_start()

    def ingest(*args, on_new_record):  # type: ignore[no-untyped-def]
        def reported() -> None:
            on_new_record()
            assert started.wait(timeout=60)

        real_ingest(*args, on_new_record=reported)

    monkeypatch.setattr(runner, "_start_spark", counting)
    monkeypatch.setattr(runner, "run_ingest", ingest)

    second = run(inputs, out)

    assert second.stages["process"]["decoded"] == 6
    # Started once, with the first of the six new records (after ingest there are 9).
    assert records_at_start == [4]


def test_changed_settings_are_not_answered_from_the_last_analysis(
    tmp_path: Path, counted_spark_starts: list[int]
) -> None:
    from imgpipe.config import PipelineConfig

    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    add_photo(inputs, 1)
    run(inputs, out)
    second = run_pipeline(
        inputs,
        out,
        labeler_name="none",
        config=PipelineConfig(top_n=3),
        progress=ProgressReporter(quiet=True),
    )
    assert second.reused_analysis_of is None and len(counted_spark_starts) == 2


def test_summary_seconds_add_up_to_the_wall_time(tmp_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    add_photo(inputs, 7)
    for _ in range(2):  # a first run (Spark) and a re-run (reused): both add up
        started = time.perf_counter()
        summary = run(inputs, out)
        wall = time.perf_counter() - started
        written = written_summary(out, summary.run_id)
        charged = sum(stage["seconds"] for stage in written["stages"].values())
        charged += sum(written["overheads"].values())
        assert abs(charged - wall) < 0.2, (charged, wall, written["stages"], written["overheads"])
        assert abs(written["wall_seconds"] - wall) < 0.2
