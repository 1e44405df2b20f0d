"""The imaging kernel of the process stage: one decode -> thumbnail + features.

Pure functions over bytes and numpy arrays, no Spark and no I/O, so the process job, the local
runner and the tests share them. The decode itself (reduced-scale, oriented sRGB, with reason
codes for files that do not decode) is :mod:`imgpipe.decoding`, re-exported here; this module
adds the OpenCV work (resizing, JPEG encoding, features), which the ingest Lambda never needs
and so never imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from imgpipe.decoding import Decoded, decode, decode_oriented, decode_stored, orient
from imgpipe.features import ANALYSIS_SIDE, Features, compute_features, hamming, resize_longest

if TYPE_CHECKING:
    from imgpipe.config import PipelineConfig

__all__ = [
    "Decoded",
    "Features",
    "ProcessedImage",
    "decode",
    "decode_oriented",
    "hamming",
    "make_thumbnail",
    "process_image",
]


@dataclass(frozen=True)
class ProcessedImage:
    """The result of :func:`process_image`: a JPEG thumbnail and the image's features."""

    thumbnail: bytes
    thumbnail_width: int
    thumbnail_height: int
    features: Features


def make_thumbnail(rgb: np.ndarray, size: int, quality: int) -> tuple[bytes, int, int]:
    """A JPEG thumbnail whose longest side is ``min(size, longest side)`` (never upscaled).

    Returns:
        The JPEG bytes, the thumbnail width and height.

    Raises:
        ValueError: if ``rgb`` is not an ``HxWx3`` uint8 array.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected HxWx3 uint8 pixels, got {rgb.shape} {rgb.dtype}")
    if max(rgb.shape[:2]) > size:
        rgb = resize_longest(rgb, size)
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} thumbnail as JPEG")
    return encoded.tobytes(), rgb.shape[1], rgb.shape[0]


def process_image(
    data: bytes, config: PipelineConfig, orientation: int | None = None
) -> ProcessedImage:
    """One decode -> the JPEG thumbnail and the features of an image.

    Args:
        data: The encoded image.
        config: Thumbnail size/quality and the pixel limit.
        orientation: EXIF orientation from the image record; None reads it from the file.

    Raises:
        RejectedImage: when the bytes cannot be decoded (see :func:`decode`).
    """
    # Features are measured at ANALYSIS_SIDE, so decode at least that much even for small
    # thumbnails; otherwise sharpness would depend on the thumbnail setting.
    needed = max(config.thumbnail_size, ANALYSIS_SIDE)
    stored = decode_stored(data, needed, orientation, config.max_pixels)
    # Shrink first, then turn: turning the 512 px view costs a tenth of turning the decode.
    view = orient(resize_longest(stored.rgb, ANALYSIS_SIDE), stored.turn)
    if max(stored.rgb.shape[:2]) >= ANALYSIS_SIDE >= config.thumbnail_size:
        source = view  # already the thumbnail (or a shrink of it away): no second resize
    else:
        source = orient(stored.rgb, stored.turn)  # bigger thumbnails, or a small original
    thumbnail, thumb_width, thumb_height = make_thumbnail(
        source, config.thumbnail_size, config.thumbnail_quality
    )
    features = compute_features(view, *stored.display_size())
    return ProcessedImage(thumbnail, thumb_width, thumb_height, features)
