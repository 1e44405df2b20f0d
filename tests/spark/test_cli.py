"""The command line: one clear line for unusable paths and empty folders, a quiet console."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from py4j.protocol import Py4JNetworkError

from imgpipe import cli, runner
from imgpipe.cli import build_parser, main
from tests.clirig import write_photos
from tests.repo import REPO_ROOT


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m imgpipe.cli ARGS`` in a child process, as a user's shell would run it."""
    command = [sys.executable, "-m", "imgpipe.cli", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_missing_input_is_one_line_and_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", str(tmp_path / "nope"), "--out", str(tmp_path / "out"), "--labeler", "none"]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and "not found" in err and "nope" in err
    assert not (tmp_path / "out").exists()


def test_file_instead_of_directory_is_one_line_and_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x")
    code = main(["run", str(photo), "--out", str(tmp_path / "out"), "--labeler", "none"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and "not a file" in err


def test_bad_option_value_is_one_line_and_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(tmp_path), "--out", str(tmp_path / "o"), "--thumbnail-size", "3"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and "thumbnail_size" in err


def test_empty_directory_says_so_in_one_line_without_starting_spark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_spark() -> None:
        raise AssertionError("Spark was started for an empty folder")

    monkeypatch.setattr(runner, "_start_spark", no_spark)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "album").mkdir()  # folders alone are not files
    code = main(["run", str(empty), "--out", str(tmp_path / "out"), "--labeler", "none", "-q"])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out == ""
    assert captured.err == f"imgpipe: no files found in {empty}: nothing to do\n"
    assert not (tmp_path / "out").exists()  # no report, not even the output folder


def test_every_tuning_option_says_what_it_is_and_in_which_unit() -> None:
    run = next(
        action.choices["run"]
        for action in build_parser()._actions
        if hasattr(action, "choices") and isinstance(action.choices, dict)
    )
    (tuning,) = [group for group in run._action_groups if group.title == "tuning"]
    assert len(tuning._group_actions) == 10
    for action in tuning._group_actions:
        help_text = action.help or ""
        meaning = re.sub(r"\(default: [^)]*\)", "", help_text).strip()
        assert len(meaning.split()) >= 3, f"{action.option_strings[0]}: {help_text!r}"
        assert action.metavar and action.metavar != action.dest.upper(), action.option_strings
    max_bytes = next(a for a in tuning._group_actions if a.dest == "max_bytes")
    assert max_bytes.metavar == "BYTES" and "200 MiB" in (max_bytes.help or "")


@pytest.mark.spark
@pytest.mark.slow
def test_quiet_run_prints_exactly_the_report_path_and_no_jvm_chatter(tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "photos", 3)
    out = tmp_path / "out"

    result = run_cli("run", str(photos), "--out", str(out), "-q", "--labeler", "none")

    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("report: ") and Path(line.removeprefix("report: ")).is_file()
    assert result.stderr == ""


def test_interrupt_is_one_line_and_exit_130_without_py4j_tracebacks(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted_in_py4j(*_: object, **__: object) -> None:
        # What py4j does when Ctrl-C arrives mid-call: it logs the interrupt, then the
        # failure to close its socket, each with a traceback, and re-raises.
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            logging.exception("KeyboardInterrupt while sending command.")
            try:
                raise ConnectionResetError("socket closed")
            except ConnectionResetError:
                logging.getLogger("py4j.clientserver").exception("Exception while shutting down")
            raise

    monkeypatch.setattr(cli, "run_pipeline", interrupted_in_py4j)
    photos = write_photos(tmp_path / "photos", 1)

    code = main(["run", str(photos), "--out", str(tmp_path / "out"), "--labeler", "none"])

    assert code == 130
    assert capsys.readouterr().err == "imgpipe: interrupted\n"
    assert caplog.records == []


@pytest.mark.parametrize(
    "failure",
    # py4j's own error, and one of the kinds the CLI otherwise reports as a usage error.
    [Py4JNetworkError("Answer from Java side is empty"), RuntimeError("Java gateway gone")],
    ids=["py4j", "runtime-error"],
)
def test_a_cleanup_that_fails_while_an_interrupt_unwinds_is_still_the_interrupt(
    failure: Exception,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def cleanup_meets_a_closed_gateway(*_: object, **__: object) -> None:
        # A loaded machine: the Ctrl-C cut a py4j call off mid-answer, and a ``finally`` that
        # calls the JVM again finds the connection gone.
        try:
            raise KeyboardInterrupt
        finally:
            raise failure

    monkeypatch.setattr(cli, "run_pipeline", cleanup_meets_a_closed_gateway)
    photos = write_photos(tmp_path / "photos", 1)

    code = main(["run", str(photos), "--out", str(tmp_path / "out"), "--labeler", "none"])

    assert code == 130
    assert capsys.readouterr().err == "imgpipe: interrupted\n"


def test_the_same_error_without_an_interrupt_keeps_its_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gateway_gone(*_: object, **__: object) -> None:
        raise Py4JNetworkError("Answer from Java side is empty")

    monkeypatch.setattr(cli, "run_pipeline", gateway_gone)
    photos = write_photos(tmp_path / "photos", 1)

    with pytest.raises(Py4JNetworkError):
        main(["run", str(photos), "--out", str(tmp_path / "out"), "--labeler", "none"])


def test_spark_that_cannot_start_shows_the_jvm_output_in_the_error(tmp_path: Path) -> None:
    # The JVM's stderr is kept out of the console, but not when it is the only clue.
    photos = write_photos(tmp_path / "photos", 1)
    environment = {**os.environ, "JAVA_HOME": str(tmp_path / "no-such-jdk")}
    command = [sys.executable, "-m", "imgpipe.cli", "run", str(photos), "--out"]
    result = subprocess.run(
        [*command, str(tmp_path / "out"), "-q", "--labeler", "none"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 2
    first, *tail = result.stderr.splitlines()
    assert first.startswith("imgpipe: error: Spark did not start")
    assert any("no-such-jdk/bin/java: No such file or directory" in line for line in tail)
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
