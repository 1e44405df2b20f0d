"""The labeler interface: Rekognition in the cloud, a local model offline, or none.

Every labeler returns :class:`imgpipe.records.Label` lists in the shape of Rekognition
DetectLabels, so the analysis and the report treat them alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from imgpipe.records import Label

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class LabelerOptions:
    """Options every labeler honours."""

    max_labels: int = 10
    min_confidence: float = 55.0


@dataclass(frozen=True)
class ImageInput:
    """What a labeler may look at; each labeler uses the form it needs.

    Attributes:
        rgb: Decoded pixels, ``HxWx3`` uint8 RGB, orientation applied, usually reduced.
        data: Encoded JPEG or PNG bytes (Rekognition ``Bytes``, at most 5 MB).
        s3_bucket: With ``s3_key``, an object Rekognition reads itself (``S3Object``).
        s3_key: The object key (decoded, not URL-encoded).
    """

    rgb: np.ndarray | None = None
    data: bytes | None = None
    s3_bucket: str | None = None
    s3_key: str | None = None


class LabelingError(Exception):
    """The labeler could not label an image; ``retryable`` says whether trying later may work."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class Labeler(Protocol):
    """Labels batches of images."""

    name: str
    model_version: str

    def label(self, images: Sequence[ImageInput]) -> list[list[Label]]:
        """One label list per input, most confident first, at most ``max_labels`` long."""
        ...


class NoLabeler:
    """``--labeler none``: records carry no labels."""

    name = "none"
    model_version = ""

    def __init__(self, options: LabelerOptions | None = None) -> None:
        self.options = options or LabelerOptions()

    def label(self, images: Sequence[ImageInput]) -> list[list[Label]]:
        return [[] for _ in images]
