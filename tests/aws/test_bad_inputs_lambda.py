"""The bad-input suite through the ingest Lambda on moto: same uploads, same reason codes.

Each case is uploaded to moto's S3, whose event reaches the handler through SQS (the rig of
:mod:`tests.lambdarig`). Rekognition is a fake that decodes what it is given (from S3 or as
bytes) and refuses, with ``InvalidImageFormatException``, anything that is not a whole JPEG
or PNG; the Lambda's own validation must have quarantined such files before it is called.

Every case has the local run's outcome (``tests/aws/test_bad_input_parity.py`` compares the two
per case). Symlinks and FIFOs do not exist in S3; a console "folder" (a key ending in ``/``)
is the cloud's directory case.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from PIL import Image

from imgpipe.invariants import check_nothing_lost, fingerprint_originals
from imgpipe.records import quarantine_key
from imgpipe.store import S3Store
from tests.badinputs import (
    ACCEPTED,
    BROKEN_EXIF_WARNINGS,
    BadInput,
    corpus_cases,
    generated_cases,
    recorded_outcome,
)
from tests.imagefactory import jpeg_bytes, photo_like
from tests.lambdarig import BUCKET, LABELS, Rig, invoke, use

# Generous: one object costs a HEAD, one or two GETs and at most two decodes here (~0.05 s).
SECONDS_PER_OBJECT = 5.0
FOLDER_PLACEHOLDER = "ingest/fs/album.jpg/"
INSIDE_FOLDER = "ingest/fs/album.jpg/inside.jpg"


class FakeRekognition:
    """DetectLabels that decodes the image as the service would, and counts its calls.

    Args:
        s3: The (moto) S3 client Rekognition would read ``S3Object`` images from.
    """

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.calls: list[dict[str, Any]] = []

    def detect_labels(self, **request: Any) -> dict[str, Any]:
        """Labels for a whole JPEG or PNG; ``InvalidImageFormatException`` otherwise."""
        self.calls.append(request)
        image = request["Image"]
        if "S3Object" in image:
            location = image["S3Object"]
            data = self.s3.get_object(Bucket=location["Bucket"], Key=location["Name"])["Body"]
            data = data.read()
        else:
            data = image["Bytes"]
        try:
            with Image.open(io.BytesIO(data)) as decoded:
                if decoded.format not in ("JPEG", "PNG"):
                    raise ValueError(f"{decoded.format} is not JPEG or PNG")
                decoded.load()
        except Exception as exc:  # whatever the decoder says, the service says one thing
            raise ClientError(
                {"Error": {"Code": "InvalidImageFormatException", "Message": str(exc)}},
                "DetectLabels",
            ) from exc
        return LABELS


def drain(rig: Rig) -> tuple[int, float]:
    """Deliver every queued event to the handler; (objects delivered, seconds taken)."""
    delivered, seconds = 0, 0.0
    while messages := rig.receive():
        started = time.perf_counter()
        assert invoke(messages) == []
        seconds += time.perf_counter() - started
        delivered += len(messages)
    return delivered, seconds


@pytest.fixture
def cases() -> list[BadInput]:
    return [*generated_cases(), *corpus_cases()]


@BROKEN_EXIF_WARNINGS
def test_every_upload_gets_its_expected_outcome_and_nothing_is_lost(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, cases: list[BadInput]
) -> None:
    rekognition = FakeRekognition(rig.s3)
    use(monkeypatch, rig, rekognition)
    expected = {case.key: case.expected for case in cases}
    for case in cases:
        rig.put(case.key, case.data)
    rig.put(FOLDER_PLACEHOLDER, b"")  # what the console's "Create folder" makes
    rig.put(INSIDE_FOLDER, jpeg_bytes(photo_like(200, 150, 90)))
    expected[INSIDE_FOLDER] = ACCEPTED
    store = S3Store(BUCKET, rig.s3)
    originals = fingerprint_originals(store)

    delivered, seconds = drain(rig)

    actual = {key: recorded_outcome(store, key) for key in expected}
    wrong = {key: (actual[key], want) for key, want in expected.items() if actual[key] != want}
    assert wrong == {}
    assert recorded_outcome(store, FOLDER_PLACEHOLDER) == "missing"  # a placeholder is no upload
    report = check_nothing_lost(store, originals=originals)
    assert report.ok, report
    print(f"\nlambda: {delivered} events in {seconds:.2f} s ({seconds / delivered:.4f} s each)")
    assert delivered == len(expected) + 1
    assert seconds / delivered < SECONDS_PER_OBJECT


@BROKEN_EXIF_WARNINGS
def test_only_accepted_images_reach_rekognition(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, cases: list[BadInput]
) -> None:
    rekognition = FakeRekognition(rig.s3)
    use(monkeypatch, rig, rekognition)
    for case in cases:
        rig.put(case.key, case.data)
    drain(rig)
    # Billed calls only for what passed the validation: nothing is left for the service to refuse.
    labeled = {case.key for case in cases if case.expected == ACCEPTED}
    called = {
        call["Image"]["S3Object"]["Name"]
        for call in rekognition.calls
        if "S3Object" in call["Image"]
    }
    assert called <= labeled
    assert len(rekognition.calls) == len(labeled)


@pytest.mark.parametrize("name", ["cut/jpeg-50pct.jpg", "cut/jpeg-no-eoi.jpg", "cut/png-90pct.png"])
def test_pixel_damage_past_the_header_is_quarantined_before_rekognition(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    rekognition = FakeRekognition(rig.s3)
    use(monkeypatch, rig, rekognition)
    cut = next(case for case in generated_cases() if case.name == name)
    rig.put(cut.key, cut.data)
    drain(rig)
    record = json.loads(S3Store(BUCKET, rig.s3).get_bytes(quarantine_key(cut.key)))
    assert (record["reason"], record["size"]) == ("truncated", len(cut.data))
    assert "upload the file again" in record["message"]
    assert rekognition.calls == []
