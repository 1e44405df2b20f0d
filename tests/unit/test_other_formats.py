"""Images in formats the pipeline does not read are ``unsupported_format``, named, not text."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image

from imgpipe.config import PipelineConfig
from imgpipe.inspect import inspect_image
from imgpipe.records import Reason, RejectedImage


def picture(mode: str = "RGB") -> Image.Image:
    """A 120x90 picture with some structure (a gradient and a block), in ``mode``."""
    pixels = np.zeros((90, 120, 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, 120, dtype=np.uint8)
    pixels[20:60, 30:80] = (250, 240, 10)
    return Image.fromarray(pixels).convert(mode)


def saved(fmt: str, mode: str = "RGB", **options: object) -> Callable[[], bytes]:
    def make() -> bytes:
        buffer = io.BytesIO()
        picture(mode).save(buffer, fmt, **options)
        return buffer.getvalue()

    return make


def cursor() -> bytes:
    icon = saved("ICO", sizes=[(32, 32)])()
    return icon[:2] + b"\x02\x00" + icon[4:]  # an ICO file with type 2 is a CUR file


def xpm() -> bytes:
    rows = ",\n".join(f'"{"ab" * 60}"' for _ in range(90))
    return (
        b'/* XPM */\nstatic char *picture[] = {\n"120 90 2 1",\n"a c #FF0000",\n"b c #0000FF",\n'
        + rows.encode()
        + b"\n};\n"
    )


def plain_ppm() -> bytes:
    values = " ".join(["255 0 0"] * (120 * 90))
    return f"P3\n# written by hand\n120 90\n255\n{values}\n".encode()


def pam() -> bytes:
    header = b"P7\nWIDTH 120\nHEIGHT 90\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n"
    return header + picture().tobytes()


# (format name expected in the message, the file's bytes)
CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "tga": ("TGA", saved("TGA")),
    "tga-rle": ("TGA", saved("TGA", compression="tga_rle")),
    "tga-grey": ("TGA", saved("TGA", "L")),
    "ppm": ("PPM", saved("PPM")),
    "ppm-plain": ("PPM", plain_ppm),
    "pgm": ("PGM", saved("PPM", "L")),
    "pbm": ("PBM", saved("PPM", "1")),
    "pam": ("PAM", pam),
    "ico": ("ICO", saved("ICO")),
    "cur": ("CUR", cursor),
    "sgi": ("SGI", saved("SGI")),
    "dds": ("DDS", saved("DDS")),
    "qoi": ("QOI", saved("QOI")),
    "blp": ("BLP", saved("BLP", "P")),
    "xpm": ("XPM", xpm),
    "xbm": ("XBM", saved("XBM", "1")),
    "pcx": ("PCX", saved("PCX")),
    "icns": ("ICNS", saved("ICNS")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_image_in_an_unread_format_is_unsupported_format_naming_it(case: str) -> None:
    name, make = CASES[case]
    data = make()
    with pytest.raises(RejectedImage) as caught:
        inspect_image(data, PipelineConfig())
    assert caught.value.reason is Reason.UNSUPPORTED_FORMAT, caught.value.message
    assert name in caught.value.message
    assert "text" not in caught.value.message


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_format_is_named_from_the_first_bytes_the_lambda_reads(case: str) -> None:
    name, make = CASES[case]
    data = make()
    with pytest.raises(RejectedImage) as caught:
        inspect_image(data[:4096], PipelineConfig(), total_size=len(data) + 4096)
    assert caught.value.reason is Reason.UNSUPPORTED_FORMAT
    assert name in caught.value.message


@pytest.mark.parametrize(
    "data",
    [
        b"P1 is the first point of the agenda.\n",
        b"#define MAX 10\nint main(void) { return 0; }\n",
        bytes(np.random.default_rng(7).integers(0, 256, 600, dtype=np.uint8)),
        b"\x00" * 600,
    ],
    ids=["text-starting-P1", "c-source", "random-bytes", "zeros"],
)
def test_text_and_random_bytes_get_no_image_format_name(data: bytes) -> None:
    with pytest.raises(RejectedImage) as caught:
        inspect_image(data, PipelineConfig())
    assert caught.value.reason is Reason.NOT_AN_IMAGE
