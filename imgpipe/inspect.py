"""Header-level inspection of uploaded bytes: what they are, how big, and what they say.

:func:`inspect_image` is the gate between ``ingest/`` and the rest of the pipeline. It reads
the format from magic bytes (never the file name), the dimensions from the header (no pixel
is decoded), applies the size limits of :class:`~imgpipe.config.PipelineConfig`, and turns
every problem into a :class:`~imgpipe.records.RejectedImage` with a reason code and a
message a person can act on. EXIF, XMP and creator handling live in :mod:`imgpipe.exif`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile

from imgpipe.config import PipelineConfig
from imgpipe.exif import clean_text, read_exif, read_xmp_creator, resolve_creator
from imgpipe.headers import header_cut_off
from imgpipe.other_formats import other_image_format
from imgpipe.records import Exif, Reason, RejectedImage

__all__ = [
    "IncompleteHeader",
    "Inspection",
    "checksum",
    "clean_text",
    "inspect_image",
    "read_exif",
    "read_xmp_creator",
    "resolve_creator",
    "sniff_format",
]

logger = logging.getLogger(__name__)

# ISO-BMFF brands of HEIF-family still images (HEIC, HEIF, AVIF). Video brands are absent.
_HEIF_BRANDS = frozenset(
    b"heic heix hevc hevx heim heis hevm hevs mif1 mif2 msf1 avif avis".split()
)
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})

# Pillow plugin ids that can decode each format, in order of preference.
_PIL_PLUGINS: dict[str, tuple[str, ...]] = {
    "JPEG": ("JPEG",),
    "PNG": ("PNG",),
    "GIF": ("GIF",),
    "WEBP": ("WEBP",),
    "TIFF": ("TIFF",),
    "BMP": ("BMP",),
    "HEIF": ("HEIF", "AVIF"),
}

_NOT_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or Office document"),
    (b"<!doctype html", "an HTML page"),
    (b"<html", "an HTML page"),
)


def sniff_format(head: bytes) -> str | None:
    """The image format named by the magic bytes at the start of a file.

    Args:
        head: The first bytes of the file (32 are enough; 64 is plenty for HEIF brands).

    Returns:
        ``"JPEG"``, ``"PNG"``, ``"GIF"``, ``"WEBP"``, ``"TIFF"``, ``"BMP"`` or ``"HEIF"``
        (HEIC, HEIF and AVIF), or ``None`` when the bytes are no such image.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "TIFF"
    # "BM" alone would also match text; the DIB header size that follows pins it down.
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    if head[4:8] == b"ftyp" and _ftyp_brands(head) & _HEIF_BRANDS:
        return "HEIF"
    return None


def _ftyp_brands(head: bytes) -> set[bytes]:
    box_end = min(int.from_bytes(head[:4], "big"), len(head))
    compatible = (head[i : i + 4] for i in range(16, box_end - 3, 4))
    return {head[8:12], *compatible}


def checksum(data: bytes) -> str:
    """The content identity of an object: ``"sha256:<hex digest>"``."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


@dataclass(frozen=True)
class Inspection:
    """What the header of an accepted image says.

    ``width``/``height`` are the stored pixel dimensions (before ``orientation`` is applied);
    ``frames`` counts animation frames or pages (the first one is processed); ``mode`` is
    the Pillow mode the decoder will produce.
    """

    format: str
    width: int
    height: int
    orientation: int
    exif: Exif
    xmp_creator: str | None
    frames: int
    mode: str


class IncompleteHeader(Exception):
    """The first bytes of an object end before its header does: read more and try again."""


def inspect_image(data: bytes, config: PipelineConfig, total_size: int | None = None) -> Inspection:
    """Validate an upload from its header and describe it, without decoding pixels.

    Args:
        data: The whole object, or its first bytes when ``total_size`` says it is longer.
        config: Supplies ``min_side``, ``max_side``, ``max_pixels`` and ``max_bytes``.
        total_size: The size of the whole object when ``data`` is only its start (a ranged
            GET): the size limit applies to it, and a header cut off at the end of ``data``
            raises :class:`IncompleteHeader` instead of rejecting the image as truncated.

    Raises:
        RejectedImage: With the reason code for quarantine (see :class:`Reason`).
        IncompleteHeader: Only when ``data`` is a prefix and holds too little of the header.
    """
    size = len(data) if total_size is None else max(total_size, len(data))
    partial = size > len(data)
    if size == 0:
        raise RejectedImage(Reason.EMPTY_FILE, "the file is empty (0 bytes); upload it again")
    if partial and len(data) < 64:  # too little to sniff the format (or HEIF brands) from
        raise IncompleteHeader(f"{len(data)} of {size} bytes are not enough to sniff a format")
    fmt = sniff_format(data[:64])
    if fmt is None:
        raise _not_a_supported_image(data[:512])
    if size > config.max_bytes:
        raise RejectedImage(
            Reason.TOO_LARGE,
            f"the file is {_bytes(size)}, above the {_bytes(config.max_bytes)}"
            " limit; compress or downscale it before upload",
        )
    # Warnings here are about the input (corrupt EXIF, PIL's own bomb threshold), not the code.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with _open_header(data, fmt, partial) as img:
                _check_dimensions(*img.size, config)
                frames = _frame_count(img)
                exif, orientation = read_exif(img)
                (width, height), mode = _stored_size(img), img.mode
        except Image.DecompressionBombError as exc:
            # Pillow's own process-wide limit fired inside a plugin before ours could.
            raise RejectedImage(
                Reason.DECOMPRESSION_BOMB,
                f"the decoder refused the image as a decompression bomb"
                f" ({str(exc).rstrip('.')}); downscale it before upload",
            ) from exc
    return Inspection(
        format=fmt,
        width=width,
        height=height,
        orientation=orientation,
        exif=exif,
        xmp_creator=read_xmp_creator(data),
        frames=frames,
        mode=mode,
    )


def _not_a_supported_image(head: bytes) -> RejectedImage:
    name = other_image_format(head)
    if name:
        return _unsupported(
            f"the file is an image in {name} format, which the pipeline does not read"
        )
    lowered = head.lstrip().lower()
    if (lowered.startswith((b"<?xml", b"<svg")) and b"<svg" in lowered) or lowered.startswith(
        b"<!doctype svg"
    ):
        return _unsupported("the file is an SVG drawing, which the pipeline does not read")
    kind = _non_image_kind(head, lowered)
    return RejectedImage(
        Reason.NOT_AN_IMAGE,
        f"the content is not an image (it looks like {kind}), whatever its file name says; "
        "upload a JPEG, PNG, GIF, WebP, TIFF, BMP or HEIC file",
    )


def _non_image_kind(head: bytes, lowered: bytes) -> str:
    for magic, kind in _NOT_IMAGE_MAGIC:
        if head.startswith(magic) or lowered.startswith(magic):
            return kind
    if head[4:8] == b"ftyp":
        return "a video or other ISO media file"
    if all(byte >= 0x20 or byte in b"\t\n\r\f" for byte in head):
        return "text"
    return "binary data of no known image format"


def _unsupported(what: str) -> RejectedImage:
    return RejectedImage(
        Reason.UNSUPPORTED_FORMAT, f"{what}; convert it to JPEG or PNG and upload it again"
    )


def _open_header(data: bytes, fmt: str, partial: bool = False) -> ImageFile.ImageFile:
    """Parse the header with the plugin for the sniffed format (lazy: no pixels decoded).

    The plugin is called directly rather than through ``Image.open`` because ``open``
    applies Pillow's process-wide ``MAX_IMAGE_PIXELS`` before we can apply the configured
    cap, and hides the parse error that tells a cut-off header from a corrupt one.
    ``partial`` says ``data`` is only the start of the object, so a cut-off header means
    "read more" (:class:`IncompleteHeader`), not an interrupted upload.
    """
    available = _available_plugins(fmt)
    plugins = [p for p in available if _accepts(p, data[:16])]
    if not plugins:
        if available and header_cut_off(fmt, data):
            raise _cut_off(fmt, len(data), partial)
        missing = " (pillow-heif is not installed)" if not _register_decoders() else ""
        raise _unsupported(f"no installed decoder reads this {fmt} file{missing}")
    failure: Exception | None = None
    for plugin in plugins:  # HEIF: pillow-heif first, then Pillow's own AVIF plugin
        try:
            return Image.OPEN[plugin][0](io.BytesIO(data), "")
        except Image.DecompressionBombError:
            raise
        except Exception as exc:  # hostile headers raise anything from a plugin; classify it
            logger.debug("%s header parse by %s failed: %r", fmt, plugin, exc)
            failure = exc
    if header_cut_off(fmt, data):
        raise _cut_off(fmt, len(data), partial) from failure
    raise RejectedImage(
        Reason.UNDECODABLE,
        f"the {fmt} header is corrupt ({failure}); re-export the image from its source",
    ) from failure


def _cut_off(fmt: str, size: int, partial: bool) -> Exception:
    if partial:
        return IncompleteHeader(f"the {fmt} header goes on past the first {size} bytes")
    return _truncated(fmt, size)


def _truncated(fmt: str, size: int) -> RejectedImage:
    return RejectedImage(
        Reason.TRUNCATED,
        f"the {fmt} header is cut off after {size} bytes, so its size cannot be read; "
        "the upload was probably interrupted, upload the file again",
    )


def _accepts(plugin: str, head: bytes) -> bool:
    accept = Image.OPEN[plugin][1]
    if accept is None:
        return True
    verdict = accept(head)
    # Pillow's accept functions may return a warning string, which means "not mine".
    return bool(verdict) and not isinstance(verdict, str)


def _available_plugins(fmt: str) -> list[str]:
    _register_decoders()
    return [p for p in _PIL_PLUGINS[fmt] if p in Image.OPEN]


@functools.cache
def _register_decoders() -> bool:
    """Load Pillow's plugins and pillow-heif's opener once; ``False`` without pillow-heif."""
    Image.init()
    try:
        import pillow_heif
    except ImportError:
        logger.warning("pillow-heif is not installed: HEIC/HEIF uploads will be quarantined")
        return False
    pillow_heif.register_heif_opener()
    return True


def _check_dimensions(width: int, height: int, config: PipelineConfig) -> None:
    # Checked straight after the header parse: nothing has allocated pixels yet.
    pixels = width * height
    size = f"{width}x{height}"
    if pixels > config.max_pixels:
        raise RejectedImage(
            Reason.DECOMPRESSION_BOMB,
            f"image is {size} = {_pixels(pixels)}, above the {_pixels(config.max_pixels)} cap;"
            " it is a decompression bomb or needs downscaling before upload",
        )
    if max(width, height) > config.max_side:
        raise RejectedImage(
            Reason.TOO_LARGE,
            f"image is {size} px, its longest side is above the {config.max_side} px limit; "
            "downscale it before upload",
        )
    if min(width, height) < config.min_side:
        raise RejectedImage(
            Reason.TOO_SMALL,
            f"image is {size} px, its shortest side is below the {config.min_side} px "
            "minimum needed for labelling; upload a larger version",
        )


def _stored_size(img: Image.Image) -> tuple[int, int]:
    """The size as stored in the file, before orientation.

    Pillow reports a TIFF's size already turned by its orientation tag (its loader turns the
    pixels); the record keeps the stored size, as it does for every other format.
    """
    tags = getattr(img, "tag_v2", None)
    if tags is not None:
        width, height = tags.get(256), tags.get(257)  # ImageWidth, ImageLength
        if isinstance(width, int) and isinstance(height, int):
            return width, height
    return img.width, img.height


def _frame_count(img: Image.Image) -> int:
    try:
        return max(1, int(getattr(img, "n_frames", 1)))
    except Image.DecompressionBombError:
        raise
    except Exception as exc:  # a broken later frame: the first frame is still usable
        logger.debug("frame count unreadable: %r", exc)
        return 1


def _pixels(count: int) -> str:
    if count >= 1_000_000_000:
        return f"{count / 1e9:.1f}".removesuffix(".0") + " GP"
    return f"{count / 1e6:.1f}".removesuffix(".0") + " MP"


def _bytes(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f}".removesuffix(".0") + f" {unit}"
        size /= 1024
    return f"{size:.1f}".removesuffix(".0") + " GiB"
