"""``imgpipe run --labeler rekognition``: local files go to DetectLabels as bytes, and a
missing AWS setup stops the run before it starts, in one line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.stub import ANY, Stubber
from PIL import Image

from imgpipe.cli import main
from imgpipe.config import PipelineConfig
from imgpipe.ingest import Ingester, IngestItem
from imgpipe.labelers import LabelerUnavailable, make_labeler
from imgpipe.labelers.rekognition import MAX_BYTES, RekognitionLabeler
from imgpipe.store import LocalStore
from tests.imagefactory import jpeg_bytes, photo_like

ANSWER = {
    "Labels": [{"Name": "Cat", "Confidence": 97.0, "Parents": [{"Name": "Animal"}]}],
    "LabelModelVersion": "3.0",
}


class Recording:
    """A stubbed client that keeps each DetectLabels request it was sent."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.requests: list[dict[str, Any]] = []

    def detect_labels(self, **request: Any) -> Any:
        self.requests.append(request)
        return self.client.detect_labels(**request)


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.usefixtures("aws_credentials")
def test_local_files_are_sent_as_bytes_converted_when_rekognition_cannot_take_them(
    tmp_path: Path,
) -> None:
    small_jpeg = jpeg_bytes(photo_like(300, 200, 1))
    webp = encoded(photo_like(300, 200, 2), "WEBP")  # not a DetectLabels format
    noise = np.random.default_rng(3).integers(0, 256, (1400, 1400, 3), dtype=np.uint8)
    large_png = encoded(Image.fromarray(noise), "PNG")
    assert len(large_png) > MAX_BYTES  # over the Bytes limit (S3 objects may be 15 MB)
    client = boto3.client("rekognition")
    stubber = Stubber(client)
    for _ in range(3):
        expected = {"Image": ANY, "MaxLabels": 10, "MinConfidence": 55.0}
        stubber.add_response("detect_labels", ANSWER, expected)
    recording = Recording(client)
    items = [
        IngestItem("ingest/a.jpg", small_jpeg),
        IngestItem("ingest/b.webp", webp),
        IngestItem("ingest/c.png", large_png),
    ]

    with stubber:
        store = LocalStore(tmp_path)
        outcomes = list(
            Ingester(store, PipelineConfig(), RekognitionLabeler(None, recording)).run(items)
        )

    stubber.assert_no_pending_responses()
    assert [o.accepted for o in outcomes] == [True, True, True]
    sent = [request["Image"]["Bytes"] for request in recording.requests]
    assert sent[0] == small_jpeg  # the file itself
    for converted, original in zip(sent[1:], (webp, large_png), strict=True):
        assert converted[:3] == b"\xff\xd8\xff" and len(converted) <= MAX_BYTES
        assert Image.open(io.BytesIO(converted)).size == Image.open(io.BytesIO(original)).size
    record = json.loads(store.get_bytes("metadata/b.webp.json"))
    assert (record["labeler"], record["labels"][0]["name"]) == ("rekognition", "Cat")


@pytest.fixture
def no_aws_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, profile or region anywhere boto3 looks (instance metadata off)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        empty = tmp_path / name.lower()
        empty.write_text("")
        monkeypatch.setenv(name, str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_setup")
def test_run_without_credentials_stops_before_it_starts_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(jpeg_bytes(photo_like(200, 160, 1)))
    out = tmp_path / "out"

    code = main(["run", str(photos), "--out", str(out), "--labeler", "rekognition"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "AWS credentials" in err and "aws configure" in err
    assert not out.exists()


@pytest.mark.usefixtures("no_aws_setup")
def test_credentials_without_a_region_are_named_as_missing_the_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(LabelerUnavailable, match="needs an AWS region"):
        make_labeler("rekognition")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert make_labeler("rekognition").name == "rekognition"
