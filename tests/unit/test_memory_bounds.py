"""Peak memory stays bounded on a decompression bomb and on a 100-megapixel photo.

Each measurement runs in its own Python process, which reads its peak resident set size once
after importing the library (the baseline) and once after the work. The peak is the kernel's
``VmHWM`` of the process's own address space: Linux carries ``ru_maxrss`` over from the
parent across fork and exec, so in a child of a big pytest process ``ru_maxrss`` reports the
parent's size (576 MB here) and would hide the work. Where ``/proc`` is absent, ``ru_maxrss``
is used. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.badinputs import bomb_png
from tests.repo import REPO_ROOT, run_fresh

MB = 1024 * 1024
# Measured here (Linux x86_64, Python 3.11): a ~60 MB baseline after imports; the bomb peaks
# at ~61 MB and the 100 MP JPEG at ~80 MB (libjpeg decodes it at 1/8 DCT scale). The bounds
# leave 2-3x headroom for other builds yet still fail on a full decode: a 100 MP RGB buffer
# alone is 300 MB, and the bomb's 2.5 gigapixels are 312 MB even at 1 bit per pixel.
BOMB_PEAK_MB = 150
PHOTO_PEAK_MB = 250

# Runs in the child: inspect as ingest does, then decode for a 512 px thumbnail.
_MEASURE = """
import json, resource, sys
from imgpipe.config import PipelineConfig
from imgpipe.imaging import decode, make_thumbnail
from imgpipe.inspect import inspect_image
from imgpipe.records import RejectedImage

def peak():
    try:
        with open("/proc/self/status") as status:  # VmHWM: this address space's peak
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB

data = open(sys.argv[1], "rb").read()
config = PipelineConfig()
baseline = peak()
result = {"baseline": baseline}
for name, step in (
    ("inspect", lambda: inspect_image(data, config)),
    ("decode_capped", lambda: decode(data, 512, max_pixels=config.max_pixels)),
    ("decode_uncapped", lambda: decode(data, 512)),
):
    try:
        out = step()
        if hasattr(out, "rgb"):
            make_thumbnail(out.rgb, 512, 85)
        result[name] = "ok"
    except RejectedImage as rejected:
        result[name] = rejected.reason.value
result["peak"] = peak()
print(json.dumps(result))
"""

_MAKE_100MP = """
import sys
from PIL import Image
# A gradient at 1/10 scale, enlarged: a real 10,000 x 10,000 JPEG with structure to decode.
small = Image.linear_gradient("L").resize((1000, 1000)).convert("RGB")
small.resize((10_000, 10_000), Image.Resampling.BILINEAR).save(sys.argv[1], quality=85)
"""


def measure(path: Path) -> dict[str, object]:
    """Run the measurement on ``path`` in a fresh interpreter; its JSON result."""
    figures: dict[str, object] = run_fresh(_MEASURE, str(path))
    return figures


@pytest.fixture(scope="session")
def photo_100mp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10,000 x 10,000 JPEG, made once per session in a child process (~300 MB there)."""
    path = tmp_path_factory.mktemp("memory") / "100mp.jpg"
    subprocess.run(
        [sys.executable, "-c", _MAKE_100MP, str(path)], check=True, timeout=300, cwd=REPO_ROOT
    )
    return path


def report(name: str, figures: dict[str, object]) -> float:
    """Print the figures and return the peak in MB."""
    peak = int(str(figures["peak"])) / MB
    baseline = int(str(figures["baseline"])) / MB
    print(f"\n{name}: peak RSS {peak:.0f} MB (baseline after imports {baseline:.0f} MB), {figures}")
    return peak


def test_bomb_is_refused_from_its_header_within_150_mb(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(bomb_png())
    figures = measure(bomb)
    # Both the pipeline's cap and, without it, Pillow's own limit refuse before decoding.
    assert figures["inspect"] == "decompression_bomb"
    assert figures["decode_capped"] == "decompression_bomb"
    assert figures["decode_uncapped"] == "decompression_bomb"
    assert report("50,000 x 50,000 PNG bomb", figures) < BOMB_PEAK_MB


def test_100_megapixel_jpeg_is_thumbnailed_within_250_mb(photo_100mp: Path) -> None:
    figures = measure(photo_100mp)
    assert figures["inspect"] == figures["decode_capped"] == "ok"
    assert report("10,000 x 10,000 JPEG", figures) < PHOTO_PEAK_MB
