"""Decoding: encoded image bytes -> oriented sRGB pixels, once, at reduced scale.

The one decode that the local ingest, the ingest Lambda and the process stage share: it is
also the ingest's validation (a file that does not decode is quarantined with the reason).
JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) that still covers the pixels
needed, via Pillow's ``draft``: a 12 MP photo is never fully decoded to make a 512 px view.
Where OpenCV is installed, plain sRGB JPEGs (most photos) take its reduced decode instead (~4%
less CPU: no copy out of a Pillow image). The ingest Lambda's bundle leaves OpenCV out (it
would take most of the 250 MB limit), so there Pillow decodes everything, with the same
verdicts. Decode failures raise :class:`RejectedImage` with a reason code (``truncated``,
``undecodable`` or ``decompression_bomb``) and a message a person can act on.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from imgpipe.records import Reason, RejectedImage

try:
    import cv2
except ImportError:  # the ingest Lambda's bundle: Pillow decodes alone
    cv2 = None  # type: ignore[assignment]

__all__ = [
    "HAS_OPENCV",
    "Decoded",
    "Stored",
    "decode",
    "decode_oriented",
    "decode_stored",
    "orient",
]

HAS_OPENCV = cv2 is not None
_EXIF_ORIENTATION = 0x0112
_DCT_SCALES = (8, 4, 2)
# libheif applies the container's rotation/mirror while decoding (and pillow-heif resets the
# EXIF tag to 1); applying the EXIF orientation again would turn these images twice.
_PRE_ORIENTED_FORMATS = frozenset({"HEIF"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})
_WIDE_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
# Modes Image.reduce() box-filters correctly (P and 1 would need a conversion first).
_REDUCIBLE_MODES = frozenset({"RGB", "RGBA", "L", "LA", "CMYK"})
# JPEG modes OpenCV decodes exactly as Pillow does (CMYK/Adobe JPEGs need Pillow's inversion).
_OPENCV_JPEG_MODES = frozenset({"RGB", "L"})
_OPENCV_SCALES = (
    {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }
    if cv2 is not None
    else {}
)
_JPEG_EOI = b"\xff\xd9"

# EXIF orientation -> the transform that displays the stored pixels the right way up (the same
# as PIL.ImageOps.exif_transpose). Both tables give the same pixels (a test holds them to it);
# OpenCV's rotate copies ~10x faster than numpy's strided rot90, so it is used where installed.
_NUMPY_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, -1)[::-1],
    8: lambda a: np.rot90(a, 1),
}
_OPENCV_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = (
    {
        2: lambda a: cv2.flip(a, 1),
        3: lambda a: cv2.rotate(a, cv2.ROTATE_180),
        4: lambda a: cv2.flip(a, 0),
        5: lambda a: cv2.transpose(a),
        6: lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE),
        7: lambda a: cv2.flip(cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE), 0),
        8: lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE),
    }
    if cv2 is not None
    else {}
)
_ORIENT = _OPENCV_ORIENT or _NUMPY_ORIENT


@dataclass(frozen=True)
class Decoded:
    """Oriented sRGB pixels plus the display size of the original (undecimated) image."""

    rgb: np.ndarray
    display_width: int
    display_height: int


@dataclass(frozen=True)
class Stored:
    """Decoded sRGB pixels as stored (not yet turned), the turn to apply, the stored size."""

    rgb: np.ndarray
    turn: int
    width: int
    height: int

    def display_size(self) -> tuple[int, int]:
        """Width and height of the original once turned the right way up."""
        return (self.height, self.width) if self.turn >= 5 else (self.width, self.height)


@cache
def _register_heif() -> None:
    # Imported and registered on first use only: pillow-heif loads libheif, which Lambda-style
    # callers that never see HEIF should not pay for.
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _is_truncation(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, EOFError) or any(
        marker in text for marker in ("truncated", "premature end", "unexpected end")
    )


def _decode_error(exc: BaseException) -> RejectedImage:
    if _is_truncation(exc):
        return RejectedImage(
            Reason.TRUNCATED,
            f"image data ends early ({exc}); the upload was cut off - upload the file again",
        )
    return RejectedImage(
        Reason.UNDECODABLE,
        f"cannot decode image ({type(exc).__name__}: {exc}); the file is damaged or uses an "
        "unsupported encoding - re-export it as JPEG or PNG",
    )


def _dct_scale(longest: int, needed: int) -> int:
    """The largest JPEG DCT reduction that keeps the longest side at or above ``needed``."""
    return next((scale for scale in _DCT_SCALES if longest // scale >= needed), 1)


def _orientation_of(image: Image.Image, orientation: int | None) -> int:
    if image.format in _PRE_ORIENTED_FORMATS:
        return 1
    if orientation is None:
        try:
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        except Exception:  # a damaged EXIF block must not lose an image whose pixels are fine
            orientation = 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _tiff_orientation_tag(image: Image.Image) -> int | None:
    """The orientation in a TIFF's own tags (``None`` for other formats or without one)."""
    tags = getattr(image, "tag_v2", None)
    value = tags.get(_EXIF_ORIENTATION) if tags is not None else None
    return value if isinstance(value, int) and value != 1 else None


@lru_cache(maxsize=32)
def _srgb_transform(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A cached ICC -> sRGB transform, or None when the profile is already sRGB."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    if mode == "RGB" and "srgb" in ImageCms.getProfileDescription(source).lower():
        return None
    return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), mode, "RGB")


def _icc_transform(image: Image.Image) -> ImageCms.ImageCmsTransform | None:
    """The transform to sRGB that ``image`` needs, or None when it already is sRGB."""
    profile = image.info.get("icc_profile")
    if not profile or image.mode not in ("RGB", "CMYK"):
        return None
    try:
        return _srgb_transform(bytes(profile), image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # a broken profile is no reason to lose the picture: assume sRGB


def _apply_icc(image: Image.Image) -> Image.Image:
    transform = _icc_transform(image)
    if transform is None:
        return image
    return ImageCms.applyTransform(image, transform) or image


def _opencv_jpeg(data: bytes, image: Image.Image, scale: int) -> np.ndarray | None:
    """RGB pixels of a plain sRGB JPEG via OpenCV's reduced decode, or None to use Pillow.

    OpenCV does not report a cut-off file (it fills the rest with grey), so only files that
    end with the EOI marker take this path; Pillow rejects the others as truncated. Without
    OpenCV every file goes to Pillow, which accepts and rejects the same files (a test runs
    the bad-input suite both ways): this path is a speed-up, never a different verdict.
    """
    if (
        cv2 is None
        or image.format != "JPEG"
        or image.mode not in _OPENCV_JPEG_MODES
        or scale not in _OPENCV_SCALES
        or not data.rstrip(b"\0").endswith(_JPEG_EOI)
        or _icc_transform(image) is not None
    ):
        return None
    flags = _OPENCV_SCALES[scale] | cv2.IMREAD_IGNORE_ORIENTATION  # we turn it, once
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if bgr is None:
        return None  # let Pillow decode it or say precisely what is wrong
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _reduce(image: Image.Image, needed: int) -> Image.Image:
    """Box-shrink formats without DCT scaling (PNG, TIFF, HEIF...) before colour work.

    Colour management, alpha and the features then run on ~1/factor^2 of the pixels: an ICC
    transform of a full 12 MP HEIC costs ~0.3 s, of the reduced one ~0.02 s.
    """
    factor = max(image.size) // needed
    if factor < 2 or image.mode not in _REDUCIBLE_MODES or "transparency" in image.info:
        return image
    return image.reduce(factor)


def _composite_over_white(image: Image.Image) -> np.ndarray:
    rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
    alpha = rgba[..., 3:4]
    # Integer blend: rgb*a + 255*(255-a) <= 65025 fits in uint16; +127 rounds to nearest.
    blended = (rgba[..., :3] * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def _wide_to_gray(image: Image.Image) -> np.ndarray:
    values = np.asarray(image).astype(np.float32)
    if image.mode == "F":
        peak = float(np.nanmax(values)) if values.size else 0.0
        if peak <= 1.0:  # float images are usually normalised to 0..1
            values = values * 255.0
    elif image.mode.startswith("I;16") or float(values.max(initial=0)) > 255:
        values = values / 257.0  # 16-bit data (65535 -> 255)
    return np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """sRGB 8-bit ``HxWx3`` pixels from any Pillow mode."""
    image = _apply_icc(image)
    mode = image.mode
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in image.info):
        return _composite_over_white(image)
    if mode in _WIDE_MODES:
        gray = _wide_to_gray(image)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode != "RGB":
        image = image.convert("RGB")  # CMYK, YCbCr, L, 1, P, LAB, HSV, RGBX
    return np.asarray(image)


def orient(rgb: np.ndarray, turn: int) -> np.ndarray:
    """``rgb`` turned by EXIF orientation ``turn`` (1-8; others leave it as it is)."""
    return _ORIENT[turn](rgb) if turn in _ORIENT else rgb


def decode_stored(
    data: bytes, min_side_needed: int, orientation: int | None, max_pixels: int | None
) -> Stored:
    """:func:`decode` without the turn, so callers can turn a smaller view instead."""
    if min_side_needed < 1:
        raise ValueError(f"min_side_needed must be at least 1, got {min_side_needed}")
    _register_heif()
    try:
        with warnings.catch_warnings():
            # Pixel limits are the pipeline's (max_pixels), not Pillow's default warning level.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            tagged = _tiff_orientation_tag(image)
            if max_pixels is not None and width * height > max_pixels:
                raise RejectedImage(
                    Reason.DECOMPRESSION_BOMB,
                    f"{width}x{height} is more than the {max_pixels} pixels allowed "
                    "(max_pixels); downscale the image before uploading",
                )
            scale = _dct_scale(max(width, height), min_side_needed)
            rgb = _opencv_jpeg(data, image, scale)
            if rgb is None:
                if scale > 1:
                    # Only JPEG honours draft(); other formats ignore it and decode in full.
                    image.draft(image.mode, (max(1, width // scale), max(1, height // scale)))
                image.load()  # first frame of animations and multi-page files
                rgb = _to_rgb(_reduce(image, min_side_needed))
            if tagged and _tiff_orientation_tag(image) is None:
                # The decoder turned the pixels and dropped the tag (Pillow's TIFF loader):
                # the recorded orientation is already applied, and the size is the display size.
                turn, (width, height) = 1, image.size
            else:
                turn = _orientation_of(image, orientation)
    except RejectedImage:
        raise
    except Image.DecompressionBombError as exc:
        raise RejectedImage(Reason.DECOMPRESSION_BOMB, f"{exc}; downscale the image") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(exc) from exc
    return Stored(rgb, turn, width, height)


def decode(
    data: bytes, min_side_needed: int, orientation: int | None = None, max_pixels: int | None = None
) -> Decoded:
    """Decode once, at reduced scale when possible, into oriented sRGB pixels.

    Args:
        data: The encoded image (JPEG, PNG, GIF, TIFF, WebP, BMP, HEIF, ...).
        min_side_needed: Longest side, in pixels, the caller needs; JPEGs decode at the
            smallest DCT scale that still covers it (never below the stored size's need).
        orientation: EXIF orientation 1-8 to apply; None reads it from the file.
        max_pixels: Reject images with more pixels than this as decompression bombs.

    Returns:
        The pixels (``HxWx3`` uint8, the right way up) and the original display size.

    Raises:
        RejectedImage: ``truncated`` for cut-off data, ``decompression_bomb`` above
            ``max_pixels``, ``undecodable`` for any other decode failure.
    """
    stored = decode_stored(data, min_side_needed, orientation, max_pixels)
    rgb = orient(stored.rgb, stored.turn)
    return Decoded(np.ascontiguousarray(rgb), *stored.display_size())


def decode_oriented(
    data: bytes, min_side_needed: int, orientation: int | None = None
) -> np.ndarray:
    """Oriented sRGB ``HxWx3`` uint8 pixels, decoded once at the smallest sufficient scale.

    See :func:`decode` for the arguments and errors.
    """
    return decode(data, min_side_needed, orientation).rgb
