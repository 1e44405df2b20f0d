"""Where the repository, its CDK context and the real-image corpus are, for every test kind;
and a script run in a fresh interpreter from the repository (:func:`run_fresh`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# cdk.json's context, as ``cdk synth`` reads it; read once, never mutated by a test.
CONTEXT: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]

CORPUS_VARIABLE = "IMGPIPE_TEST_CORPUS"
# The project's own machines keep the corpus beside the repository.
DEFAULT_CORPUS = Path("..") / "shared" / "corpus"


def corpus_root(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder holding ``exif-samples/``: ``$IMGPIPE_TEST_CORPUS``, else ``../shared/corpus``.

    A relative path is taken from the repository root, so the answer does not depend on
    the directory pytest was started from.
    """
    configured = environ.get(CORPUS_VARIABLE) or str(DEFAULT_CORPUS)
    return (REPO_ROOT / Path(configured).expanduser()).resolve()


def corpus_samples(environ: Mapping[str, str] = os.environ) -> Path:
    """The ``exif-samples`` folder of the corpus (it may not exist)."""
    return corpus_root(environ) / "exif-samples"


def missing_corpus_reason(samples: Path) -> str:
    """Why a corpus test skips, and how a contributor makes it run."""
    return (
        f"real-image corpus not found at {samples}: set {CORPUS_VARIABLE} to a folder holding "
        "exif-samples/ (a copy of the exif-samples archive) to run these tests"
    )


def require_corpus(environ: Mapping[str, str] = os.environ) -> Path:
    """The corpus's ``exif-samples`` folder; skips the calling test when it is not there."""
    samples = corpus_samples(environ)
    if not samples.is_dir():
        pytest.skip(missing_corpus_reason(samples))
    return samples


def run_fresh(script: str, *args: str, timeout: float = 300) -> Any:
    """Run ``script`` in a fresh interpreter from the repository root; its last line as JSON.

    A fresh process measures what a test's own process would hide (its peak memory, the
    modules it already imported). A failure shows the child's stderr.
    """
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
