"""Demo photos: the real photographs that scikit-image ships, written out as image files.

They come from the installed package (no network, nothing third-party committed here), laid
out by creator folder so the demo shows creator contributions. A few derived files show the
rest of the report: an exact copy, a resized near-duplicate and two broken uploads.
"""

from __future__ import annotations

import io
from pathlib import Path

# (skimage.data function, creator folder, file name). Credits: skimage's data/README.
SAMPLE_PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("astronaut", "nasa", "astronaut.jpg"),
    ("rocket", "nasa", "rocket.jpg"),
    ("hubble_deep_field", "nasa", "hubble-deep-field.jpg"),
    ("moon", "nasa", "moon.png"),
    ("chelsea", "stefan", "chelsea-the-cat.jpg"),
    ("coffee", "rachel", "coffee.jpg"),
    ("stereo_motorcycle", "middlebury", "motorcycle.jpg"),
    ("camera", "mit", "cameraman.png"),
    ("immunohistochemistry", "scikit-image", "immunohistochemistry.jpg"),
    ("retina", "scikit-image", "retina.jpg"),
    ("colorwheel", "scikit-image", "colorwheel.png"),
    ("grass", "scikit-image", "grass.png"),
    ("page", "scikit-image", "page.png"),
)


def write_samples(target: Path) -> list[Path]:
    """Write the sample photos (and the derived demo files) under ``target``."""
    try:
        from skimage import data
    except ImportError as exc:
        raise RuntimeError(
            "the demo photos need scikit-image: pip install 'imgpipe[demo]'"
        ) from exc
    from PIL import Image

    written: list[Path] = []

    def save(path: Path, payload: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
        written.append(path)

    def encode(image: Image.Image, fmt: str) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, quality=92)
        return buffer.getvalue()

    for function, creator, name in SAMPLE_PHOTOS:
        pixels = getattr(data, function)()
        if isinstance(pixels, tuple):  # stereo pairs come as (left, right, disparity)
            pixels = pixels[0]
        image = Image.fromarray(pixels)
        fmt = "PNG" if name.endswith(".png") else "JPEG"
        save(target / creator / name, encode(image, fmt))

    cat = (target / "stefan" / "chelsea-the-cat.jpg").read_bytes()
    save(target / "stefan" / "chelsea-copy.jpg", cat)
    smaller = Image.open(io.BytesIO(cat)).reduce(2)
    save(target / "stefan" / "chelsea-small.jpg", encode(smaller, "JPEG"))
    coffee = (target / "rachel" / "coffee.jpg").read_bytes()
    save(target / "uploads" / "coffee-cut-off.jpg", coffee[: len(coffee) // 2])
    save(target / "uploads" / "notes.jpg", b"meeting notes, not a photo\n")
    return written
