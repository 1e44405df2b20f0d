"""TIFFs whose decoder applies the orientation itself are turned once, not twice.

Pillow's TIFF loader (libtiff for fax-style Group 4 files) turns the pixels by the orientation
tag and drops the tag; the header already reports the turned size. The kernel must not apply
the recorded orientation again, and inspection must still report the stored size.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imgpipe.config import PipelineConfig
from imgpipe.imaging import decode, decode_oriented, process_image
from imgpipe.inspect import inspect_image

STORED_SIZE = (240, 160)  # width, height as stored in the file
# The EXIF definition of each orientation as the Pillow transpose that displays it.
DISPLAY = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def stored_picture() -> Image.Image:
    """A bilevel page, white with a black block in the top-left corner and a bar on the right.

    No orientation maps it onto itself, so a wrong turn or mirror shows.
    """
    pixels = np.full(STORED_SIZE[::-1], 255, np.uint8)
    pixels[:60, :80] = 0  # top-left block
    pixels[100:150, 200:220] = 0  # bar near the bottom-right
    return Image.fromarray(pixels).convert("1")


def fax_tiff(orientation: int, compression: str) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored_picture().save(buffer, "TIFF", compression=compression, exif=exif)
    return buffer.getvalue()


def expected_display(orientation: int) -> np.ndarray:
    picture = stored_picture().convert("L")
    turn = DISPLAY[orientation]
    return np.asarray(picture if turn is None else picture.transpose(turn), dtype=np.float32)


def gray(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32).mean(axis=2)


COMPRESSIONS = ["group4", "raw"]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_with_orientation_decodes_turned_once(orientation: int, compression: str) -> None:
    data = fax_tiff(orientation, compression)
    recorded = inspect_image(data, PipelineConfig()).orientation
    assert recorded == orientation
    for given in (recorded, None):  # from the record (ingest, process) or read from the file
        decoded = decode(data, 1024, given)
        expected = expected_display(orientation)
        assert decoded.rgb.shape[:2] == expected.shape
        assert (decoded.display_width, decoded.display_height) == expected.shape[::-1]
        assert np.abs(gray(decoded.rgb) - expected).mean() < 2.0


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_thumbnail_and_table_size_follow_the_orientation_once(
    orientation: int, compression: str
) -> None:
    data = fax_tiff(orientation, compression)
    inspection = inspect_image(data, PipelineConfig())
    assert (inspection.width, inspection.height) == STORED_SIZE  # the record's stored size
    result = process_image(data, PipelineConfig(thumbnail_size=120), inspection.orientation)
    expected = expected_display(orientation)
    display = expected.shape[::-1]
    assert (result.features.display_width, result.features.display_height) == display
    thumb = np.asarray(Image.open(io.BytesIO(result.thumbnail)).convert("L"), np.float32)
    small = np.asarray(
        Image.fromarray(expected.astype(np.uint8)).resize(thumb.shape[::-1], Image.Resampling.BOX),
        np.float32,
    )
    assert np.abs(thumb - small).mean() < 12.0


def test_labeler_input_of_a_fax_tiff_is_upright() -> None:
    data = fax_tiff(3, "group4")
    pixels = decode_oriented(data, 224, inspect_image(data, PipelineConfig()).orientation)
    assert np.abs(gray(pixels) - expected_display(3)).mean() < 2.0
