"""The Rekognition labeler against a real boto3 client with a botocore Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from imgpipe.labelers import ImageInput, LabelerOptions, LabelingError
from imgpipe.labelers.rekognition import RekognitionLabeler
from imgpipe.records import Instance

RESPONSE: dict[str, Any] = {
    "Labels": [
        {
            "Name": "Mammal",
            "Confidence": 97.5,
            "Instances": [],
            "Parents": [{"Name": "Animal"}],
            "Categories": [{"Name": "Animals and Pets"}],
        },
        {
            "Name": "Cat",
            "Confidence": 96.25,
            "Instances": [
                {
                    "BoundingBox": {"Width": 0.5, "Height": 0.75, "Left": 0.125, "Top": 0.25},
                    "Confidence": 95.0,
                }
            ],
            "Parents": [{"Name": "Animal"}, {"Name": "Mammal"}, {"Name": "Pet"}],
            "Categories": [{"Name": "Animals and Pets"}],
        },
    ],
    "LabelModelVersion": "3.0",
}


@pytest.fixture
def client(aws_credentials: None) -> Any:
    # One attempt: the stub answers once, and retries are botocore's job, not ours.
    config = Config(retries={"total_max_attempts": 1})
    return boto3.client("rekognition", region_name="us-east-1", config=config)


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


OPTIONS = LabelerOptions(max_labels=7, min_confidence=60.0)


def test_s3_object_request_and_response_mapping(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "detect_labels",
        RESPONSE,
        {
            "Image": {"S3Object": {"Bucket": "photos", "Name": "ingest/a photo.jpg"}},
            "MaxLabels": 7,
            "MinConfidence": 60.0,
        },
    )
    labeler = RekognitionLabeler(OPTIONS, client=client)
    [labels] = labeler.label([ImageInput(s3_bucket="photos", s3_key="ingest/a photo.jpg")])
    assert [label.name for label in labels] == ["Mammal", "Cat"]
    cat = labels[1]
    assert cat.confidence == 96.25
    assert cat.parents == ("Animal", "Mammal", "Pet")
    assert cat.categories == ("Animals and Pets",)
    assert cat.instances == (
        Instance(left=0.125, top=0.25, width=0.5, height=0.75, confidence=95.0),
    )
    assert labeler.model_version == "3.0"


def test_bytes_request(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "detect_labels",
        {"Labels": [], "LabelModelVersion": "3.0"},
        {"Image": {"Bytes": b"\xff\xd8jpeg"}, "MaxLabels": 7, "MinConfidence": 60.0},
    )
    labeler = RekognitionLabeler(OPTIONS, client=client)
    assert labeler.label([ImageInput(data=b"\xff\xd8jpeg")]) == [[]]


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("ThrottlingException", 400, True),
        ("ProvisionedThroughputExceededException", 400, True),
        ("InternalServerError", 500, True),
        ("InvalidImageFormatException", 400, False),
        ("ImageTooLargeException", 400, False),
        ("InvalidParameterException", 400, False),
        ("InvalidS3ObjectException", 400, False),
    ],
)
def test_client_errors_say_whether_to_retry(
    client: Any, stubber: Stubber, code: str, status: int, retryable: bool
) -> None:
    stubber.add_client_error(
        "detect_labels", service_error_code=code, service_message="nope", http_status_code=status
    )
    labeler = RekognitionLabeler(OPTIONS, client=client)
    with pytest.raises(LabelingError) as caught:
        labeler.label([ImageInput(data=b"\xff\xd8jpeg")])
    assert caught.value.retryable is retryable
    assert code in str(caught.value)


def test_bytes_over_5_mb_are_refused_without_a_call(client: Any, stubber: Stubber) -> None:
    labeler = RekognitionLabeler(OPTIONS, client=client)
    with pytest.raises(LabelingError) as caught:
        labeler.label([ImageInput(data=b"\0" * (5 * 1024 * 1024 + 1))])
    assert not caught.value.retryable


def test_pixels_alone_cannot_be_sent(client: Any, stubber: Stubber) -> None:
    with pytest.raises(LabelingError):
        RekognitionLabeler(OPTIONS, client=client).label([ImageInput()])
