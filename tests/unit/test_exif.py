"""Tests for imgpipe.exif: text cleaning, EXIF fields, the XMP creator and creator precedence."""

from __future__ import annotations

import io
import struct
import time

import pytest
from PIL import Image, PngImagePlugin

from imgpipe.exif import clean_text, read_exif, read_xmp_creator, resolve_creator
from imgpipe.records import Exif

GPS_IFD, EXIF_IFD = 0x8825, 0x8769
MAKE, MODEL, ARTIST, ORIENTATION = 0x010F, 0x0110, 0x013B, 0x0112
DATETIME_ORIGINAL = 0x9003

# A bound against hangs (entity expansion, runaway loops), not a speed test: this
# machine is shared and noisy, so it is generous.
HANG_BOUND_SECONDS = 5.0


def jpeg_with(tags: Image.Exif) -> Image.Image:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(buffer, "JPEG", exif=tags)
    return Image.open(io.BytesIO(buffer.getvalue()))


def xmp_packet(creator_xml: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"{creator_xml}</rdf:Description></rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def jpeg_with_xmp(packet: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + packet
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + app1 + jpeg[2:]


# --- clean_text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Canon  ", "Canon"),
        ("Canon\x00\x00\x00\x00", "Canon"),
        ("Ilya Kurikhin                       ", "Ilya Kurikhin"),
        ("E-P3\x00garbage after the terminator", "E-P3"),
        (b"NIKON CORPORATION\x00\x00", "NIKON CORPORATION"),
        ("Ann\tLee\r\n", "Ann Lee"),
        (42, "42"),
    ],
)
def test_clean_text_trims_and_drops_nul_padding(raw: object, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "\x00" * 32, b"\x00\x00", b"  \x00"])
def test_clean_text_of_empty_or_padding_only_is_none(raw: object) -> None:
    assert clean_text(raw) is None


def test_clean_text_decodes_utf8_bytes_and_falls_back_to_latin1() -> None:
    assert clean_text("Crémieux".encode()) == "Crémieux"
    assert clean_text("Crémieux".encode("latin-1")) == "Crémieux"


def test_clean_text_repairs_utf8_that_was_decoded_as_latin1() -> None:
    # Pillow decodes EXIF ASCII tags as latin-1; phones write UTF-8 there anyway.
    assert clean_text("Crémieux".encode().decode("latin-1")) == "Crémieux"
    assert clean_text("Müller") == "Müller"  # genuine latin-1 text is left alone


# --- read_exif ------------------------------------------------------------------------------


def test_read_exif_gives_trimmed_camera_date_and_artist() -> None:
    tags = Image.Exif()
    tags[MAKE], tags[MODEL] = "Canon\x00\x00\x00", "  Canon EOS 40D "
    tags[ARTIST] = b"Ann Lee" + b"\x00" * 24  # fixed-size field, NUL padded
    tags[ORIENTATION] = 6
    tags.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = "2008:05:30 15:56:01"
    fields, orientation = read_exif(jpeg_with(tags))
    assert fields == Exif(
        make="Canon",
        model="Canon EOS 40D",
        datetime_original="2008-05-30T15:56:01",
        gps=None,
        artist="Ann Lee",
    )
    assert orientation == 6


def test_read_exif_keeps_a_non_ascii_artist_written_as_utf8() -> None:
    tags = Image.Exif()
    tags[ARTIST] = "Jean Crémieux".encode()  # bytes are written as-is
    assert read_exif(jpeg_with(tags))[0].artist == "Jean Crémieux"


@pytest.mark.parametrize(
    "stamp", ["0000:00:00 00:00:00", "    :  :     :  :  ", "2008:13:01 10:00:00", "yesterday"]
)
def test_invalid_exif_dates_become_none(stamp: str) -> None:
    tags = Image.Exif()
    tags.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = stamp
    assert read_exif(jpeg_with(tags))[0].datetime_original is None


def test_image_without_exif_gives_empty_fields_and_orientation_1() -> None:
    assert read_exif(jpeg_with(Image.Exif())) == (Exif(), 1)


def gps_tags(**entries: object) -> Image.Exif:
    tags = Image.Exif()
    gps = tags.get_ifd(GPS_IFD)
    names = {"lat_ref": 1, "lat": 2, "lon_ref": 3, "lon": 4, "alt_ref": 5, "alt": 6}
    for name, value in entries.items():
        gps[names[name]] = value
    return tags


def test_gps_in_the_southern_and_western_hemispheres_is_negative() -> None:
    # 33°52'4.2"S 151°12'36"E is Sydney; 22°54'30"S 43°11'47.4"W is Rio de Janeiro.
    sydney = gps_tags(lat_ref="S", lat=(33.0, 52.0, 4.2), lon_ref="E", lon=(151.0, 12.0, 36.0))
    rio = gps_tags(lat_ref="S", lat=(22.0, 54.0, 30.0), lon_ref="W", lon=(43.0, 11.0, 47.4))
    south_east = read_exif(jpeg_with(sydney))[0].gps
    south_west = read_exif(jpeg_with(rio))[0].gps
    assert south_east is not None and south_west is not None
    assert (south_east.latitude, south_east.longitude) == pytest.approx(
        (-33.867833, 151.21), abs=1e-6
    )
    assert (south_west.latitude, south_west.longitude) == pytest.approx(
        (-22.908333, -43.1965), abs=1e-6
    )
    assert south_east.altitude is None


def test_gps_altitude_below_sea_level_is_negative() -> None:
    tags = gps_tags(lat_ref="N", lat=(31.0, 30.0, 0.0), lon_ref="E", lon=(35.0, 30.0, 0.0))
    tags.get_ifd(GPS_IFD).update({5: b"\x01", 6: 430.5})  # the Dead Sea shore
    gps = read_exif(jpeg_with(tags))[0].gps
    assert gps is not None and gps.altitude == pytest.approx(-430.5)


def test_gps_rational_with_zero_denominator_gives_no_position() -> None:
    tags = gps_tags(lat_ref="N", lat=(48.0, 51.0, 0.0), lon_ref="E", lon=(2.0, 21.0, 0.0))
    data = io.BytesIO()
    jpeg_with(tags).save(data, "JPEG", exif=tags)
    raw = data.getvalue()
    # Pillow cannot write a 0 denominator, so patch the latitude's minutes (51/1) in the bytes.
    minutes = struct.pack(">II", 51, 1) if b"MM\x00*" in raw else struct.pack("<II", 51, 1)
    patched = raw.replace(minutes, minutes[:4] + b"\x00\x00\x00\x00", 1)
    assert patched != raw
    assert read_exif(Image.open(io.BytesIO(raw)))[0].gps is not None
    assert read_exif(Image.open(io.BytesIO(patched)))[0].gps is None


def test_gps_without_longitude_gives_no_position() -> None:
    tags = gps_tags(lat_ref="N", lat=(48.0, 51.0, 0.0))
    assert read_exif(jpeg_with(tags))[0].gps is None


def test_exif_of_png_after_idat_is_skipped_instead_of_decoding_pixels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buffer, "PNG")
    img = Image.open(io.BytesIO(buffer.getvalue()))

    def refuse(self: PngImagePlugin.PngImageFile) -> None:
        raise AssertionError("read_exif decoded the PNG")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", refuse)
    assert read_exif(img) == (Exif(), 1)


def test_exif_chunk_before_idat_in_png_is_read() -> None:
    tags = Image.Exif()
    tags[MAKE] = "Fujifilm"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buffer, "PNG", exif=tags)
    assert read_exif(Image.open(io.BytesIO(buffer.getvalue())))[0].make == "Fujifilm"


# --- read_xmp_creator -----------------------------------------------------------------------


def test_xmp_creator_is_read_from_a_jpeg_app1_packet() -> None:
    packet = xmp_packet("<dc:creator><rdf:Seq><rdf:li> Bo Chen </rdf:li></rdf:Seq></dc:creator>")
    assert read_xmp_creator(jpeg_with_xmp(packet)) == "Bo Chen"


def test_first_of_several_xmp_creators_is_taken() -> None:
    packet = xmp_packet(
        "<dc:creator><rdf:Seq><rdf:li></rdf:li><rdf:li>Ann Lee</rdf:li>"
        "<rdf:li>Bo Chen</rdf:li></rdf:Seq></dc:creator>"
    )
    assert read_xmp_creator(jpeg_with_xmp(packet)) == "Ann Lee"


def test_xmp_creator_in_attribute_form_is_read() -> None:
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Ann Lee"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    assert read_xmp_creator(jpeg_with_xmp(packet)) == "Ann Lee"


def test_xmp_creator_is_found_in_a_png_itxt_chunk() -> None:
    packet = xmp_packet("<dc:creator><rdf:Seq><rdf:li>Zoë Ng</rdf:li></rdf:Seq></dc:creator>")
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet.decode())
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buffer, "PNG", pnginfo=info)
    assert read_xmp_creator(buffer.getvalue()) == "Zoë Ng"


@pytest.mark.parametrize(
    "data",
    [
        b"no packet at all",
        jpeg_with_xmp(
            xmp_packet("<dc:title><rdf:Alt><rdf:li>Sunset</rdf:li></rdf:Alt></dc:title>")
        ),
        jpeg_with_xmp(b"<x:xmpmeta><unclosed></x:xmpmeta>"),
        xmp_packet(
            "<dc:creator><rdf:Seq><rdf:li>Ann Lee</rdf:li></rdf:Seq></dc:creator>"
            + "<!--"
            + "x" * 2_000_000
            + "-->"
        ),
    ],
    ids=["none", "no-creator", "malformed", "oversized"],
)
def test_missing_malformed_or_oversized_xmp_gives_no_creator(data: bytes) -> None:
    assert read_xmp_creator(data) is None


def test_xmp_with_entity_expansion_is_refused_quickly() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(8)
        )
        + b"]>"
    )
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        + laughs
        + b'<dc:creator xmlns:dc="http://purl.org/dc/elements/1.1/">&i;</dc:creator></x:xmpmeta>'
    )
    started = time.perf_counter()
    assert read_xmp_creator(jpeg_with_xmp(packet)) is None
    assert time.perf_counter() - started < HANG_BOUND_SECONDS


# --- resolve_creator ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "artist", "xmp", "key", "expected"),
    [
        ("Meta", "Artist", "Xmp", "ingest/folder/a.jpg", ("Meta", "metadata")),
        (None, "Artist", "Xmp", "ingest/folder/a.jpg", ("Artist", "exif_artist")),
        (None, None, "Xmp", "ingest/folder/a.jpg", ("Xmp", "xmp")),
        (None, None, None, "ingest/alice/x.jpg", ("alice", "folder")),
        (None, None, None, "ingest/alice/2024/x.jpg", ("alice", "folder")),
        (None, None, None, "ingest/x.jpg", ("unknown", "unknown")),
    ],
)
def test_creator_follows_the_design_precedence(
    metadata: str | None, artist: str | None, xmp: str | None, key: str, expected: tuple[str, str]
) -> None:
    assert resolve_creator(metadata, artist, xmp, key) == expected


def test_blank_and_nul_padded_creators_fall_through_to_the_next_source() -> None:
    assert resolve_creator("   ", "\x00\x00\x00", " Bo Chen\x00", "ingest/alice/x.jpg") == (
        "Bo Chen",
        "xmp",
    )


def test_creator_values_are_cleaned() -> None:
    assert resolve_creator("  Ann Lee \x00", None, None, "ingest/x.jpg") == ("Ann Lee", "metadata")
    assert resolve_creator(None, None, None, "ingest/ bob /x.jpg") == ("bob", "folder")
