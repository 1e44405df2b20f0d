"""Image features computed from decoded pixels: perceptual hash, sharpness, brightness, colour.

Pure numpy/OpenCV on an RGB ``HxWx3`` uint8 array; no I/O and no per-pixel Python loops.
Every feature is measured on one fixed-size view of the image (:data:`ANALYSIS_SIDE` on the
longest side) so that values are comparable across images of different resolutions.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Sharpness (variance of the Laplacian) depends on scale; measuring every image at one size
# makes a 2 MP and a 24 MP photo comparable. The decoder is asked for at least this many pixels.
ANALYSIS_SIDE = 512

_HASH_SIDE = 32  # pHash: DCT of a 32x32 grayscale, keep the 8x8 lowest frequencies
_HASH_BITS_SIDE = 8
_COLOR_BITS = 2  # 4 levels per channel -> 4x4x4 = 64 colour bins


@dataclass(frozen=True)
class Features:
    """What the image is like, from one decode.

    Attributes:
        display_width: Width of the original image after EXIF orientation, in pixels.
        display_height: Height of the original image after EXIF orientation, in pixels.
        megapixels: ``display_width * display_height / 1e6``.
        aspect: ``display_width / display_height``.
        phash: 64-bit DCT perceptual hash as 16 lowercase hex digits.
        sharpness: Variance of the Laplacian of the grayscale analysis view.
        brightness: Mean luma (Rec. 601), 0-255.
        dominant_color: Mean colour of the most populated 4x4x4 colour bin, ``"#rrggbb"``.
    """

    display_width: int
    display_height: int
    megapixels: float
    aspect: float
    phash: str
    sharpness: float
    brightness: float
    dominant_color: str


def resize_longest(rgb: np.ndarray, side: int) -> np.ndarray:
    """The image scaled so that its longest side is exactly ``side`` (aspect kept)."""
    height, width = rgb.shape[:2]
    longest = max(height, width)
    if longest == side:
        return rgb
    if width >= height:
        size = (side, max(1, round(height * side / width)))
    else:
        size = (max(1, round(width * side / height)), side)
    # INTER_AREA anti-aliases shrinks by 2x or more. Below 2x (all a DCT-scaled decode leaves)
    # bilinear is within ~1 dB PSNR of it at a tenth of the cost: OpenCV's non-integer area
    # resize of a 1000x750 decode takes ~5 ms, more than the rest of the kernel after decode.
    # INTER_AREA degenerates to nearest-like output when enlarging; bilinear is right there too.
    interpolation = cv2.INTER_AREA if longest >= 2 * side else cv2.INTER_LINEAR
    return cv2.resize(rgb, size, interpolation=interpolation)


def perceptual_hash(gray: np.ndarray) -> str:
    """The 64-bit DCT pHash of a grayscale image, as 16 hex digits.

    Bits are the 8x8 lowest DCT frequencies of a 32x32 reduction compared with their median,
    in row-major order (the usual pHash definition), so near-identical images differ in few bits.
    """
    small = cv2.resize(gray, (_HASH_SIDE, _HASH_SIDE), interpolation=cv2.INTER_AREA)
    coefficients = cv2.dct(small.astype(np.float32))[:_HASH_BITS_SIDE, :_HASH_BITS_SIDE]
    bits = (coefficients > np.median(coefficients)).ravel()
    return np.packbits(bits).tobytes().hex()


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two pHashes (0 = identical, 64 = opposite).

    Raises:
        ValueError: if either value is not a 16-hex-digit hash.
    """
    if len(a) != 16 or len(b) != 16:
        raise ValueError(f"pHashes must be 16 hex digits, got {a!r} and {b!r}")
    return (int(a, 16) ^ int(b, 16)).bit_count()


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for crisp edges, low for blur or flat images."""
    # 16-bit integers hold a 3x3 Laplacian of 8-bit pixels exactly; OpenCV's meanStdDev then
    # gives the same variance as numpy's var over float64 copies, without the copies.
    _, std = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_16S))
    return float(std[0, 0]) ** 2


def dominant_color(rgb: np.ndarray) -> str:
    """Mean colour of the most populated bin of a coarse 4x4x4 quantisation, ``"#rrggbb"``.

    The mean of the bin (not its centre) reports the colour people actually see.
    """
    levels = rgb >> (8 - _COLOR_BITS)
    # 6 bits of bin index fit in uint8: no widening of every pixel to 64-bit integers.
    bins = (levels[..., 0] << (2 * _COLOR_BITS)) | (levels[..., 1] << _COLOR_BITS) | levels[..., 2]
    best = int(np.bincount(bins.ravel(), minlength=1 << (3 * _COLOR_BITS)).argmax())
    mask = (bins == best).view(np.uint8)
    red, green, blue = (round(c) for c in cv2.mean(np.ascontiguousarray(rgb), mask=mask)[:3])
    return f"#{red:02x}{green:02x}{blue:02x}"


def compute_features(rgb: np.ndarray, display_width: int, display_height: int) -> Features:
    """All features of an oriented RGB image.

    Args:
        rgb: Decoded, oriented ``HxWx3`` uint8 pixels (possibly at a reduced scale).
        display_width: Width of the original image after orientation.
        display_height: Height of the original image after orientation.
    """
    view = resize_longest(rgb, ANALYSIS_SIDE)
    gray = cv2.cvtColor(view, cv2.COLOR_RGB2GRAY)  # Rec. 601 luma weights
    return Features(
        display_width=display_width,
        display_height=display_height,
        megapixels=round(display_width * display_height / 1_000_000, 3),
        aspect=round(display_width / display_height, 4),
        phash=perceptual_hash(gray),
        sharpness=round(sharpness(gray), 3),
        brightness=round(float(gray.mean()), 3),
        dominant_color=dominant_color(view),
    )
