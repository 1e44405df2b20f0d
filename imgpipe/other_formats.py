"""Image formats the pipeline does not read, recognised so that quarantine can name them.

A TGA, a PPM or an icon is an image: quarantining it as ``not_an_image`` ("it looks like
text") sends its owner looking for the wrong problem. :func:`other_image_format` names the
format from the first bytes of a file (the same few hundred bytes the Lambda has), so the
record says ``unsupported_format`` and which format to convert from.

Formats with a distinctive signature are named from it alone. Formats whose signature is
short or absent (PNM, SGI, PCX, ICO, TGA) must also pass a header check, Pillow's own parser
where it works on a file's first bytes, so that arbitrary binary data is not given a name.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable

from PIL import Image

__all__ = ["other_image_format"]

# Signatures that identify a format by themselves (prefix of the file, format name).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xffO\xffQ", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"8BPS", "Photoshop (PSD)"),
    (b"DDS ", "DDS (DirectDraw Surface)"),
    (b"qoif", "QOI"),
    (b"BLP1", "BLP"),
    (b"BLP2", "BLP"),
    (b"icns", "ICNS (Apple icon)"),
    (b"/* XPM */", "XPM"),
    (b"v/1\x01", "OpenEXR"),
    (b"#?RADIANCE", "Radiance HDR"),
    (b"#?RGBE", "Radiance HDR"),
    (b"farbfeld", "farbfeld"),
    (b"SIMPLE  =", "FITS"),
    (b"II\xbc\x01", "JPEG XR"),
)

# Netpbm: the magic number, then width and height (comments allowed between them).
_PNM = re.compile(rb"\AP([1-6])\s+(?:#[^\n]*\n\s*)*\d+\s+(?:#[^\n]*\n\s*)*\d+\s")
_PNM_NAMES = {b"1": "PBM", b"4": "PBM", b"2": "PGM", b"5": "PGM", b"3": "PPM", b"6": "PPM"}


def other_image_format(head: bytes) -> str | None:
    """The name of an image format the pipeline does not read, or ``None``.

    Args:
        head: The first bytes of the file (512 are enough).
    """
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    pnm = _PNM.match(head)
    if pnm:
        return _PNM_NAMES[pnm.group(1)]
    if head.startswith(b"P7\n") and b"WIDTH" in head:
        return "PAM"
    for check, name in _HEADER_CHECKS:
        if check(head):
            return name
    return None


def _parses_as(plugin: str, head: bytes) -> bool:
    """Whether Pillow's ``plugin`` reads a header with a size from ``head`` (no pixel decoded)."""
    Image.init()
    if plugin not in Image.OPEN:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.OPEN[plugin][0](io.BytesIO(head), "") as img:
                return img.width > 0 and img.height > 0
        except Exception:  # any parse failure just means "not this format"
            return False


def _is_ico(head: bytes, kind: int) -> bool:
    # Reserved 0, type (1 icon, 2 cursor), 1..256 entries whose reserved byte is 0.
    # Pillow's parser needs the whole file (it reads the first entry's image), so not used.
    if len(head) < 22 or head[:4] != b"\x00\x00" + bytes([kind, 0]):
        return False
    count = int.from_bytes(head[4:6], "little")
    entries = [head[6 + 16 * i : 22 + 16 * i] for i in range(min(count, (len(head) - 6) // 16))]
    return 1 <= count <= 256 and all(entry[3] == 0 for entry in entries)


def _is_sgi(head: bytes) -> bool:
    return head[:2] == b"\x01\xda" and _parses_as("SGI", head)


def _is_pcx(head: bytes) -> bool:
    return len(head) >= 128 and head[0] == 0x0A and head[1] in (0, 2, 3, 4, 5) and head[2] == 1


def _is_tga(head: bytes) -> bool:
    # TGA has no signature: a plausible header (colour map type, image type, bit depth) first,
    # which text never has (byte 1 is 0 or 1), then Pillow's parser.
    plausible = (
        len(head) >= 18
        and head[1] in (0, 1)
        and head[2] in (1, 2, 3, 9, 10, 11)
        and head[16] in (1, 8, 15, 16, 24, 32)
    )
    return plausible and _parses_as("TGA", head)


_HEADER_CHECKS: tuple[tuple[Callable[[bytes], bool], str], ...] = (
    (lambda head: _is_ico(head, 1), "ICO (Windows icon)"),
    (lambda head: _is_ico(head, 2), "CUR (Windows cursor)"),
    (_is_sgi, "SGI"),
    (lambda head: _is_pcx(head) and _parses_as("PCX", head), "PCX"),
    (lambda head: head.startswith(b"#define") and _parses_as("XBM", head), "XBM"),
    (_is_tga, "TGA (Targa)"),
)
