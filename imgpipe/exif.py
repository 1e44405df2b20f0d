"""Descriptive metadata of an image: EXIF fields, the XMP creator, and creator precedence.

Everything here degrades instead of failing: metadata comes from cameras, editors and
hostile uploads alike, and a broken tag must never cost the image its place in the
collection. Values that cannot be read become ``None``.
"""

from __future__ import annotations

import logging
import math
import numbers
import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from PIL import Image, PngImagePlugin

from imgpipe.records import INGEST_PREFIX, Exif, Gps

logger = logging.getLogger(__name__)

# EXIF tag numbers (EXIF 2.32 / TIFF 6.0).
_MAKE, _MODEL, _ORIENTATION, _ARTIST = 0x010F, 0x0110, 0x0112, 0x013B
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATETIME_ORIGINAL, _DATETIME_DIGITIZED = 0x9003, 0x9004
_GPS_LAT_REF, _GPS_LAT, _GPS_LON_REF, _GPS_LON, _GPS_ALT_REF, _GPS_ALT = 1, 2, 3, 4, 5, 6

_EXIF_DATETIME = re.compile(r"^(\d{4})[:\-/](\d{2})[:\-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")

# XMP: the packet is located by a plain byte search, so bound what is handed to the parser.
_XMP_START, _XMP_END = b"<x:xmpmeta", b"</x:xmpmeta>"
_XMP_MAX_PACKET = 1024 * 1024
_XMP_MAX_PACKETS = 4
_DC = "{http://purl.org/dc/elements/1.1/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


def clean_text(value: object) -> str | None:
    """Normalise a metadata string: decode, drop NUL padding and control characters, trim.

    Args:
        value: A ``str``, ``bytes`` or any other tag value (converted with ``str``).

    Returns:
        The cleaned text, or ``None`` when nothing meaningful is left.
    """
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        text = _decode_leniently(bytes(value))
    else:
        text = _repair_utf8_read_as_latin1(value if isinstance(value, str) else str(value))
    # EXIF strings are NUL-terminated inside fixed-size fields: the first non-empty
    # NUL-separated part is the value, the rest is padding or left-over garbage.
    for part in text.split("\0"):
        part = "".join(" " if unicodedata.category(c) == "Cc" else c for c in part).strip()
        if part:
            return part
    return None


def _decode_leniently(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _repair_utf8_read_as_latin1(text: str) -> str:
    """Undo Pillow's latin-1 decoding of ASCII tags when the bytes were really UTF-8."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def read_exif(img: Image.Image) -> tuple[Exif, int]:
    """Read camera, capture time, GPS and artist from an opened (not decoded) image.

    Each sub-directory is read on its own, so a broken GPS block does not lose the camera.

    Args:
        img: An image from ``PIL.Image.open``; its pixels are not loaded.

    Returns:
        The EXIF fields and the orientation (1-8; 1 when absent or invalid).
    """
    exif = _exif_of(img)
    if exif is None:
        return Exif(), 1
    base = _safe_tags(lambda: dict(exif.items()))
    details = _safe_tags(lambda: dict(exif.get_ifd(_EXIF_IFD).items()))
    gps = _safe_tags(lambda: dict(exif.get_ifd(_GPS_IFD).items()))
    taken = parse_exif_datetime(details.get(_DATETIME_ORIGINAL)) or parse_exif_datetime(
        details.get(_DATETIME_DIGITIZED)
    )
    fields = Exif(
        make=clean_text(base.get(_MAKE)),
        model=clean_text(base.get(_MODEL)),
        datetime_original=taken,
        gps=parse_gps(gps),
        artist=clean_text(base.get(_ARTIST)),
    )
    return fields, _orientation(base.get(_ORIENTATION))


def _exif_of(img: Image.Image) -> Image.Exif | None:
    # Pillow's PNG plugin decodes every pixel looking for an eXIf chunk after IDAT when
    # none came before it; inspection promises not to decode, so such EXIF is skipped.
    if isinstance(img, PngImagePlugin.PngImageFile) and "exif" not in img.info:
        return None
    try:
        return img.getexif()
    except Exception as exc:  # hostile EXIF can raise anything from Pillow's parser
        logger.debug("unreadable EXIF block: %r", exc)
        return None


def _safe_tags(read: Callable[[], dict[int, Any]]) -> dict[int, Any]:
    try:
        tags = read()
    except Exception as exc:  # broken offsets or counts in one IFD: keep the others
        logger.debug("unreadable EXIF directory: %r", exc)
        return {}
    return tags if isinstance(tags, dict) else {}


def _orientation(value: object) -> int:
    # Anything but an integer 1..8 means "display as stored".
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def parse_exif_datetime(value: object) -> str | None:
    """``"YYYY:MM:DD HH:MM:SS"`` as ISO ``"YYYY-MM-DDTHH:MM:SS"``; ``None`` if not a real date."""
    text = clean_text(value)
    match = _EXIF_DATETIME.match(text) if text else None
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00" and friends, written by unset camera clocks
        return None
    return moment.isoformat()


def parse_gps(tags: dict[int, Any]) -> Gps | None:
    """Signed decimal degrees from a GPS IFD, or ``None`` if latitude or longitude is unusable."""
    latitude = _degrees(tags.get(_GPS_LAT), tags.get(_GPS_LAT_REF), negative="S", limit=90.0)
    longitude = _degrees(tags.get(_GPS_LON), tags.get(_GPS_LON_REF), negative="W", limit=180.0)
    if latitude is None or longitude is None:
        return None
    altitude = _number(tags.get(_GPS_ALT))
    if altitude is not None and _ref_byte(tags.get(_GPS_ALT_REF)) == 1:
        altitude = -altitude  # AltitudeRef 1 means below sea level
    return Gps(latitude=latitude, longitude=longitude, altitude=altitude)


def _degrees(value: object, ref: object, *, negative: str, limit: float) -> float | None:
    parts = value if isinstance(value, tuple | list) else (value,)
    numbers = [_number(part) for part in parts[:3]]
    if not numbers or any(n is None for n in numbers):
        return None
    degrees = sum(n / 60**i for i, n in enumerate(numbers) if n is not None)
    if clean_text(ref) in (negative, negative.lower()):
        degrees = -degrees
    return degrees if abs(degrees) <= limit else None


def _number(value: object) -> float | None:
    """A finite float from a rational, int or float; zero denominators give ``None``."""
    if not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _ref_byte(value: object) -> int | None:
    if isinstance(value, bytes | bytearray):
        return value[0] if value else None
    return value if isinstance(value, int) else None


def read_xmp_creator(data: bytes) -> str | None:
    """The first ``dc:creator`` of the image's XMP packet, found by scanning the bytes.

    Works for any container that stores XMP uncompressed (JPEG APP1, PNG iTXt, TIFF, WebP,
    HEIF). Each candidate packet is bounded in size and parsed with defusedxml.
    """
    start = data.find(_XMP_START)
    for _ in range(_XMP_MAX_PACKETS):
        if start < 0:
            return None
        end = data.find(_XMP_END, start, start + _XMP_MAX_PACKET)
        if end < 0:
            return None
        creator = _creator_from_packet(data[start : end + len(_XMP_END)])
        if creator:
            return creator
        start = data.find(_XMP_START, end)
    return None


def _creator_from_packet(packet: bytes) -> str | None:
    try:
        root = fromstring(packet)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        logger.debug("unparseable XMP packet: %r", exc)
        return None
    for element in root.iter(f"{_DC}creator"):
        found = _first_text(li.text for li in element.iter(f"{_RDF}li")) or clean_text(element.text)
        if found:
            return found
    # The attribute form (<rdf:Description dc:creator="...">) is legal for simple values.
    return _first_text(d.get(f"{_DC}creator") for d in root.iter(f"{_RDF}Description"))


def _first_text(values: Iterable[str | None]) -> str | None:
    for value in values:
        text = clean_text(value)
        if text:
            return text
    return None


def resolve_creator(
    metadata_creator: str | None,
    exif_artist: str | None,
    xmp_creator: str | None,
    ingest_key: str,
) -> tuple[str, str]:
    """Choose the creator: the first clean value in the order README's "Processing steps" gives.

    Upload metadata > EXIF Artist > XMP dc:creator > first folder under ``ingest/`` >
    ``"unknown"``.

    Returns:
        ``(creator, creator_source)``, the source being one of ``"metadata"``,
        ``"exif_artist"``, ``"xmp"``, ``"folder"`` or ``"unknown"``.
    """
    for value, source in (
        (metadata_creator, "metadata"),
        (exif_artist, "exif_artist"),
        (xmp_creator, "xmp"),
        (_creator_folder(ingest_key), "folder"),
    ):
        creator = clean_text(value)
        if creator:
            return creator, source
    return "unknown", "unknown"


def _creator_folder(ingest_key: str) -> str | None:
    relative = ingest_key.removeprefix(INGEST_PREFIX)
    folder, separator, _ = relative.partition("/")
    return folder if separator else None
