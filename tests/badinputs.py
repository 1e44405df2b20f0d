"""A generated suite of hostile and unusual uploads, each with the outcome it must have.

Every case is ``(name, bytes, expected)``: the file name below ``ingest/``, its content and
what ingest must make of it — ``ACCEPTED`` or a quarantine reason code — on both paths: the
local run and the ingest Lambda give every case the same outcome and reason (the Lambda runs
the local ingest's validation; ``tests/aws/test_bad_input_parity.py`` holds them to it).
Cases that need the file system (symlinks, directories named like images) are made by the
tests themselves. All bytes are generated here; nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from imgpipe.records import metadata_key, quarantine_key
from imgpipe.store import Store
from tests.imagefactory import jpeg_bytes, photo_like, png_bytes
from tests.repo import corpus_samples

# Pillow warns as it skips the damaged EXIF of the exif/ cases while decoding them; those files
# are accepted by design, so the tests that ingest them expect exactly these warnings.
BROKEN_EXIF_WARNINGS = pytest.mark.filterwarnings(
    "ignore:Corrupt EXIF data:UserWarning",
    "ignore:Tag data larger than file:UserWarning",
)

ACCEPTED = "accepted"
CORPUS_JPG = corpus_samples() / "jpg"  # $IMGPIPE_TEST_CORPUS, see tests/repo.py


@dataclass(frozen=True)
class BadInput:
    """One generated upload and what must become of it.

    Attributes:
        name: Path below ``ingest/`` (may contain spaces, ``+``, ``%``, quotes, non-ASCII).
        data: The bytes uploaded.
        expected: ``ACCEPTED`` or the quarantine reason code, locally and in the Lambda.
        kind: The bad-input kind this case exercises (for counting in RELIABILITY.md).
    """

    name: str
    data: bytes
    expected: str
    kind: str

    @property
    def key(self) -> str:
        """The object key of the upload."""
        return f"ingest/{self.name}"


def recorded_outcome(store: Store, key: str) -> str:
    """``accepted`` or the quarantine reason recorded for ``key`` (``missing`` if neither)."""
    if store.exists(metadata_key(key)):
        return ACCEPTED
    if store.exists(quarantine_key(key)):
        return str(json.loads(store.get_bytes(quarantine_key(key)))["reason"])
    return "missing"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def bomb_png(side: int = 50_000) -> bytes:
    """A valid 1-bit PNG of ``side`` x ``side`` zero pixels: ~300 KB declaring 2.5 gigapixels.

    The IDAT is a real zlib stream of every (filtered) row, so a decoder that trusts the
    header would allocate gigabytes; it is compressed row by row to stay cheap to make.
    """
    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _flip_bits(data: bytes, start: int, count: int, seed: int) -> bytes:
    """``data`` with one bit flipped in each of ``count`` bytes from ``start`` on (seeded)."""
    rng = np.random.default_rng(seed)
    damaged = bytearray(data)
    for offset in rng.choice(np.arange(start, len(data) - 2), size=count, replace=False):
        damaged[offset] ^= 1 << int(rng.integers(0, 8))
    return bytes(damaged)


def _jpeg_scan_start(data: bytes) -> int:
    """Offset of the first byte of entropy-coded data (after the SOS segment)."""
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


def _exif_jpeg(tiff: bytes) -> bytes:
    """A valid JPEG whose APP1 EXIF segment holds the given (possibly hostile) TIFF bytes."""
    base = jpeg_bytes(photo_like(160, 120, 31))
    app1 = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return base[:2] + segment + base[2:]


def truncation_cases() -> list[BadInput]:
    """JPEG and PNG cut at several points: in the header, in the pixel data, at the end."""
    jpeg = jpeg_bytes(photo_like(640, 480, 11))
    png = png_bytes(photo_like(320, 240, 12))
    scan = _jpeg_scan_start(jpeg)
    cases = [
        BadInput("cut/jpeg-at-4.jpg", jpeg[:4], "truncated", "truncated JPEG header"),
        BadInput("cut/jpeg-at-100.jpg", jpeg[:100], "truncated", "truncated JPEG header"),
        BadInput(
            "cut/jpeg-before-scan.jpg", jpeg[: scan - 1], "truncated", "truncated JPEG header"
        ),
        BadInput("cut/png-at-8.png", png[:8], "truncated", "truncated PNG header"),
        BadInput("cut/png-at-20.png", png[:20], "truncated", "truncated PNG header"),
    ]
    for fraction in (0.25, 0.5, 0.9):
        # Past the header: only a decode notices (Rekognition labels a cut JPEG regardless).
        cut = int(len(jpeg) * fraction)
        cases.append(
            BadInput(
                f"cut/jpeg-{int(fraction * 100)}pct.jpg",
                jpeg[:cut],
                "truncated",
                "truncated JPEG pixel data",
            )
        )
        cut = int(len(png) * fraction)
        cases.append(
            BadInput(
                f"cut/png-{int(fraction * 100)}pct.png",
                png[:cut],
                "truncated",
                "truncated PNG pixel data",
            )
        )
    # Every scan whole, only the end-of-image marker missing: still an interrupted upload.
    cases.append(
        BadInput("cut/jpeg-no-eoi.jpg", jpeg[:-2], "truncated", "truncated JPEG pixel data")
    )
    return cases


def content_cases() -> list[BadInput]:
    """Empty files, non-images named like images, damaged and oversized headers."""
    jpeg = jpeg_bytes(photo_like(640, 480, 13))
    png = png_bytes(photo_like(200, 150, 14))
    bad_sof = bytearray(jpeg)
    sof = jpeg.index(b"\xff\xc0")
    bad_sof[sof + 5 : sof + 9] = b"\x00\x00\x00\x00"  # height and width 0
    return [
        BadInput("empty.jpg", b"", "empty_file", "zero-byte file"),
        BadInput("notes.jpg", b"shopping list:\n- milk\n- eggs\n", "not_an_image", "text as .jpg"),
        BadInput(
            "page.jpg",
            b"<!DOCTYPE html><html><body><h1>404</h1></body></html>",
            "not_an_image",
            "HTML as .jpg",
        ),
        BadInput(
            "invoice.jpg",
            b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
            "not_an_image",
            "PDF as .jpg",
        ),
        BadInput(
            "random.png",
            bytes(np.random.default_rng(15).integers(0, 256, 4096, dtype=np.uint8)),
            "not_an_image",
            "random bytes as .png",
        ),
        BadInput("flipped/jpeg-zero-size.jpg", bytes(bad_sof), "undecodable", "bit-flipped header"),
        BadInput(
            "flipped/png-bad-crc.png",
            png[:16] + bytes([png[16] ^ 0x40]) + png[17:],
            "undecodable",
            "bit-flipped header",
        ),
        BadInput(
            # JPEG's entropy coding resynchronises: a few flipped bits give a damaged but
            # decodable picture, which is accepted (the pixels are not ours to judge).
            "flipped/jpeg-scan-bits.jpg",
            _flip_bits(jpeg, _jpeg_scan_start(jpeg) + 64, 8, seed=16),
            ACCEPTED,
            "bit-flipped pixel data",
        ),
        BadInput("bomb.png", bomb_png(), "decompression_bomb", "decompression bomb 50k x 50k"),
        BadInput("tiny.png", png_bytes(photo_like(40, 60, 17)), "too_small", "under 80 px"),
        BadInput("sliver.jpg", jpeg_bytes(photo_like(2000, 79, 18)), "too_small", "under 80 px"),
        BadInput(
            "panorama.png",
            _save(Image.new("L", (12_000, 100), 128), "PNG"),
            "too_large",
            "over 10,000 px",
        ),
    ]


def mode_and_container_cases() -> list[BadInput]:
    """Unusual but valid images: CMYK, 16-bit, palette, animation, pages, HEIC, odd EXIF."""
    rgb = photo_like(240, 180, 21)
    frames = [photo_like(200, 150, seed).convert("P") for seed in (22, 23, 24)]
    gif = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    pages = [photo_like(300, 200, 25), photo_like(300, 200, 26)]
    tiff = _save(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    deep = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    # IFD0 at an offset far past the end, and an IFD claiming 65,535 entries.
    far_ifd = b"II*\x00" + struct.pack("<I", 0x7FFF_FFF0)
    huge_count = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0xFFFF) + b"\x00" * 24
    bad_value = (
        b"II*\x00"
        + struct.pack("<I", 8)
        + struct.pack("<H", 1)
        # Make (ASCII) with 1,000,000 characters stored at an offset past the end.
        + struct.pack("<HHII", 0x010F, 2, 1_000_000, 0x0FFF_FFFF)
        + struct.pack("<I", 0)
    )
    cases = [
        BadInput("modes/cmyk.jpg", _save(rgb.convert("CMYK"), "JPEG"), ACCEPTED, "CMYK JPEG"),
        BadInput("modes/gray16.png", _save(deep, "PNG"), ACCEPTED, "16-bit PNG"),
        BadInput("modes/palette.png", _save(rgb.convert("P"), "PNG"), ACCEPTED, "palette PNG"),
        BadInput("modes/animated.gif", gif, ACCEPTED, "animated GIF"),
        BadInput("modes/pages.tiff", tiff, ACCEPTED, "multi-page TIFF"),
        BadInput("exif/ifd-offset-past-end.jpg", _exif_jpeg(far_ifd), ACCEPTED, "broken EXIF"),
        BadInput("exif/ifd-65535-entries.jpg", _exif_jpeg(huge_count), ACCEPTED, "broken EXIF"),
        BadInput("exif/value-past-end.jpg", _exif_jpeg(bad_value), ACCEPTED, "broken EXIF"),
    ]
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        cases.append(BadInput("modes/photo.heic", _save(rgb, "HEIF"), ACCEPTED, "HEIC"))
    except ImportError:  # without pillow-heif the HEIC case is simply not generated
        pass
    return cases


# Names a user can give a file; every one must round-trip through S3 event encoding.
SPECIAL_NAMES = (
    "names/a photo.jpg",
    "names/one+two.jpg",
    "names/100%.jpg",
    "names/50%25 off.jpg",
    'names/it\'s "quoted".jpg',
    "names/line\nbreak.jpg",
    "names/Zoë Ångström 写真.jpg",
    "names/emoji 📷.jpg",
)


def name_cases() -> list[BadInput]:
    """Valid photos under names with spaces, ``+``, ``%``, quotes, newlines, non-ASCII."""
    return [
        BadInput(name, jpeg_bytes(photo_like(160, 120, 40 + i)), ACCEPTED, "special file name")
        for i, name in enumerate(SPECIAL_NAMES)
    ]


# --- images in formats the pipeline does not read ---------------------------------------------
# They are images, not "text" or "binary data": quarantined as unsupported_format, named.


def unread_format_cases() -> list[BadInput]:
    """Valid images in formats that are not read (TGA, Netpbm, ICO, SGI, DDS, QOI, XPM)."""
    picture = photo_like(160, 120, 50)
    xpm = (
        b'/* XPM */\nstatic char *x[] = {\n"120 90 1 1",\n"a c #FF0000",\n'
        + b",\n".join(b'"' + b"a" * 120 + b'"' for _ in range(90))
        + b"\n};\n"
    )
    kind = "image in an unread format"
    return [
        BadInput("formats/photo.tga", _save(picture, "TGA"), "unsupported_format", kind),
        BadInput("formats/photo.ppm", _save(picture, "PPM"), "unsupported_format", kind),
        BadInput(
            "formats/photo.pgm", _save(picture.convert("L"), "PPM"), "unsupported_format", kind
        ),
        BadInput(
            "formats/photo.pbm", _save(picture.convert("1"), "PPM"), "unsupported_format", kind
        ),
        BadInput("formats/icon.ico", _save(picture, "ICO"), "unsupported_format", kind),
        BadInput("formats/photo.sgi", _save(picture, "SGI"), "unsupported_format", kind),
        BadInput("formats/texture.dds", _save(picture, "DDS"), "unsupported_format", kind),
        BadInput("formats/photo.qoi", _save(picture, "QOI"), "unsupported_format", kind),
        BadInput("formats/icon.xpm", xpm, "unsupported_format", kind),
    ]


def generated_cases() -> list[BadInput]:
    """The whole generated suite (content, truncation, modes and containers, names, formats)."""
    return [
        *content_cases(),
        *truncation_cases(),
        *mode_and_container_cases(),
        *name_cases(),
        *unread_format_cases(),
    ]


# The real broken files of the corpus and what each must become. The expectations come from
# `file` (the SOF dimensions) and a full Pillow decode, not from the pipeline: five "invalid"
# files are under 80 px on a side; the other two and corrupted.jpg decode completely (their
# damage is in metadata); jpg/tests are exifread's regression files for hostile EXIF around
# whole pictures, so they are accepted with whatever EXIF can be read.
CORPUS_EXPECTED: dict[str, str] = {
    "corrupted.jpg": ACCEPTED,
    "invalid/image00971.jpg": ACCEPTED,  # 636x227
    "invalid/image01088.jpg": ACCEPTED,  # 425x120
    "invalid/image01137.jpg": "too_small",  # 88x64
    "invalid/image01551.jpg": "too_small",  # 61x58
    "invalid/image01713.jpg": "too_small",  # 49x500
    "invalid/image01980.jpg": "too_small",  # 284x25
    "invalid/image02206.jpg": "too_small",  # 65x65
    **{
        f"tests/{name}": ACCEPTED
        for name in (
            "11-tests.jpg",
            "22-canon_tags.jpg",
            "28-hex_value.jpg",
            "30-type_error.jpg",
            "32-lens_data.jpeg",
            "33-type_error.jpg",
            "35-empty.jpg",
            "36-memory_error.jpg",
            "42_IndexError.jpg",
            "45-gps_ifd.jpg",
            "67-0_length_string.jpg",
            "87_OSError.jpg",
        )
    },
}


def corpus_cases(expected: dict[str, str] | None = None) -> list[BadInput]:
    """The corpus's broken files as cases (empty when the corpus is not found)."""
    table = CORPUS_EXPECTED if expected is None else expected
    cases = []
    for relative, outcome in sorted(table.items()):
        path = CORPUS_JPG / relative
        if path.is_file():
            cases.append(
                BadInput(f"corpus/{relative}", path.read_bytes(), outcome, "real broken file")
            )
    return cases


def kinds(cases: list[BadInput]) -> list[str]:
    """The distinct bad-input kinds the cases cover, sorted."""
    return sorted({case.kind for case in cases})
