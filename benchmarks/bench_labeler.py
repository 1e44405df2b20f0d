"""Throughput of the local labeling step, end to end, on 2 cores.

    python benchmarks/bench_labeler.py [--images N] [--cores 2]

Builds N typical photos (the skimage.data photos, cropped, flipped and scaled to 3-12 MP,
encoded as JPEG in memory), then times what the ingest does per batch: decode at reduced
scale with orientation (imgpipe.imaging) and LocalLabeler.label. Prints images/s and a
breakdown (decode, model, people detection), each timed on its own.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

# Run as a script from a checkout: make the repository's imgpipe importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MEGAPIXELS = (3, 5, 8, 12)
ASPECTS = (4 / 3, 3 / 2, 16 / 9, 3 / 4)


def make_photos(count: int, seed: int = 7) -> list[bytes]:
    """JPEG bytes of ``count`` photo-sized variants of the skimage sample photos."""
    from skimage import data

    sources = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    sources.append(data.stereo_motorcycle()[0])
    rng = random.Random(seed)
    unique = []
    for _ in range(min(count, 24)):  # encoding 12 MP is slow; reuse a few dozen variants
        rgb = rng.choice(sources)
        h, w = rgb.shape[:2]
        top, left = rng.randint(0, h // 8), rng.randint(0, w // 8)
        crop = rgb[top : top + h - h // 8, left : left + w - w // 8]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        pixels, aspect = rng.choice(MEGAPIXELS) * 1e6, rng.choice(ASPECTS)
        size = (round((pixels * aspect) ** 0.5), round((pixels / aspect) ** 0.5))
        image = Image.fromarray(np.ascontiguousarray(crop)).resize(size, Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        unique.append(buffer.getvalue())
    return [unique[i % len(unique)] for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[: args.cores])
    os.environ.setdefault("IMGPIPE_TORCH_THREADS", str(args.cores))

    import torch

    from imgpipe.imaging import decode_oriented
    from imgpipe.ingest import LABEL_BATCH, LABEL_INPUT_SIDE
    from imgpipe.labelers import ImageInput
    from imgpipe.labelers.local import SUB_BATCH, LocalLabeler
    from imgpipe.labelers.people import PeopleDetector

    print(f"building {args.images} photos (3-12 MP JPEG)...", flush=True)
    photos = make_photos(args.images)
    mean_mb = sum(len(p) for p in photos) / len(photos) / 1e6
    labeler = LocalLabeler()
    started = time.perf_counter()
    labeler._load()
    load = time.perf_counter() - started
    labeler.label([ImageInput(data=photos[0])] * 4)  # warm-up: first-call allocations

    load_before = os.getloadavg()[0]
    decode = 0.0
    cpu_started = time.process_time()  # all threads of this process
    started = time.perf_counter()
    pixels_all = []
    for start in range(0, len(photos), LABEL_BATCH):
        t0 = time.perf_counter()
        pixels = [decode_oriented(p, LABEL_INPUT_SIDE) for p in photos[start : start + LABEL_BATCH]]
        decode += time.perf_counter() - t0
        labeler.label([ImageInput(rgb=p) for p in pixels])
        pixels_all.extend(pixels)
    total = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    load_after = os.getloadavg()[0]

    # The breakdown runs each part alone on one core, in this thread: CPU cost per image.
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    for start in range(0, len(pixels_all), SUB_BATCH):
        labeler._probabilities(pixels_all[start : start + SUB_BATCH])
    classify = time.perf_counter() - t0
    people = PeopleDetector()
    t0 = time.perf_counter()
    for p in pixels_all:
        people.labels(p)
    detect = time.perf_counter() - t0
    labeler.close()

    n = len(photos)
    print(
        f"cores: {args.cores}  workers: {labeler.workers}  batch: {LABEL_BATCH} "
        f"(sub-batches of {SUB_BATCH})  images: {n} (mean {mean_mb:.1f} MB JPEG)"
    )
    print(f"host load average (1 min) before/after: {load_before:.1f}/{load_after:.1f}")
    print(f"model load: {load:.2f} s (once per labeler)")
    print(
        f"end to end (decode + label): {n / total:.1f} images/s ({1000 * total / n:.1f} ms/image)"
    )
    # On a shared host the wall clock counts other tenants' work; CPU time does not.
    print(
        f"CPU time: {1000 * cpu / n:.1f} core-ms/image -> {args.cores * n / cpu:.1f} images/s "
        f"on {args.cores} idle cores"
    )
    print("breakdown, each part alone on one core, ms/image:")
    print(f"  decode at reduced scale + orientation: {1000 * decode / n:.1f}")
    print(f"  classifier (preprocess + EfficientNet-Lite0): {1000 * classify / n:.1f}")
    print(f"  people detection (Haar face + HOG): {1000 * detect / n:.1f}")


if __name__ == "__main__":
    main()
