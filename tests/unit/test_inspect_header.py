"""Header-only inspection of an object's first bytes (the Lambda's ranged GET)."""

from __future__ import annotations

import pytest
from PIL import Image

from imgpipe.config import PipelineConfig
from imgpipe.inspect import IncompleteHeader, inspect_image
from imgpipe.records import Reason, RejectedImage
from tests.imagefactory import jpeg_bytes, photo_like, png_bytes

CONFIG = PipelineConfig()


def photo_with_big_header(header_bytes: int) -> bytes:
    """A 320x240 JPEG whose header carries an ICC profile of about ``header_bytes``."""
    import io

    buffer = io.BytesIO()
    image = photo_like(320, 240, 3)
    image.save(buffer, format="JPEG", quality=90, icc_profile=b"\x00" * header_bytes)
    return buffer.getvalue()


def test_prefix_past_the_header_describes_the_image_like_the_whole_file() -> None:
    data = jpeg_bytes(photo_like(640, 480, 1), make="Canon", model="EOS", orientation=6)
    whole = inspect_image(data, CONFIG)
    prefix = inspect_image(data[:2048], CONFIG, total_size=len(data))
    assert (prefix.format, prefix.width, prefix.height, prefix.orientation) == (
        "JPEG",
        640,
        480,
        6,
    )
    assert prefix.exif == whole.exif


def test_prefix_ending_inside_the_header_asks_for_more_instead_of_truncated() -> None:
    data = photo_with_big_header(100_000)
    with pytest.raises(IncompleteHeader):
        inspect_image(data[:50_000], CONFIG, total_size=len(data))
    # The same bytes as a whole object are an interrupted upload.
    with pytest.raises(RejectedImage) as rejected:
        inspect_image(data[:50_000], CONFIG)
    assert rejected.value.reason is Reason.TRUNCATED


def test_prefix_too_short_to_sniff_asks_for_more() -> None:
    data = png_bytes(photo_like(100, 100, 2))
    with pytest.raises(IncompleteHeader):
        inspect_image(data[:10], CONFIG, total_size=len(data))


def test_size_limit_applies_to_the_whole_object_not_the_prefix() -> None:
    data = jpeg_bytes(photo_like(200, 200, 4))
    small_limit = PipelineConfig(max_bytes=100_000)
    with pytest.raises(RejectedImage) as rejected:
        inspect_image(data, small_limit, total_size=150_000)
    assert rejected.value.reason is Reason.TOO_LARGE
    assert "146.5 KiB" in rejected.value.message


def test_empty_object_is_empty_even_without_bytes_read() -> None:
    with pytest.raises(RejectedImage) as rejected:
        inspect_image(b"", CONFIG, total_size=0)
    assert rejected.value.reason is Reason.EMPTY_FILE


def test_not_an_image_is_rejected_from_its_prefix() -> None:
    data = b"%PDF-1.7\n" + b"x" * 4000
    with pytest.raises(RejectedImage) as rejected:
        inspect_image(data[:1000], CONFIG, total_size=len(data))
    assert rejected.value.reason is Reason.NOT_AN_IMAGE


def test_small_image_in_prefix_is_still_too_small() -> None:
    data = png_bytes(Image.new("RGB", (40, 300), "white"))
    with pytest.raises(RejectedImage) as rejected:
        inspect_image(data[:100], CONFIG, total_size=len(data))
    assert rejected.value.reason is Reason.TOO_SMALL
