"""The decode without OpenCV (as in the ingest Lambda) turns and decodes as it does with it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from imgpipe import decoding
from tests.imagefactory import jpeg_bytes, photo_like

EXIF_ORIENTATION = 0x0112


def with_orientation(image: Image.Image, orientation: int) -> Image.Image:
    """``image`` saved as PNG with an EXIF orientation tag, opened again."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif)
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_numpy_turns_match_pillows_exif_transpose(orientation: int) -> None:
    # Not square, and every pixel different, so any wrong flip or turn shows.
    stored = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    upright = ImageOps.exif_transpose(with_orientation(Image.fromarray(stored), orientation))
    turn = decoding._NUMPY_ORIENT.get(orientation, lambda a: a)
    assert np.array_equal(turn(stored), np.asarray(upright))


@pytest.mark.skipif(not decoding.HAS_OPENCV, reason="compares with OpenCV's turns")
@pytest.mark.parametrize("orientation", range(2, 9))
def test_opencv_and_numpy_turns_give_the_same_pixels(orientation: int) -> None:
    stored = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    by_opencv = decoding._OPENCV_ORIENT[orientation](stored)
    assert np.array_equal(by_opencv, decoding._NUMPY_ORIENT[orientation](stored))


@pytest.mark.skipif(not decoding.HAS_OPENCV, reason="compares with OpenCV's decode")
def test_pillow_alone_decodes_a_jpeg_like_the_opencv_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = jpeg_bytes(photo_like(1600, 1200, 7))
    fast = decoding.decode(data, 400, orientation=6)
    monkeypatch.setattr(decoding, "cv2", None)  # what the Lambda bundle has
    monkeypatch.setattr(decoding, "_ORIENT", decoding._NUMPY_ORIENT)
    alone = decoding.decode(data, 400, orientation=6)
    assert (alone.display_width, alone.display_height) == (1200, 1600)
    assert alone.rgb.shape == fast.rgb.shape == (400, 300, 3)  # 1/4 DCT scale, turned
    # Both are libjpeg(-turbo) at the same DCT scale: at most rounding apart.
    difference = np.abs(alone.rgb.astype(np.int16) - fast.rgb.astype(np.int16))
    assert float(difference.mean()) < 1.0
