"""The local ingest and the ingest Lambda give every bad input the same outcome and reason.

Every case of :mod:`tests.badinputs` (the generated suite and the corpus's broken files) goes
through the local ingest stage (:func:`imgpipe.runner.run_ingest` over a folder, labeler
``none``) and through the Lambda's handler on moto (uploaded to S3, its event delivered through
SQS by the rig of :mod:`tests.lambdarig`, the handler wired from its environment), each path
once for the whole suite; then one test per case compares the two. Rekognition is moto's, which
labels whatever it is asked to, as the service does a JPEG cut off mid-scan: only the Lambda's
own validation can find what the local decode finds.

The last test runs the same suite through the handler in a fresh interpreter in which OpenCV
cannot be imported, as in the Lambda bundle (which leaves it out for size): the Lambda's
verdicts must not depend on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from imgpipe.config import PipelineConfig
from imgpipe.labelers import NoLabeler
from imgpipe.progress import ProgressReporter
from imgpipe.runner import RunSummary, run_ingest
from imgpipe.store import LocalStore, S3Store
from tests.badinputs import (
    ACCEPTED,
    BROKEN_EXIF_WARNINGS,
    BadInput,
    corpus_cases,
    generated_cases,
    recorded_outcome,
)
from tests.imagefactory import jpeg_bytes, photo_like
from tests.lambdarig import BUCKET, FAKE_AWS_ENVIRONMENT, HANDLER_ENVIRONMENT, Rig, invoke, moto_rig
from tests.repo import REPO_ROOT

CASES = [*generated_cases(), *corpus_cases()]
# A folder named like an image, holding a photo: locally a directory, in S3 the empty key that
# the console's "Create folder" makes. Neither is an upload; the photo inside is.
FOLDER, INSIDE = "ingest/fs/album.jpg", "ingest/fs/album.jpg/inside.jpg"
FOLDER_PHOTO = jpeg_bytes(photo_like(200, 150, 90))
KEYS = [*(case.key for case in CASES), FOLDER, f"{FOLDER}/", INSIDE]

# The local suite's file-system cases (tests/spark/test_bad_inputs_local.py) that have no S3 form.
# A folder named like an image does have one (a console "folder" key): see its test below.
EXCLUDED = {
    "symlink": "S3 has no symbolic links: every key holds bytes of its own",
    "named pipe (FIFO)": "S3 has no special files: every key holds bytes of its own",
}


def local_outcomes(root: Path, files: dict[str, bytes], keys: list[str]) -> dict[str, str]:
    """The local ingest stage over ``files`` (paths below the input folder -> bytes)."""
    inputs, out = root / "inputs", root / "out"
    for name, data in files.items():
        path = inputs / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    store = LocalStore(out)
    config = PipelineConfig()
    summary = RunSummary(run_id="parity")
    quiet = ProgressReporter(quiet=True)
    run_ingest(inputs, store, config, NoLabeler(), None, quiet, summary)
    return {key: recorded_outcome(store, key) for key in keys}


def lambda_outcomes(rig: Rig, objects: dict[str, bytes], keys: list[str]) -> dict[str, str]:
    """The Lambda's handler over ``objects`` (keys -> bytes) uploaded to moto's S3."""
    for key, data in objects.items():
        rig.put(key, data)
    while messages := rig.receive():
        assert invoke(messages) == []  # no message failed: every object has its record
    store = S3Store(BUCKET, rig.s3)
    return {key: recorded_outcome(store, key) for key in keys}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every case's local outcome, from one local ingest of the whole suite."""
    files = {case.name: case.data for case in CASES}
    files[INSIDE.removeprefix("ingest/")] = FOLDER_PHOTO
    return local_outcomes(tmp_path_factory.mktemp("local"), files, KEYS)


@pytest.fixture(scope="module")
def lambda_run() -> Iterator[dict[str, str]]:
    """Every case's Lambda outcome, from one upload of the whole suite to moto's S3."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AWS_PROFILE", raising=False)
        for name, value in {**FAKE_AWS_ENVIRONMENT, **HANDLER_ENVIRONMENT}.items():
            patch.setenv(name, value)
        with moto_rig() as made:
            objects = {case.key: case.data for case in CASES}
            objects |= {f"{FOLDER}/": b"", INSIDE: FOLDER_PHOTO}
            yield lambda_outcomes(made, objects, KEYS)


@BROKEN_EXIF_WARNINGS
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_local_and_lambda_give_the_same_outcome_and_reason(
    case: BadInput, local_run: dict[str, str], lambda_run: dict[str, str]
) -> None:
    local, cloud = local_run[case.key], lambda_run[case.key]
    assert local == cloud == case.expected, f"local {local}, Lambda {cloud}, not {case.expected}"


def test_a_folder_named_like_an_image_gives_records_only_for_what_it_holds(
    local_run: dict[str, str], lambda_run: dict[str, str]
) -> None:
    keys = (FOLDER, f"{FOLDER}/", INSIDE)
    expected = {FOLDER: "missing", f"{FOLDER}/": "missing", INSIDE: ACCEPTED}
    assert {key: local_run[key] for key in keys} == expected
    assert {key: lambda_run[key] for key in keys} == expected


@pytest.mark.parametrize("kind", sorted(EXCLUDED))
def test_file_system_case_without_an_s3_form(kind: str) -> None:
    pytest.skip(f"{kind}: {EXCLUDED[kind]}")


# Runs in a fresh interpreter: OpenCV made unimportable, then the handler's module graph
# imported and the whole suite ingested through it on moto. Prints key -> outcome as JSON.
WITHOUT_OPENCV = """
import json, sys
sys.modules["cv2"] = None  # any "import cv2" now raises ImportError, as in the bundle

import lambda_src.ingest_handler
from imgpipe.decoding import HAS_OPENCV
from imgpipe.store import S3Store
from tests.badinputs import corpus_cases, generated_cases, recorded_outcome
from tests.lambdarig import BUCKET, invoke, moto_rig

assert not HAS_OPENCV
cases = [*generated_cases(), *corpus_cases()]
with moto_rig() as rig:
    for case in cases:
        rig.put(case.key, case.data)
    while messages := rig.receive():
        assert invoke(messages) == [], "a message failed"
    store = S3Store(BUCKET, rig.s3)
    outcomes = {case.key: recorded_outcome(store, case.key) for case in cases}
loaded = sorted(name for name, module in sys.modules.items() if module is not None)
print(json.dumps({"outcomes": outcomes, "modules": loaded}))
"""


def test_lambda_ingests_the_suite_without_opencv() -> None:
    env = {**os.environ, **FAKE_AWS_ENVIRONMENT, **HANDLER_ENVIRONMENT}
    env.pop("AWS_PROFILE", None)
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_OPENCV],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not [name for name in report["modules"] if name.split(".")[0] == "cv2"]
    wrong = {
        case.key: (report["outcomes"][case.key], case.expected)
        for case in CASES
        if report["outcomes"][case.key] != case.expected
    }
    assert wrong == {}
    assert sum(outcome == ACCEPTED for outcome in report["outcomes"].values()) >= 10
