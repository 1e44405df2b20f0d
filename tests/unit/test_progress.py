"""Stage progress on a terminal ends in a finished state; off a terminal, in plain lines."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from rich.console import Console

from imgpipe.progress import ProgressReporter


def final_frames(run: ProgressReporter, buffer: StringIO) -> list[str]:
    """The last frame each live bar left on the terminal, without colours or cursor codes."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())
    return [frame.split("\r")[-1].strip() for frame in text.split("\n") if frame.strip()]


def terminal_reporter() -> tuple[ProgressReporter, StringIO]:
    buffer = StringIO()
    reporter = ProgressReporter(stream=buffer)
    reporter.console = Console(file=buffer, force_terminal=True, width=80)
    return reporter, buffer


def test_bars_of_stages_without_a_count_end_done_not_at_zero_of_unknown() -> None:
    reporter, buffer = terminal_reporter()
    for name in ("process", "analyze", "report"):
        with reporter.stage(name):
            pass

    frames = final_frames(reporter, buffer)

    assert [frame.split()[0] for frame in frames] == ["process", "analyze", "report"]
    for frame in frames:
        assert "0/?" not in frame and " done " in frame, frame


def test_counted_bar_ends_at_its_count() -> None:
    reporter, buffer = terminal_reporter()
    with reporter.stage("ingest", total=3) as advance:
        for _ in range(3):
            advance(1)

    (frame,) = final_frames(reporter, buffer)

    assert frame.startswith("ingest") and " 3/3 " in frame


def test_a_stage_that_fails_is_not_drawn_done() -> None:
    reporter, buffer = terminal_reporter()
    with pytest.raises(RuntimeError), reporter.stage("process"):
        raise RuntimeError("the job failed")

    (frame,) = final_frames(reporter, buffer)

    assert " done " not in frame and " running " in frame
