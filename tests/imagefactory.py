"""Small real images made by the tests themselves (no third-party files needed)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    """A smooth, textured RGB image (gradients + shapes), distinct per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 6.28)
        channels.append(127 + 100 * np.sin(fx * x / width * 6.28 + fy * y / height * 6.28 + phase))
    pixels = np.stack(channels, axis=-1)
    cx, cy, r = (
        rng.uniform(0.2, 0.8) * width,
        rng.uniform(0.2, 0.8) * height,
        min(width, height) / 5,
    )
    pixels[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg_bytes(
    image: Image.Image,
    *,
    make: str | None = None,
    model: str | None = None,
    taken: str | None = None,
    artist: str | None = None,
    orientation: int | None = None,
    quality: int = 90,
) -> bytes:
    """Encode as JPEG with the given EXIF tags."""
    exif = Image.Exif()
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    if artist:
        exif[0x013B] = artist
    if orientation:
        exif[0x0112] = orientation
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
