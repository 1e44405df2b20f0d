"""Where the tests look for the real-image corpus: ``$IMGPIPE_TEST_CORPUS``, else ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.repo import (
    CORPUS_VARIABLE,
    REPO_ROOT,
    corpus_root,
    corpus_samples,
    missing_corpus_reason,
    require_corpus,
)


def test_default_is_shared_corpus_beside_the_repository() -> None:
    assert corpus_root({}) == (REPO_ROOT.parent / "shared" / "corpus").resolve()


def test_empty_variable_means_the_default() -> None:
    assert corpus_root({CORPUS_VARIABLE: ""}) == corpus_root({})


def test_absolute_path_is_used_as_given(tmp_path: Path) -> None:
    assert corpus_root({CORPUS_VARIABLE: str(tmp_path)}) == tmp_path.resolve()
    assert corpus_samples({CORPUS_VARIABLE: str(tmp_path)}) == tmp_path.resolve() / "exif-samples"


def test_relative_path_is_taken_from_the_repository_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert corpus_root({CORPUS_VARIABLE: "elsewhere/corpus"}) == REPO_ROOT / "elsewhere" / "corpus"


def test_home_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert corpus_root({CORPUS_VARIABLE: "~/corpus"}) == tmp_path.resolve() / "corpus"


def test_the_process_environment_is_read_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CORPUS_VARIABLE, str(tmp_path))
    assert corpus_root() == tmp_path.resolve()


def test_skip_reason_says_how_to_point_the_tests_at_a_copy(tmp_path: Path) -> None:
    reason = missing_corpus_reason(tmp_path / "exif-samples")
    assert str(tmp_path / "exif-samples") in reason
    assert f"set {CORPUS_VARIABLE}" in reason and "exif-samples/" in reason


def test_missing_corpus_skips_with_that_reason(tmp_path: Path) -> None:
    """A clean clone (no corpus where the variable points) skips, and says how to fix it."""
    missing = tmp_path / "no-corpus-here"
    with pytest.raises(pytest.skip.Exception, match=f"set {CORPUS_VARIABLE} to a folder"):
        require_corpus({CORPUS_VARIABLE: str(missing)})


def test_present_corpus_is_returned(tmp_path: Path) -> None:
    (tmp_path / "exif-samples").mkdir()
    assert require_corpus({CORPUS_VARIABLE: str(tmp_path)}) == tmp_path.resolve() / "exif-samples"
