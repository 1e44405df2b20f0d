"""Tests for imgpipe.inspect: sniffing, header validation, reason codes and the real corpus."""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from imgpipe import exif as exif_module
from imgpipe import inspect as inspect_module
from imgpipe.config import PipelineConfig
from imgpipe.inspect import Inspection, checksum, inspect_image, resolve_creator, sniff_format
from imgpipe.records import Reason, RejectedImage

DEFAULT = PipelineConfig()
# Most camera samples in the corpus are 100 px thumbnails: read their metadata regardless.
ANY_SIZE = PipelineConfig(min_side=1)

# A bound against hangs (entity expansion, runaway loops), not a speed test: this
# machine is shared and noisy, so it is generous.
HANG_BOUND_SECONDS = 5.0


# --- fixtures built with PIL, struct and zlib ------------------------------------------------


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **params)
    return buffer.getvalue()


def rgb(width: int = 120, height: int = 90) -> Image.Image:
    return Image.new("RGB", (width, height), (40, 160, 90))


def heif_bytes(img: Image.Image) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()  # also registers the HEIF writer used here
    return encode(img, "HEIF")


SAMPLES: dict[str, Callable[[], bytes]] = {
    "JPEG": lambda: encode(rgb(), "JPEG"),
    "PNG": lambda: encode(rgb(), "PNG"),
    "GIF": lambda: encode(rgb(), "GIF"),
    "WEBP": lambda: encode(rgb(), "WEBP"),
    "TIFF": lambda: encode(rgb(), "TIFF"),
    "BMP": lambda: encode(rgb(), "BMP"),
    "HEIF": lambda: heif_bytes(rgb()),
}


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, color_type: int = 2) -> bytes:
    """A tiny PNG whose IHDR (with a valid CRC) declares any size."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def with_jpeg_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def rejection(data: bytes, config: PipelineConfig = DEFAULT) -> RejectedImage:
    with pytest.raises(RejectedImage) as caught:
        inspect_image(data, config)
    return caught.value


# --- sniff_format and checksum --------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_sniff_names_each_supported_format_from_magic_bytes(fmt: str) -> None:
    assert sniff_format(SAMPLES[fmt]()[:64]) == fmt


@pytest.mark.parametrize(
    ("major", "compatible"),
    [(b"heic", b"mif1heic"), (b"mif1", b"heicmiaf"), (b"heix", b""), (b"avif", b"mif1miaf")],
)
def test_sniff_maps_heic_heif_and_avif_brands_to_heif(major: bytes, compatible: bytes) -> None:
    ftyp = b"ftyp" + major + b"\x00\x00\x00\x00" + compatible
    assert sniff_format(struct.pack(">I", len(ftyp) + 4) + ftyp) == "HEIF"


def test_sniff_does_not_take_an_mp4_video_for_heif() -> None:
    ftyp = b"ftypisom\x00\x00\x02\x00isomiso2avc1mp41"
    assert sniff_format(struct.pack(">I", len(ftyp) + 4) + ftyp) is None


@pytest.mark.parametrize(
    "head",
    [
        b"hello, world\n",
        b"<!DOCTYPE html><html>",
        b"%PDF-1.7\n",
        b"BMW drivers wanted for weekend trips\n",
        b"BM",
        b"",
    ],
)
def test_sniff_returns_none_for_bytes_of_no_image_format(head: bytes) -> None:
    assert sniff_format(head) is None


def test_checksum_is_sha256_of_the_bytes() -> None:
    # The published SHA-256 test vector for "abc".
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert checksum(b"abc") == f"sha256:{expected}"
    assert checksum(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()


# --- accepted images ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_small_image_of_each_format_inspects_with_header_dimensions(fmt: str) -> None:
    result = inspect_image(SAMPLES[fmt](), DEFAULT)
    assert (result.format, result.width, result.height) == (fmt, 120, 90)
    assert (result.orientation, result.frames) == (1, 1)


def test_avif_inspects_as_heif() -> None:
    result = inspect_image(encode(rgb(), "AVIF"), DEFAULT)
    assert (result.format, result.width, result.height) == ("HEIF", 120, 90)


def test_format_comes_from_the_bytes_even_when_another_format_is_expected() -> None:
    png_named_jpg = SAMPLES["PNG"]()  # the caller's ".jpg" name never reaches inspection
    assert inspect_image(png_named_jpg, DEFAULT).format == "PNG"


@pytest.mark.parametrize(
    ("make", "mode"),
    [
        (lambda: encode(Image.new("CMYK", (100, 100), (0, 50, 100, 0)), "JPEG"), "CMYK"),
        (lambda: encode(Image.new("I;16", (100, 100), 40000), "PNG"), "I;16"),
        (lambda: encode(rgb().convert("P", palette=Image.Palette.ADAPTIVE), "PNG"), "P"),
    ],
    ids=["cmyk-jpeg", "16-bit-png", "palette-png"],
)
def test_cmyk_16_bit_and_palette_images_are_accepted_with_their_mode(
    make: Callable[[], bytes], mode: str
) -> None:
    assert inspect_image(make(), DEFAULT).mode == mode


def test_animated_gif_is_accepted_with_its_frame_count() -> None:
    frames = [Image.new("RGB", (100, 100), colour) for colour in ("red", "green", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    result = inspect_image(data, DEFAULT)
    assert (result.format, result.frames) == ("GIF", 3)


def test_multi_page_tiff_is_accepted_with_its_page_count() -> None:
    data = encode(rgb(), "TIFF", save_all=True, append_images=[rgb(200, 150)])
    result = inspect_image(data, DEFAULT)
    assert (result.format, result.frames, result.width, result.height) == ("TIFF", 2, 120, 90)


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_inspection_never_decodes_pixels(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = SAMPLES[fmt]()

    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError("inspection decoded pixel data")

    # Plugins override load(); patch every definition on the opened class's way up.
    for cls in type(Image.open(io.BytesIO(data))).__mro__:
        if "load" in vars(cls):
            monkeypatch.setattr(cls, "load", refuse)
    assert inspect_image(data, DEFAULT).width == 120


@pytest.mark.parametrize(("stored", "expected"), [(6, 6), (8, 8), (0, 1), (9, 1), (65535, 1)])
def test_orientation_is_read_and_out_of_range_values_become_1(stored: int, expected: int) -> None:
    tags = Image.Exif()
    tags[0x0112] = stored
    assert inspect_image(encode(rgb(), "JPEG", exif=tags), DEFAULT).orientation == expected


def test_inspection_reports_exif_and_xmp_creator() -> None:
    tags = Image.Exif()
    tags[0x010F], tags[0x0110], tags[0x013B] = "Canon", "Canon EOS 40D", "Ann Lee"
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Description><dc:creator><rdf:Seq>'
        b"<rdf:li>Bo Chen</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF>"
        b"</x:xmpmeta>"
    )
    data = with_jpeg_segment(
        encode(rgb(), "JPEG", exif=tags), 0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet
    )
    result = inspect_image(data, DEFAULT)
    assert (result.exif.make, result.exif.model, result.exif.artist) == (
        "Canon",
        "Canon EOS 40D",
        "Ann Lee",
    )
    assert result.xmp_creator == "Bo Chen"


# --- rejections, one reason at a time -------------------------------------------------------


def test_zero_byte_file_is_empty_file() -> None:
    assert rejection(b"").reason is Reason.EMPTY_FILE


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"Dear Sir, please find the photo attached.\n", "text"),
        (b"<!DOCTYPE html>\n<html><body>404 Not Found</body></html>", "HTML"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
    ],
    ids=["text", "html", "pdf"],
)
def test_text_html_and_pdf_bytes_named_jpg_are_not_an_image(data: bytes, kind: str) -> None:
    error = rejection(data)
    assert error.reason is Reason.NOT_AN_IMAGE
    assert kind in error.message


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00\x00\x14ftypjp2 ", "JPEG 2000"),
        (b"8BPS\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03", "Photoshop"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
    ],
)
def test_other_image_formats_are_unsupported_format(head: bytes, name: str) -> None:
    error = rejection(head)
    assert error.reason is Reason.UNSUPPORTED_FORMAT
    assert name in error.message


def test_heif_without_pillow_heif_is_unsupported_format(monkeypatch: pytest.MonkeyPatch) -> None:
    data = SAMPLES["HEIF"]()
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # makes `import pillow_heif` fail
    monkeypatch.delitem(Image.OPEN, "HEIF", raising=False)
    inspect_module._register_decoders.cache_clear()
    try:
        error = rejection(data)
    finally:
        inspect_module._register_decoders.cache_clear()
    assert error.reason is Reason.UNSUPPORTED_FORMAT
    assert "pillow-heif" in error.message


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_file_cut_inside_its_header_is_truncated(fmt: str) -> None:
    error = rejection(SAMPLES[fmt]()[:24])
    assert error.reason is Reason.TRUNCATED
    assert "24 bytes" in error.message


def test_jpeg_cut_before_its_frame_header_is_truncated() -> None:
    data = SAMPLES["JPEG"]()
    cut = data[: data.index(b"\xff\xc0") + 5]  # inside the SOF segment: no dimensions yet
    assert rejection(cut).reason is Reason.TRUNCATED


def test_png_cut_inside_ihdr_is_truncated() -> None:
    assert rejection(png_declaring(300, 200)[:20]).reason is Reason.TRUNCATED


def test_complete_but_invalid_png_header_is_undecodable() -> None:
    error = rejection(png_declaring(300, 200, color_type=7))  # colour type 7 does not exist
    assert error.reason is Reason.UNDECODABLE


def test_complete_jpeg_header_without_a_frame_header_is_undecodable() -> None:
    data = SAMPLES["JPEG"]()
    sof = data.index(b"\xff\xc0")
    (length,) = struct.unpack(">H", data[sof + 2 : sof + 4])
    assert rejection(data[:sof] + data[sof + 2 + length :]).reason is Reason.UNDECODABLE


def test_png_declaring_50000_squared_is_a_decompression_bomb_rejected_quickly() -> None:
    data = png_declaring(50_000, 50_000)
    inspect_image(SAMPLES["PNG"](), DEFAULT)  # load the plugins before measuring
    tracemalloc.start()
    started = time.perf_counter()
    try:
        error = rejection(data)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert error.reason is Reason.DECOMPRESSION_BOMB
    assert "50000x50000" in error.message and "2.5 GP" in error.message
    assert "120 MP" in error.message
    assert elapsed < HANG_BOUND_SECONDS
    assert peak < 1_000_000  # 2.5 GP of RGB would be 7.5 GB


def test_bomb_cap_comes_from_config_not_from_pillows_global(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # someone switched Pillow's check off
    assert rejection(png_declaring(50_000, 50_000)).reason is Reason.DECOMPRESSION_BOMB
    small_cap = PipelineConfig(min_side=10, max_pixels=10_000)
    error = rejection(SAMPLES["JPEG"](), small_cap)
    assert error.reason is Reason.DECOMPRESSION_BOMB
    assert "120x90" in error.message


def test_pillows_lower_global_limit_does_not_reject_an_image_within_the_config_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    assert inspect_image(SAMPLES["PNG"](), DEFAULT).width == 120


def gif_with_oversized_frame() -> bytes:
    """A 100x100 GIF whose first frame claims 60000x60000 (Pillow grows the canvas to fit)."""
    data = bytearray(encode(Image.new("RGB", (100, 100), "red"), "GIF"))
    descriptor = data.index(b",", 13)
    data[descriptor + 5 : descriptor + 9] = struct.pack("<HH", 60_000, 60_000)
    return bytes(data)


def test_pillows_own_decompression_bomb_error_is_a_decompression_bomb() -> None:
    # Pillow's GIF plugin applies its global limit itself while parsing the frame.
    error = rejection(gif_with_oversized_frame())
    assert error.reason is Reason.DECOMPRESSION_BOMB
    assert "3600000000 pixels" in error.message


def test_oversized_gif_frame_is_a_bomb_even_with_pillows_limit_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    error = rejection(gif_with_oversized_frame())
    assert error.reason is Reason.DECOMPRESSION_BOMB
    assert "60000x60000" in error.message


@pytest.mark.parametrize(("width", "height"), [(79, 200), (200, 79), (10, 10)])
def test_image_with_a_side_below_min_side_is_too_small(width: int, height: int) -> None:
    error = rejection(encode(rgb(width, height), "PNG"))
    assert error.reason is Reason.TOO_SMALL
    assert f"{width}x{height}" in error.message and "80 px" in error.message


def test_image_with_a_side_above_max_side_is_too_large() -> None:
    config = PipelineConfig(min_side=10, max_side=100)
    error = rejection(encode(rgb(120, 90), "PNG"), config)
    assert error.reason is Reason.TOO_LARGE
    assert "120x90" in error.message and "100 px" in error.message


def test_file_above_max_bytes_is_too_large() -> None:
    data = encode(rgb(), "BMP")  # 54-byte header + 120 * 90 * 3 bytes of pixels
    assert len(data) == 32_454
    error = rejection(data, PipelineConfig(max_bytes=16 * 1024))
    assert error.reason is Reason.TOO_LARGE
    assert "31.7 KiB" in error.message and "16 KiB" in error.message


# --- hostile EXIF ---------------------------------------------------------------------------


def tiff_ifd(entries: list[tuple[int, int, int, int]], next_ifd: int = 0) -> bytes:
    """Little-endian TIFF header and one IFD at offset 8 made of raw (tag, type, count, value)."""
    body = b"".join(struct.pack("<HHII", *entry) for entry in entries)
    return b"II*\x00" + struct.pack("<IH", 8, len(entries)) + body + struct.pack("<I", next_ifd)


@pytest.mark.parametrize(
    "entries",
    [
        [(0x010F, 2, 0xFFFF_FFFF, 0x7FFF_FFF0)],  # absurd count, offset past the end
        [(0x8769, 4, 1, 8), (0x8825, 4, 1, 8)],  # sub-IFDs that point back at IFD0
        [(0x8825, 4, 1, 0xFFFF_FF00), (0x0112, 3, 1, 0)],  # GPS IFD beyond the data
        [(0x010F, 2, 6, 0x10), (0x8769, 4, 0x4000_0000, 0x20)],  # wrong type and count
    ],
    ids=["absurd-count", "ifd-loop", "gps-offset", "bad-sub-ifd"],
)
def test_broken_exif_degrades_to_empty_fields_not_rejection(
    entries: list[tuple[int, int, int, int]],
) -> None:
    data = with_jpeg_segment(SAMPLES["JPEG"](), 0xE1, b"Exif\x00\x00" + tiff_ifd(entries, 8))
    started = time.perf_counter()
    result = inspect_image(data, DEFAULT)
    assert time.perf_counter() - started < HANG_BOUND_SECONDS
    assert (result.width, result.orientation, result.exif.gps) == (120, 1, None)


def test_exif_segment_that_is_not_tiff_is_ignored() -> None:
    data = with_jpeg_segment(SAMPLES["JPEG"](), 0xE1, b"Exif\x00\x00not a tiff header at all")
    assert inspect_image(data, DEFAULT).exif.make is None


# --- the real corpus ------------------------------------------------------------------------


def raw_ifd(tiff: bytes, offset: int | None = None) -> dict[int, bytes]:
    """The raw value bytes of each tag of one IFD (independent of Pillow and of imgpipe)."""
    order = "<" if tiff[:2] == b"II" else ">"
    if offset is None:
        (offset,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}
    values = {}
    for start in range(offset + 2, offset + 2 + 12 * count, 12):
        tag, kind, number, inline = struct.unpack(order + "HHI4s", tiff[start : start + 12])
        size = sizes.get(kind, 1) * number
        if size <= 4:
            values[tag] = inline[:size]
        else:
            (pointer,) = struct.unpack(order + "I", inline)
            values[tag] = tiff[pointer : pointer + size]
    return values


def raw_ascii(value: bytes) -> str:
    return value.split(b"\x00")[0].decode("latin-1").strip()


def jpeg_tiff_block(data: bytes) -> bytes:
    return data[data.index(b"Exif\x00\x00") + 6 :]


def test_corpus_hostile_files_inspect_or_reject_quickly(corpus_dir: Path) -> None:
    paths = [
        *sorted((corpus_dir / "jpg" / "tests").iterdir()),
        *sorted((corpus_dir / "jpg" / "invalid").glob("*.jpg")),
        corpus_dir / "jpg" / "corrupted.jpg",
    ]
    assert len(paths) >= 15
    for path in paths:
        data = path.read_bytes()
        started = time.perf_counter()
        # Quarantine is an acceptable outcome; any other exception fails the test.
        with contextlib.suppress(RejectedImage):
            inspect_image(data, DEFAULT)
        assert time.perf_counter() - started < 0.5, path.name


@pytest.mark.parametrize(
    ("name", "make", "model"),
    [
        ("Canon_40D.jpg", "Canon", "Canon EOS 40D"),
        ("Nikon_D70.jpg", "NIKON CORPORATION", "NIKON D70"),
        ("Fujifilm_FinePix_E500.jpg", "FUJIFILM", "FinePix E500"),
        ("tests/36-memory_error.jpg", "CASIO COMPUTER CO.,LTD.", "EX-M2"),
    ],
)
def test_corpus_camera_files_give_their_make_and_model(
    corpus_dir: Path, name: str, make: str, model: str
) -> None:
    data = (corpus_dir / "jpg" / name).read_bytes()
    ifd0 = raw_ifd(jpeg_tiff_block(data))
    # The literals above were read off the raw tags; re-check so a corpus change is loud.
    assert (raw_ascii(ifd0[0x010F]), raw_ascii(ifd0[0x0110])) == (make, model)
    result = inspect_image(data, ANY_SIZE)
    assert (result.exif.make, result.exif.model) == (make, model)


def test_corpus_gps_sample_gives_signed_decimal_degrees(corpus_dir: Path) -> None:
    data = (corpus_dir / "jpg" / "gps" / "DSCN0010.jpg").read_bytes()
    tiff = jpeg_tiff_block(data)
    order = "<" if tiff[:2] == b"II" else ">"
    (gps_offset,) = struct.unpack(order + "I", raw_ifd(tiff)[0x8825])
    gps = raw_ifd(tiff, gps_offset)

    def degrees(raw: bytes, ref: bytes, negative: bytes) -> float:
        n = struct.unpack(order + "6I", raw)
        value = n[0] / n[1] + n[2] / n[3] / 60 + n[4] / n[5] / 3600
        return -value if ref[:1] == negative else value

    latitude = degrees(gps[2], gps[1], b"S")
    longitude = degrees(gps[4], gps[3], b"W")
    assert latitude == pytest.approx(43.4674, abs=1e-3)  # Tuscany, per the sample's README
    assert longitude == pytest.approx(11.8851, abs=1e-3)
    result = inspect_image(data, DEFAULT)
    assert result.exif.gps is not None
    assert result.exif.gps.latitude == pytest.approx(latitude, abs=1e-9)
    assert result.exif.gps.longitude == pytest.approx(longitude, abs=1e-9)


@pytest.mark.parametrize(
    ("name", "creator"),
    [
        ("xmp/no_exif.jpg", "CREDIT"),
        ("xmp/BlueSquare.jpg", None),
        ("tests/33-type_error.jpg", "Pilar Flores"),
    ],
)
def test_corpus_xmp_files_give_the_creator_their_packet_holds(
    corpus_dir: Path, name: str, creator: str | None
) -> None:
    data = (corpus_dir / "jpg" / name).read_bytes()
    packet = data[data.find(b"<x:xmpmeta") : data.find(b"</x:xmpmeta>")]
    assert packet, "the sample should carry an XMP packet"
    if creator is None:
        assert b"<dc:creator" not in packet
    else:
        dc_creator = packet[packet.index(b"<dc:creator") : packet.index(b"</dc:creator>")]
        assert f"<rdf:li>{creator}</rdf:li>".encode() in dc_creator
    assert inspect_image(data, ANY_SIZE).xmp_creator == creator


@pytest.mark.parametrize(
    ("name", "artist"),
    [("Crémieux11.tiff", "Jean Cornillon"), ("DudleyLeavittUtah.tiff", "Russell Leavitt")],
)
def test_corpus_tiff_artist_resolves_as_the_creator(
    corpus_dir: Path, name: str, artist: str
) -> None:
    data = (corpus_dir / "tiff" / name).read_bytes()
    assert raw_ascii(raw_ifd(data)[0x013B]) == artist
    result = inspect_image(data, ANY_SIZE)
    key = f"ingest/scans/{name}"
    assert resolve_creator(None, result.exif.artist, result.xmp_creator, key) == (
        artist,
        "exif_artist",
    )


@pytest.mark.parametrize("orientation", range(1, 9))
def test_corpus_orientation_samples_report_their_orientation(
    corpus_dir: Path, orientation: int
) -> None:
    data = (corpus_dir / "jpg" / "orientation" / f"landscape_{orientation}.jpg").read_bytes()
    assert inspect_image(data, DEFAULT).orientation == orientation


def test_corpus_heic_files_inspect_as_heif_with_their_image_size(corpus_dir: Path) -> None:
    paths = [p for p in sorted((corpus_dir / "heic").rglob("*")) if p.is_file()]
    assert len(paths) >= 3
    for path in paths:
        data = path.read_bytes()
        result: Inspection = inspect_image(data, DEFAULT)
        assert result.format == "HEIF", path.name
        # Every 'ispe' property box states one item's size: the primary image is among them.
        sizes = {struct.unpack(">II", data[i + 8 : i + 16]) for i in iter_find(data, b"ispe")}
        assert {(result.width, result.height), (result.height, result.width)} & sizes, path.name
        assert 400 <= min(result.width, result.height) <= result.width * result.height


def iter_find(data: bytes, needle: bytes) -> list[int]:
    found, start = [], data.find(needle)
    while start >= 0:
        found.append(start)
        start = data.find(needle, start + 1)
    return found


def test_exif_module_is_reexported_from_inspect() -> None:
    # The ingest stage and the Lambda import everything from imgpipe.inspect.
    assert inspect_module.read_exif is exif_module.read_exif
    assert inspect_module.clean_text is exif_module.clean_text
