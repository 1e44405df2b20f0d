"""The whole real-image corpus through the local pipeline: nothing crashes, nothing is lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from imgpipe.invariants import check_nothing_lost
from imgpipe.progress import ProgressReporter
from imgpipe.runner import run_pipeline
from imgpipe.store import LocalStore

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_whole_corpus_runs_and_every_file_is_accounted_for(
    corpus_dir: Path, tmp_path: Path
) -> None:
    files = [p for p in corpus_dir.rglob("*") if p.is_file()]
    summary = run_pipeline(
        corpus_dir, tmp_path / "out", labeler_name="none", progress=ProgressReporter(quiet=True)
    )
    assert summary.inputs == len(files)
    assert summary.accepted + summary.quarantined == len(files)
    store = LocalStore(tmp_path / "out")
    keys = (
        pq.read_table(tmp_path / "out/processed/images", columns=["key"]).column("key").to_pylist()
    )
    report = check_nothing_lost(store, keys)
    assert report.ok, report
    # Every README in the corpus is text: quarantined as not an image, whatever its name.
    readmes = {
        f"ingest/{p.relative_to(corpus_dir).as_posix()}"
        for p in files
        if p.name.startswith("README")
    }
    reasons = {
        json.loads(store.get_bytes(k))["key"]: json.loads(store.get_bytes(k))["reason"]
        for k in store.list_keys("quarantine/")
    }
    assert {reasons.get(k) for k in readmes} == {"not_an_image"}
    # Full-size camera and phone photos are accepted (many camera samples in the corpus are
    # ~100 px thumbnails and rightly too small for Rekognition's 80 px minimum side).
    for name in ("jpg/gps/DSCN0010.jpg", "jpg/hdr/canon_hdr_YES.jpg", "jpg/mobile/jolla.jpg"):
        assert store.exists(f"metadata/{name}.json"), name
    if os.environ.get("IMGPIPE_PRINT_SUMMARY"):
        print(json.dumps(summary.to_dict(), indent=1))
