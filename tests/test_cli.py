"""The command line: one clear line for unusable paths, an empty report for an empty folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imgpipe.cli import main


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


@pytest.mark.spark
def test_empty_directory_gives_an_empty_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["run", str(empty), "--out", str(tmp_path / "out"), "--labeler", "none", "-q"])
    out = capsys.readouterr().out
    assert code == 0
    index = Path(out.strip().removeprefix("report: "))
    assert index.is_file() and index.name == "index.html"
    summary = json.loads((index.parent / "summary.json").read_text())
    assert (summary["inputs"], summary["accepted"], summary["quarantined"]) == (0, 0, 0)
