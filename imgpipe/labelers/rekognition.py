"""``--labeler rekognition``: Amazon Rekognition DetectLabels, one call per image.

The client comes from :func:`imgpipe.aws_clients.rekognition_client` (adaptive retries) unless
one is injected, so tests can stub it and moto can start before any client exists. Errors
that outlast botocore's retries become :class:`LabelingError`, retryable or not by code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from imgpipe.labelers.base import ImageInput, LabelerOptions, LabelingError
from imgpipe.records import Instance, Label, RejectedImage

if TYPE_CHECKING:  # the boto3 stubs are a dev dependency: the Lambda runtime lacks them
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_rekognition.type_defs import (
        DetectLabelsRequestTypeDef,
        DetectLabelsResponseTypeDef,
        ImageTypeDef,
        InstanceTypeDef,
    )

    from imgpipe.inspect import Inspection

# Throttling and service faults pass with time; the caller may retry the image later.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ServiceUnavailableException",
    }
)
# The image itself is the problem: retrying the same bytes fails the same way.
PERMANENT_CODES = frozenset(
    {
        "InvalidImageFormatException",
        "ImageTooLargeException",
        "InvalidParameterException",
        "InvalidS3ObjectException",
        "AccessDeniedException",
    }
)
MAX_BYTES = 5 * 1024 * 1024  # DetectLabels' limit for raw Bytes (S3 objects may be 15 MB)


def build_request(image: ImageInput, options: LabelerOptions) -> DetectLabelsRequestTypeDef:
    """The DetectLabels request for one image: its S3 object when known, else its bytes."""
    if image.s3_bucket and image.s3_key:
        source: ImageTypeDef = {"S3Object": {"Bucket": image.s3_bucket, "Name": image.s3_key}}
    elif image.data is not None:
        if len(image.data) > MAX_BYTES:
            raise LabelingError(
                f"image is {len(image.data)} bytes; Rekognition takes at most {MAX_BYTES} "
                "as Bytes (label it from S3, or send a smaller JPEG)",
                retryable=False,
            )
        source = {"Bytes": image.data}
    else:
        raise LabelingError("Rekognition needs an S3 object or encoded image bytes, not pixels")
    return {
        "Image": source,
        "MaxLabels": options.max_labels,
        "MinConfidence": options.min_confidence,
    }


def bytes_input(data: bytes, inspection: Inspection) -> ImageInput:
    """DetectLabels' ``Bytes`` for a file that is not in S3 (``imgpipe run --labeler rekognition``).

    The file itself when Rekognition takes it as it is and it fits the 5 MB ``Bytes`` limit;
    otherwise the upright JPEG that the ingest Lambda makes for such images.
    """
    # Imported here: cloud_ingest imports this module.
    from imgpipe.cloud_ingest import jpeg_for_rekognition, rekognition_reads_directly

    if rekognition_reads_directly(inspection, len(data)) and len(data) <= MAX_BYTES:
        return ImageInput(data=data)
    try:
        return ImageInput(data=jpeg_for_rekognition(data, inspection.orientation))
    except RejectedImage as exc:
        raise LabelingError(exc.message, retryable=False) from exc


def _instance(raw: InstanceTypeDef) -> Instance:
    box = raw.get("BoundingBox", {})
    return Instance(
        left=float(box.get("Left", 0.0)),
        top=float(box.get("Top", 0.0)),
        width=float(box.get("Width", 0.0)),
        height=float(box.get("Height", 0.0)),
        confidence=float(raw.get("Confidence", 0.0)),
    )


def labels_from_response(response: DetectLabelsResponseTypeDef) -> list[Label]:
    """Map a DetectLabels response to records, most confident first."""
    labels = [
        Label(
            name=raw["Name"],
            confidence=float(raw.get("Confidence", 0.0)),
            parents=tuple(p["Name"] for p in raw.get("Parents", ())),
            categories=tuple(c["Name"] for c in raw.get("Categories", ())),
            instances=tuple(_instance(i) for i in raw.get("Instances", ())),
        )
        for raw in response.get("Labels", ())
    ]
    labels.sort(key=lambda label: -label.confidence)
    return labels


def labeling_error(exc: ClientError) -> LabelingError:
    """A LabelingError carrying the AWS error code, retryable when waiting may help."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "Unknown")
    message = error.get("Message", str(exc))
    retryable = code in RETRYABLE_CODES
    if not retryable and code not in PERMANENT_CODES:
        # An unknown code is most likely a fault of the service or the account; say so.
        message = f"{message} (unexpected error code)"
    return LabelingError(f"Rekognition {code}: {message}", retryable=retryable)


class RekognitionLabeler:
    """Labels images with Amazon Rekognition DetectLabels."""

    name = "rekognition"

    def __init__(
        self, options: LabelerOptions | None = None, client: RekognitionClient | None = None
    ) -> None:
        self.options = options or LabelerOptions()
        self._client = client
        # Filled in from LabelModelVersion by the first successful call.
        self.model_version = ""

    @property
    def client(self) -> RekognitionClient:
        if self._client is None:
            from imgpipe.aws_clients import rekognition_client

            self._client = rekognition_client()
        return self._client

    def label_one(self, image: ImageInput) -> list[Label]:
        """Labels of one image. Raises LabelingError (``retryable`` set by the error code)."""
        request = build_request(image, self.options)
        try:
            response = self.client.detect_labels(**request)
        except ClientError as exc:
            raise labeling_error(exc) from exc
        except BotoCoreError as exc:  # connection failures and timeouts after retries
            raise LabelingError(f"Rekognition unreachable: {exc}", retryable=True) from exc
        self.model_version = response.get("LabelModelVersion", self.model_version)
        return labels_from_response(response)[: self.options.max_labels]

    def label(self, images: Sequence[ImageInput]) -> list[list[Label]]:
        """DetectLabels takes one image per call; the first error stops the batch."""
        return [self.label_one(image) for image in images]
