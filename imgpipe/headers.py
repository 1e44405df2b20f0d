"""Header walkers: does a file end before its header does?

Consulted only after a header parse failed, to tell an interrupted upload (``truncated``:
upload it again) from a complete but corrupt header (``undecodable``: re-export it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal


def header_cut_off(fmt: str, data: bytes) -> bool:
    """True when ``data`` (a ``fmt`` file) ends before its header does."""
    return _HEADER_CUT_OFF[fmt](data)


def _jpeg_cut_off(data: bytes) -> bool:
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            return False
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos + 3 > len(data):
            return True
        marker, length = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
        if marker == 0xD9:
            return False
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a segment
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the decoder has every header segment
            return pos + 1 + length > len(data)
        if length < 2:
            return False
        pos += 1 + length
    return True


def _png_cut_off(data: bytes) -> bool:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if length >= 2**31 or not kind.isalpha() or kind == b"IDAT":
            return False
        pos += 12 + length
    return True


def _gif_cut_off(data: bytes) -> bool:
    if len(data) < 13:
        return True
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)  # global colour table
    while pos < len(data):
        if data[pos] == 0x2C:  # image descriptor, local colour table, LZW code size
            if pos + 10 > len(data):
                return True
            flags = data[pos + 9]
            return pos + 11 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) > len(data)
        if data[pos] != 0x21:  # only extensions may come before it
            return False
        pos += 2
        while pos < len(data) and data[pos]:  # extension sub-blocks
            pos += data[pos] + 1
        pos += 1
    return True


def _bmp_cut_off(data: bytes) -> bool:
    return len(data) < 18 or len(data) < 14 + min(int.from_bytes(data[14:18], "little"), 124)


def _webp_cut_off(data: bytes) -> bool:
    # libwebp needs the whole RIFF container before it reports anything.
    return len(data) < 30 or len(data) < 8 + int.from_bytes(data[4:8], "little")


_TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}


def _tiff_cut_off(data: bytes) -> bool:
    if data[2:4] in (b"+\x00", b"\x00+"):  # BigTIFF: only its 16-byte header is checked
        return len(data) < 16
    order: Literal["little", "big"] = "little" if data[:2] == b"II" else "big"
    ifd = int.from_bytes(data[4:8], order)
    if len(data) < 8 or ifd + 2 > len(data):
        return True
    count = int.from_bytes(data[ifd : ifd + 2], order)
    if ifd + 2 + 12 * count > len(data):
        return True
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):  # values stored out of line
        kind = int.from_bytes(data[entry + 2 : entry + 4], order)
        size = _TIFF_TYPE_SIZES.get(kind, 0) * int.from_bytes(data[entry + 4 : entry + 8], order)
        if size > 4 and int.from_bytes(data[entry + 8 : entry + 12], order) + size > len(data):
            return True
    return False


def _isobmff_cut_off(data: bytes) -> bool:
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if size == 1:  # a 64-bit size follows the type
            if pos + 16 > len(data):
                return True
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if size < 8:  # 0 means "to the end of the file"; 2..7 is corrupt
            return False
        if pos + size > len(data):
            return True
        if kind == b"meta":  # the HEIF header, which holds the dimensions, is complete
            return False
        pos += size
    return True  # the file ended before its meta box


_HEADER_CUT_OFF: dict[str, Callable[[bytes], bool]] = {
    "JPEG": _jpeg_cut_off,
    "PNG": _png_cut_off,
    "GIF": _gif_cut_off,
    "BMP": _bmp_cut_off,
    "WEBP": _webp_cut_off,
    "TIFF": _tiff_cut_off,
    "HEIF": _isobmff_cut_off,
}
