"""The bad-input suite through one local run: every hostile upload ends where it should.

One ``run_pipeline(..., labeler_name="none")`` over every generated case of
:mod:`tests.badinputs`, the corpus's real broken files and the file-system cases made here
(a symlink, a named pipe, directories named like images). Each file's outcome and reason code
is asserted, then the "nothing lost" invariant (with the originals' checksums taken before the
run), then a per-image time bound from the run's own ingest stage timing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imgpipe.invariants import check_nothing_lost
from imgpipe.progress import ProgressReporter
from imgpipe.records import metadata_key, quarantine_key
from imgpipe.runner import RunSummary, run_pipeline
from imgpipe.store import LocalStore
from tests.badinputs import (
    ACCEPTED,
    BROKEN_EXIF_WARNINGS,
    BadInput,
    corpus_cases,
    generated_cases,
    kinds,
)
from tests.imagefactory import jpeg_bytes, photo_like

pytestmark = [pytest.mark.spark, BROKEN_EXIF_WARNINGS]

# Generous: the slowest case decodes a 3648x2736 corpus JPEG at 1/4 scale in ~0.05 s here.
# The bound catches a hang or a full decode of a bomb, not a slow laptop.
SECONDS_PER_IMAGE = 2.0

# Made in the test: the file system has no bytes for them, or they point elsewhere.
SYMLINK = "ingest/fs/link-to-photo.jpg"
FIFO = "ingest/fs/pipe.jpg"
INSIDE_DIRECTORY = "ingest/fs/album.jpg/inside.jpg"  # a directory named like an image


def make_file_system_cases(root: Path) -> dict[str, str]:
    """Symlink, FIFO and directories named like images; returns key -> expected outcome."""
    fs = root / "fs"
    (fs / "album.jpg").mkdir(parents=True)
    (fs / "album.jpg" / "inside.jpg").write_bytes(jpeg_bytes(photo_like(200, 150, 90)))
    (fs / "empty-folder.png").mkdir()  # holds nothing, so it yields no record at all
    (fs / "link-to-photo.jpg").symlink_to(fs / "album.jpg" / "inside.jpg")
    os.mkfifo(fs / "pipe.jpg")  # opening it would block: it must never be read
    return {
        SYMLINK: "not_a_regular_file",
        FIFO: "not_a_regular_file",
        INSIDE_DIRECTORY: ACCEPTED,
    }


def outcome(store: LocalStore, key: str) -> str:
    """``accepted`` or the quarantine reason recorded for ``key`` (``missing`` if neither)."""
    if store.exists(metadata_key(key)):
        return ACCEPTED
    if store.exists(quarantine_key(key)):
        return str(json.loads(store.get_bytes(quarantine_key(key)))["reason"])
    return "missing"


class SuiteRun:
    """The one local run over the whole suite, and what the test needs to judge it."""

    def __init__(self, root: Path) -> None:
        self.inputs, self.out = root / "inputs", root / "out"
        self.cases: list[BadInput] = [*generated_cases(), *corpus_cases()]
        self.expected = {case.key: case.expected for case in self.cases}
        for case in self.cases:
            path = self.inputs / case.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(case.data)
        self.expected |= make_file_system_cases(self.inputs)
        self.originals = {
            f"ingest/{p.relative_to(self.inputs).as_posix()}": hashlib.sha256(
                p.read_bytes()
            ).hexdigest()
            for p in self.inputs.rglob("*")
            if p.is_file() and not p.is_symlink()
        }
        self.summary: RunSummary = run_pipeline(
            self.inputs, self.out, labeler_name="none", progress=ProgressReporter(quiet=True)
        )
        self.store = LocalStore(self.out)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    return SuiteRun(tmp_path_factory.mktemp("bad-inputs"))


def test_suite_covers_every_bad_input_kind_of_the_issue(suite: SuiteRun) -> None:
    covered = set(kinds(suite.cases))
    for kind in (
        "zero-byte file",
        "text as .jpg",
        "HTML as .jpg",
        "PDF as .jpg",
        "truncated JPEG header",
        "truncated JPEG pixel data",
        "truncated PNG header",
        "truncated PNG pixel data",
        "bit-flipped header",
        "bit-flipped pixel data",
        "decompression bomb 50k x 50k",
        "under 80 px",
        "over 10,000 px",
        "CMYK JPEG",
        "16-bit PNG",
        "palette PNG",
        "animated GIF",
        "multi-page TIFF",
        "HEIC",
        "broken EXIF",
        "special file name",
    ):
        assert kind in covered, kind


def test_every_input_gets_its_expected_outcome_and_reason(suite: SuiteRun) -> None:
    actual = {key: outcome(suite.store, key) for key in suite.expected}
    wrong = {
        key: (actual[key], want) for key, want in suite.expected.items() if actual[key] != want
    }
    assert wrong == {}


def test_directory_named_like_an_image_yields_no_record_of_its_own(suite: SuiteRun) -> None:
    for folder in ("ingest/fs/album.jpg", "ingest/fs/empty-folder.png"):
        assert outcome(suite.store, folder) == "missing"


def test_summary_counts_every_input_once(suite: SuiteRun) -> None:
    accepted = sum(1 for want in suite.expected.values() if want == ACCEPTED)
    assert suite.summary.inputs == len(suite.expected)
    assert (suite.summary.accepted, suite.summary.quarantined) == (
        accepted,
        len(suite.expected) - accepted,
    )


def test_nothing_is_lost_and_no_original_is_touched(suite: SuiteRun) -> None:
    table = pq.read_table(suite.out / "processed" / "images", columns=["key"])
    report = check_nothing_lost(
        suite.store,
        table.column("key").to_pylist(),
        rejected_before_upload=[SYMLINK, FIFO],
        originals=suite.originals,
    )
    assert report.ok, report
    # The user's own files too: the run read them and changed nothing.
    for key, digest in suite.originals.items():
        source = suite.inputs / key.removeprefix("ingest/")
        assert hashlib.sha256(source.read_bytes()).hexdigest() == digest, key


def test_ingest_stays_within_a_per_image_time_bound(suite: SuiteRun) -> None:
    stage = suite.summary.stages["ingest"]
    per_image = float(stage["seconds"]) / int(stage["images"])
    print(f"\ningest: {stage['images']} inputs in {stage['seconds']} s ({per_image:.4f} s each)")
    assert per_image < SECONDS_PER_IMAGE
