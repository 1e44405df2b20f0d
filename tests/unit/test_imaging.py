"""The imaging kernel on generated images of every pixel mode and on the real corpus."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from imgpipe.config import PipelineConfig
from imgpipe.imaging import decode, decode_oriented, hamming, make_thumbnail, process_image
from imgpipe.records import Reason, RejectedImage


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like test picture: a gradient with random ellipses and boxes (edges + colour)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    gradient = np.stack(
        [x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1
    ).astype(np.uint8)
    image = Image.fromarray(gradient)
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width - 20)), int(rng.integers(0, height - 20))
        x1 = x0 + int(rng.integers(10, width // 3))
        y1 = y0 + int(rng.integers(10, height // 3))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
    return image


@pytest.fixture(scope="module")
def photo_12mp() -> bytes:
    return encode(scene(4000, 3000), "JPEG", quality=90)


def _rgba_with_hole() -> Image.Image:
    rgba = scene(120, 90).convert("RGBA")
    alpha = Image.new("L", rgba.size, 255)
    ImageDraw.Draw(alpha).rectangle((0, 0, 59, 89), fill=0)  # left half fully transparent
    rgba.putalpha(alpha)
    return rgba


def _mode_samples() -> dict[str, bytes]:
    base = scene(120, 90)
    gray16 = Image.fromarray((np.linspace(0, 65535, 120 * 90).reshape(90, 120)).astype(np.uint16))
    gray32 = Image.fromarray((np.linspace(0, 65535, 120 * 90).reshape(90, 120)).astype(np.int32))
    gray_f = Image.fromarray(np.linspace(0, 1, 120 * 90, dtype=np.float32).reshape(90, 120))
    frames = [base, scene(120, 90, seed=1)]
    return {
        "RGB jpeg": encode(base, "JPEG"),
        "CMYK jpeg": encode(base.convert("CMYK"), "JPEG"),
        "L jpeg": encode(base.convert("L"), "JPEG"),
        "1 png": encode(base.convert("1"), "PNG"),
        "P png": encode(base.convert("P"), "PNG"),
        "LA png": encode(base.convert("LA"), "PNG"),
        "RGBA png": encode(_rgba_with_hole(), "PNG"),
        "I;16 png": encode(gray16, "PNG"),
        "I tiff": encode(gray32, "TIFF"),
        "F tiff": encode(gray_f, "TIFF"),
        "CMYK tiff": encode(base.convert("CMYK"), "TIFF"),
        "animated gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "multipage tiff": encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
        "webp": encode(base, "WEBP"),
        "bmp": encode(base, "BMP"),
    }


@pytest.mark.parametrize("name", sorted(_mode_samples()))
def test_every_pixel_mode_decodes_to_rgb_uint8(name: str) -> None:
    rgb = decode_oriented(_mode_samples()[name], 64)
    assert rgb.dtype == np.uint8
    assert rgb.shape == (90, 120, 3)


def test_sixteen_bit_gray_keeps_its_full_range() -> None:
    ramp = Image.fromarray(np.linspace(0, 65535, 120 * 90).reshape(90, 120).astype(np.uint16))
    rgb = decode_oriented(encode(ramp, "PNG"), 64)
    assert rgb.min() <= 2 and rgb.max() >= 253  # not clipped to 255 (which makes it all white)


def test_transparent_pixels_are_composited_over_white() -> None:
    rgb = decode_oriented(encode(_rgba_with_hole(), "PNG"), 64)
    assert (rgb[:, :60] == 255).all()
    assert rgb[:, 60:].mean() < 250


def test_heif_decodes_through_pillow_heif() -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    rgb = decode_oriented(encode(scene(120, 90), "HEIF", quality=90), 64)
    assert rgb.shape == (90, 120, 3)


def test_12mp_jpeg_is_decoded_at_reduced_scale_for_a_512_thumbnail(photo_12mp: bytes) -> None:
    rgb = decode_oriented(photo_12mp, 512)
    assert 512 <= max(rgb.shape[:2]) < 4000
    assert rgb.shape[1] > rgb.shape[0]  # still landscape


def test_display_size_is_the_original_size_after_orientation(photo_12mp: bytes) -> None:
    decoded = decode(photo_12mp, 512, orientation=6)
    assert (decoded.display_width, decoded.display_height) == (3000, 4000)
    assert decoded.rgb.shape[0] > decoded.rgb.shape[1]  # rotated to portrait


def test_process_image_reports_original_dimensions_and_a_512_thumbnail(photo_12mp: bytes) -> None:
    result = process_image(photo_12mp, PipelineConfig())
    assert (result.features.display_width, result.features.display_height) == (4000, 3000)
    assert result.features.megapixels == pytest.approx(12.0)
    assert result.features.aspect == pytest.approx(4 / 3, abs=1e-3)
    assert (result.thumbnail_width, result.thumbnail_height) == (512, 384)
    with Image.open(io.BytesIO(result.thumbnail)) as thumb:
        assert thumb.format == "JPEG"
        assert thumb.size == (512, 384)


def test_thumbnail_longest_side_is_the_requested_size() -> None:
    rgb = np.zeros((300, 1000, 3), np.uint8)
    data, width, height = make_thumbnail(rgb, 256, 85)
    assert (width, height) == (256, 77)
    assert Image.open(io.BytesIO(data)).size == (256, 77)


def test_thumbnails_never_upscale() -> None:
    rgb = np.zeros((60, 100, 3), np.uint8)
    data, width, height = make_thumbnail(rgb, 512, 85)
    assert (width, height) == (100, 60)
    assert Image.open(io.BytesIO(data)).size == (100, 60)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files_are_rejected_as_truncated(fmt: str) -> None:
    data = encode(scene(400, 300), fmt)
    with pytest.raises(RejectedImage) as caught:
        decode_oriented(data[: len(data) // 2], 64)
    assert caught.value.reason is Reason.TRUNCATED
    assert "upload" in caught.value.message


def test_bytes_that_are_no_image_are_undecodable() -> None:
    with pytest.raises(RejectedImage) as caught:
        decode_oriented(b"definitely not an image" * 10, 64)
    assert caught.value.reason is Reason.UNDECODABLE


def test_images_above_max_pixels_are_rejected_as_bombs(photo_12mp: bytes) -> None:
    config = PipelineConfig(max_pixels=10_000_000)
    with pytest.raises(RejectedImage) as caught:
        process_image(photo_12mp, config)
    assert caught.value.reason is Reason.DECOMPRESSION_BOMB


def test_phash_is_stable_under_resize_and_reencode_but_not_across_images() -> None:
    original = scene(800, 600, seed=3)
    copy = original.resize((400, 300), Image.Resampling.LANCZOS)
    other = scene(800, 600, seed=4)
    config = PipelineConfig()
    hash_original = process_image(encode(original, "PNG"), config).features.phash
    hash_copy = process_image(encode(copy, "JPEG", quality=70), config).features.phash
    hash_other = process_image(encode(other, "PNG"), config).features.phash
    assert len(hash_original) == 16
    assert hamming(hash_original, hash_copy) <= 6
    assert hamming(hash_original, hash_other) > 16


def test_hamming_counts_differing_bits() -> None:
    assert hamming("0000000000000000", "000000000000000f") == 4
    assert hamming("ffffffffffffffff", "0000000000000000") == 64
    with pytest.raises(ValueError):
        hamming("abc", "0000000000000000")


def test_blurred_image_is_less_sharp() -> None:
    original = scene(800, 600, seed=5)
    blurred = original.filter(ImageFilter.GaussianBlur(4))
    config = PipelineConfig()
    sharp = process_image(encode(original, "PNG"), config).features.sharpness
    soft = process_image(encode(blurred, "PNG"), config).features.sharpness
    assert soft < sharp / 2


@pytest.mark.parametrize(("value", "expected"), [(0, 0.0), (255, 255.0)])
def test_brightness_of_black_and_white_images(value: int, expected: float) -> None:
    image = Image.new("RGB", (200, 100), (value, value, value))
    brightness = process_image(encode(image, "PNG"), PipelineConfig()).features.brightness
    assert brightness == pytest.approx(expected, abs=0.5)


def test_dominant_color_of_a_mostly_red_image_is_red() -> None:
    image = Image.new("RGB", (200, 200), (220, 20, 30))
    ImageDraw.Draw(image).rectangle((0, 0, 60, 60), fill=(10, 200, 10))
    color = process_image(encode(image, "PNG"), PipelineConfig()).features.dominant_color
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    assert color.startswith("#") and len(color) == 7
    assert red > 180 and green < 60 and blue < 60


def _thumbnail(path: Path) -> np.ndarray:
    result = process_image(path.read_bytes(), PipelineConfig(thumbnail_size=128))
    with Image.open(io.BytesIO(result.thumbnail)) as thumb:
        return np.asarray(thumb.convert("RGB"))


@pytest.mark.parametrize("shape", ["landscape", "portrait"])
@pytest.mark.parametrize("orientation", range(2, 9))
def test_corpus_orientation_thumbnails_are_upright(
    corpus_dir: Path, shape: str, orientation: int
) -> None:
    folder = corpus_dir / "jpg" / "orientation"
    upright = _thumbnail(folder / f"{shape}_1.jpg").astype(np.int16)
    oriented = _thumbnail(folder / f"{shape}_{orientation}.jpg").astype(np.int16)
    assert oriented.shape == upright.shape
    assert np.abs(oriented - upright).mean() < 8

    # Guard that the comparison can fail: the stored (unturned) pixels look different.
    raw = decode_oriented((folder / f"{shape}_{orientation}.jpg").read_bytes(), 128, orientation=1)
    raw_small = cv2.resize(raw, (upright.shape[1], upright.shape[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(raw_small.astype(np.int16) - upright).mean() > 20
