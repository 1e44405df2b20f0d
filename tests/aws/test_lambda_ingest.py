"""The ingest Lambda end to end on moto: real S3 events through SQS into the handler.

moto's S3 puts the event JSON that S3 would send onto the queue; the tests receive those
messages, build the Lambda's SQS event from them and call the handler directly (moto runs
Lambda functions only in Docker). Rekognition is moto's (wiring only) or a Stubber-backed
client, wrapped to count calls.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from PIL import Image

from imgpipe.aws_clients import RETRY_CONFIG
from imgpipe.cloud_ingest import (
    IngestEnvironment,
    jpeg_for_rekognition,
    rekognition_reads_directly,
)
from imgpipe.inspect import Inspection
from imgpipe.records import Exif
from tests.imagefactory import jpeg_bytes, photo_like, png_bytes
from tests.lambdarig import (
    BUCKET,
    LABELS,
    TABLE,
    Rig,
    S3WithCrc64,
    invoke,
    moto_rekognition,
    stubbed_rekognition,
    use,
)

# The rig's names stay importable from here for the modules that took them from this one.


def big_photo(seed: int = 1) -> bytes:
    """A JPEG larger than the 256 KiB header read, so the record size proves the real size."""
    data = jpeg_bytes(photo_like(2000, 1500, seed), make="Nikon", artist="Exif Artist", quality=98)
    assert len(data) > 300_000
    return data


def test_keys_with_spaces_plus_percent_and_accents_are_decoded(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "ingest/alice/a photo+1%é.jpg"
    data = big_photo()
    rig.put(key, data)
    rig.put("ingest/bob/b c.png", png_bytes(photo_like(300, 200, 2)))
    rekognition = moto_rekognition()
    use(monkeypatch, rig, rekognition)

    assert invoke(rig.receive()) == []

    record = rig.record("metadata/alice/a photo+1%é.jpg.json")
    assert (record["key"], record["size"], record["format"]) == (key, len(data), "JPEG")
    assert (record["width"], record["height"]) == (2000, 1500)
    assert record["exif"]["make"] == "Nikon"
    assert record["labels"][0]["name"] == "Mobile Phone"  # moto's fixed answer
    assert (record["labeler"], record["labeler_version"]) == ("rekognition", "3.0")
    assert rig.record("metadata/bob/b c.png.json")["format"] == "PNG"
    # Rekognition read the JPEG and the PNG from S3 itself, under their decoded keys.
    sources = [call["Image"] for call in rekognition.calls["detect_labels"]]
    assert sorted(s["S3Object"]["Name"] for s in sources) == [key, "ingest/bob/b c.png"]
    # Nothing was written under ingest/, nothing deleted.
    assert rig.keys("ingest/") == sorted([key, "ingest/bob/b c.png"])


def test_handler_wires_itself_from_the_environment(rig: Rig) -> None:
    rig.put("ingest/carol/one.jpg", jpeg_bytes(photo_like(200, 150, 5)))
    assert invoke(rig.receive()) == []
    record = rig.record("metadata/carol/one.jpg.json")
    assert (record["creator"], record["creator_source"]) == ("carol", "folder")
    assert rig.dynamodb.scan(TableName=TABLE)["Count"] == 1


def test_creator_metadata_wins_over_exif_and_folder_even_non_ascii(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgpipe.s3_events import encode_metadata_text

    rig.put("ingest/alice/z.jpg", big_photo(3), Metadata={"creator": encode_metadata_text("Zoë")})
    use(monkeypatch, rig, moto_rekognition())
    assert invoke(rig.receive()) == []
    record = rig.record("metadata/alice/z.jpg.json")
    assert (record["creator"], record["creator_source"]) == ("Zoë", "metadata")


def test_redelivered_event_costs_no_download_and_no_label_call(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = big_photo()
    rig.put("ingest/a.jpg", data)
    messages = rig.receive()
    s3 = S3WithCrc64(rig.s3, "get_object")
    rekognition = moto_rekognition()
    use(monkeypatch, rig, rekognition, s3=s3, cache=False)

    assert invoke(messages) == []
    first = rig.record("metadata/a.jpg.json")
    assert first["checksum"].startswith("crc64nvme:")
    # The header in one ranged GET, then (the header being fine) the rest for the validation
    # decode: each byte is read once.
    reads = s3.calls["get_object"]
    assert [c["Range"] for c in reads if c["Key"] == "ingest/a.jpg"] == [
        "bytes=0-262143",
        f"bytes=262144-{len(data) - 1}",
    ]
    # Records: one GET each to find no earlier outcome (a missing key is a 404, no HEAD
    # first), and one of the quarantine key to find no record there to supersede.
    assert [c["Key"] for c in reads if c["Key"] != "ingest/a.jpg"] == [
        "metadata/a.jpg.json",
        "quarantine/a.jpg.json",
        "quarantine/a.jpg.json",
    ]

    s3.calls["get_object"].clear()
    assert invoke(messages) == []  # at-least-once delivery: the same event again
    assert len(rekognition.calls["detect_labels"]) == 1
    # Only the existing record was read, to compare its checksum.
    assert [c["Key"] for c in s3.calls["get_object"]] == ["metadata/a.jpg.json"]
    assert rig.record("metadata/a.jpg.json")["ingested_at"] == first["ingested_at"]


def test_duplicate_upload_under_another_key_is_labeled_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = jpeg_bytes(photo_like(400, 300, 7))
    rekognition, stubber = stubbed_rekognition("ok")  # a second call would find no answer
    use(monkeypatch, rig, rekognition)
    rig.put("ingest/alice/original.jpg", data)
    assert invoke(rig.receive()) == []
    rig.put("ingest/bob/copy of original.jpg", data)
    assert invoke(rig.receive()) == []

    assert len(rekognition.calls["detect_labels"]) == 1
    stubber.assert_no_pending_responses()
    copy = rig.record("metadata/bob/copy of original.jpg.json")
    assert [label["name"] for label in copy["labels"]] == ["Cat"]
    assert copy["labeler_version"] == "3.0"
    assert copy["checksum"] == rig.record("metadata/alice/original.jpg.json")["checksum"]


def test_throttled_call_is_retried_by_botocore(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("rekognition", config=RETRY_CONFIG)
    attempts: list[int] = []

    class Raw:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_: Any) -> Iterator[bytes]:
            yield self.body

    def answer(request: Any, **_: Any) -> Any:
        """Stands in for the HTTP exchange: botocore's retry logic sees real responses."""
        attempts.append(1)
        body: dict[str, Any] = LABELS
        status = 200
        if len(attempts) == 1:
            body, status = {"__type": "ThrottlingException", "message": "Rate exceeded"}, 400
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.1"
        return AWSResponse(request.url, status, headers, Raw(json.dumps(body).encode()))

    client.meta.events.register("before-send.rekognition.DetectLabels", answer)
    use(monkeypatch, rig, client)
    rig.put("ingest/a.jpg", jpeg_bytes(photo_like(200, 200, 1)))

    assert invoke(rig.receive()) == []
    assert len(attempts) == 2
    assert rig.keys("metadata/") == ["metadata/a.jpg.json"]


def test_persistent_throttling_fails_the_message_and_redelivery_labels_it(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rekognition, _ = stubbed_rekognition("ThrottlingException", "ok")
    use(monkeypatch, rig, rekognition)
    rig.put("ingest/a.jpg", jpeg_bytes(photo_like(200, 200, 1)))
    messages = rig.receive()

    assert invoke(messages) == [messages[0]["MessageId"]]
    assert rig.keys("metadata/") == rig.keys("quarantine/") == []

    assert invoke(messages) == []
    assert len(rekognition.calls["detect_labels"]) == 2
    assert rig.keys("metadata/") == ["metadata/a.jpg.json"]


def test_poison_message_ends_in_the_dead_letter_queue(rig: Rig) -> None:
    rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody="this is not an S3 event")
    messages = rig.receive()
    assert invoke(messages) == [messages[0]["MessageId"]]
    # The message was not deleted (failed); once visible again, redrive moves it.
    rig.sqs.change_message_visibility(
        QueueUrl=rig.queue_url, ReceiptHandle=messages[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    assert rig.receive() == []
    dead = rig.receive(rig.dlq_url)
    assert [m["Body"] for m in dead] == ["this is not an S3 event"]


def test_partial_batch_reports_only_the_failing_message(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rekognition, _ = stubbed_rekognition("ok", "ThrottlingException")
    use(monkeypatch, rig, rekognition)
    rig.put("ingest/good.jpg", jpeg_bytes(photo_like(200, 200, 1)))
    rig.put("ingest/throttled.jpg", jpeg_bytes(photo_like(200, 200, 2)))
    good, throttled = rig.receive()

    assert invoke([good, throttled]) == [throttled["MessageId"]]
    assert rig.keys("metadata/") == ["metadata/good.jpg.json"]


@pytest.mark.parametrize("fmt", ["HEIF", "TIFF", "WEBP"])
def test_formats_rekognition_cannot_read_are_converted_to_jpeg_bytes(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif").register_heif_opener()
    buffer = io.BytesIO()
    photo_like(640, 480, 4).save(buffer, format=fmt)
    rekognition = moto_rekognition()
    use(monkeypatch, rig, rekognition)
    rig.put(f"ingest/x.{fmt.lower()}", buffer.getvalue())

    assert invoke(rig.receive()) == []

    (call,) = rekognition.calls["detect_labels"]
    sent = call["Image"]["Bytes"]
    assert len(sent) <= 5 * 1024 * 1024
    with Image.open(io.BytesIO(sent)) as image:
        assert (image.format, image.size) == ("JPEG", (640, 480))
    assert rig.record(f"metadata/x.{fmt.lower()}.json")["format"] == fmt


def test_header_longer_than_the_first_read_is_read_in_steps(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.BytesIO()
    photo_like(320, 240, 3).save(buffer, format="JPEG", icc_profile=b"\x00" * 400_000)
    s3 = S3WithCrc64(rig.s3, "get_object")
    use(monkeypatch, rig, moto_rekognition(), s3=s3)
    rig.put("ingest/big header.jpg", buffer.getvalue())

    assert invoke(rig.receive()) == []
    assert rig.record("metadata/big header.jpg.json")["width"] == 320
    object_reads = [c for c in s3.calls["get_object"] if c["Key"] == "ingest/big header.jpg"]
    assert len(object_reads) == 2


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (png_bytes(photo_like(300, 300, 1))[:30], "truncated"),
        (b"%PDF-1.7 not a picture at all", "not_an_image"),
        (b"", "empty_file"),
    ],
)
def test_broken_uploads_are_quarantined_without_a_label_call(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, body: bytes, reason: str
) -> None:
    rekognition = moto_rekognition()
    use(monkeypatch, rig, rekognition)
    rig.put("ingest/broken.png", body)

    assert invoke(rig.receive()) == []
    record = rig.record("quarantine/broken.png.json")
    assert (record["key"], record["reason"], record["size"]) == (
        "ingest/broken.png",
        reason,
        len(body),
    )
    assert rekognition.calls["detect_labels"] == []
    assert rig.keys("metadata/") == []


def test_image_rekognition_refuses_is_quarantined_as_labeling_failed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rekognition, _ = stubbed_rekognition("InvalidImageFormatException")
    use(monkeypatch, rig, rekognition)
    rig.put("ingest/odd.jpg", jpeg_bytes(photo_like(200, 200, 1)))

    assert invoke(rig.receive()) == []
    record = rig.record("quarantine/odd.jpg.json")
    assert record["reason"] == "labeling_failed"
    assert "InvalidImageFormatException" in record["message"]


def test_test_event_and_keys_outside_ingest_are_ignored(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rekognition = moto_rekognition()
    use(monkeypatch, rig, rekognition)
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}
    rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody=json.dumps(test_event))
    rig.put("ingest/folder/", b"")  # what the console's "Create folder" makes
    outside = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": "metadata%2Fx.json"}},
            }
        ]
    }
    rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody=json.dumps(outside))
    messages = rig.sqs.receive_message(QueueUrl=rig.queue_url, MaxNumberOfMessages=10)["Messages"]

    assert invoke(messages) == []
    assert rig.keys("metadata/") == rig.keys("quarantine/") == []
    assert rekognition.calls["detect_labels"] == []


def test_missing_bucket_setting_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="IMGPIPE_BUCKET"):
        IngestEnvironment.from_env({"IMGPIPE_MAX_LABELS": "5"})


@pytest.mark.parametrize(
    ("fmt", "size", "width", "height", "direct"),
    [
        ("JPEG", 15 * 1024 * 1024, 4000, 3000, True),
        ("PNG", 1000, 80, 10_000, True),
        ("JPEG", 15 * 1024 * 1024 + 1, 4000, 3000, False),  # over the S3Object limit
        ("PNG", 1000, 12_000, 900, False),  # a side over 10,000 px
        ("PNG", 1000, 79, 500, False),  # a side under 80 px
        ("HEIF", 1000, 4000, 3000, False),
        ("TIFF", 1000, 4000, 3000, False),
    ],
)
def test_rekognition_reads_only_jpeg_and_png_within_its_limits_from_s3(
    fmt: str, size: int, width: int, height: int, direct: bool
) -> None:
    inspection = Inspection(fmt, width, height, 1, Exif(), None, 1, "RGB")
    assert rekognition_reads_directly(inspection, size) is direct


def test_noisy_large_image_is_shrunk_until_its_jpeg_fits_in_5_mb() -> None:
    import numpy as np

    noise = np.random.default_rng(0).integers(0, 256, (3000, 5000, 3), dtype=np.uint8)
    encoded = jpeg_for_rekognition(png_bytes(Image.fromarray(noise)), orientation=1)
    assert len(encoded) <= 5 * 1024 * 1024
    with Image.open(io.BytesIO(encoded)) as image:
        assert image.format == "JPEG" and max(image.size) <= 4096


def test_handler_imports_nothing_the_lambda_bundle_leaves_out() -> None:
    import subprocess
    import sys

    # The bundle ships no pandas, Spark, plotting, templating, console or torch packages.
    script = (
        "import sys\n"
        "left_out = {'pandas', 'pyspark', 'pyarrow', 'matplotlib', 'seaborn', 'jinja2', 'rich',"
        " 'torch'}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in left_out:\n"
        "            raise ImportError(f'{name} is not in the Lambda bundle')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import lambda_src.ingest_handler\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr


class ReplacedAfterHead(S3WithCrc64):
    """S3 where another upload replaces ``ingest/a.jpg`` right after the Lambda's HEAD of it."""

    def head_object(self, **kwargs: Any) -> Any:
        response = super().head_object(**kwargs)
        if kwargs["Key"] == "ingest/a.jpg":
            self._client.put_object(Bucket=BUCKET, Key=kwargs["Key"], Body=big_photo(seed=2))
        return response


def test_an_object_replaced_while_read_is_retried_not_recorded(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.put("ingest/a.jpg", big_photo())
    messages = rig.receive()
    first_etag = rig.s3.head_object(Bucket=BUCKET, Key="ingest/a.jpg")["ETag"]
    s3 = ReplacedAfterHead(rig.s3, "get_object")
    use(monkeypatch, rig, moto_rekognition(), s3=s3, cache=False)

    # The bytes read must be the version the HEAD described (its checksum names the record):
    # the read is conditional, fails, and the message comes back for the new version.
    assert invoke(messages) == [m["MessageId"] for m in messages]
    reads = [c for c in s3.calls["get_object"] if c["Key"] == "ingest/a.jpg"]
    assert [c.get("IfMatch") for c in reads] == [first_etag]
    assert rig.keys("metadata/") == rig.keys("quarantine/") == []
