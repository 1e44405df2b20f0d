"""Throughput of the process stage on 12 MP photos: seed baseline, kernel, Spark, on 2 cores.

    python benchmarks/bench_process.py [--images N] [--repeat R] [--scale] [--scale-max N]

Builds N 12 MP JPEGs (q90, EXIF orientation 6 on every third) from upscaled crops of the large
photos in $IMGPIPE_TEST_CORPUS/exif-samples/jpg/{mobile,hdr,tests} (default ../shared/corpus),
or synthetic photo-like images when the corpus is absent, then measures in one run, each on 2
processes:

- seed: PIL full decode -> exif_transpose -> LANCZOS thumbnail 512 -> JPEG save;
- floor: PIL draft to 1/8 + load (entropy decode alone, no resize, no encode);
- kernel: ``imgpipe.imaging.process_image`` (thumbnail + features);
- spark: ``imgpipe.process.stage.run_process`` through ``local_session(cores="2")``, JVM warm,
  timing run_process only (records read, decode, thumbnails written, both tables written);

then the ratios and the peak RSS of the Spark process tree (driver JVM + Python workers).
``--scale`` also times the process stage on 1,000 and 10,000 (``--scale-max``) 640 px images.
Other sessions may load the machine: the load average is printed, and the best of R runs kept.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

# Run as a script from a checkout: make the repository's packages importable.
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from imgpipe.config import PipelineConfig  # noqa: E402
from imgpipe.imaging import process_image  # noqa: E402

# The folder holding exif-samples/, as for the tests (tests/repo.py): relative to the repository.
CORPUS_ROOT = REPO / os.path.expanduser(os.environ.get("IMGPIPE_TEST_CORPUS") or "../shared/corpus")
CORPUS = CORPUS_ROOT.resolve() / "exif-samples" / "jpg"
PHOTO_SIZE = (4000, 3000)  # 12 MP
SMALL_SIZE = (640, 480)
CORES = 2
CONFIG = PipelineConfig()


# --- corpus -------------------------------------------------------------------------------


def _sources(rng: random.Random) -> list[Image.Image]:
    paths = [p for d in ("mobile", "hdr", "tests") for p in sorted((CORPUS / d).glob("*.jp*g"))]
    sources = []
    for path in paths:
        try:
            with Image.open(path) as image:
                if max(image.size) >= 1500:
                    sources.append(ImageOps.exif_transpose(image).convert("RGB"))
        except OSError:
            continue
    if sources:
        return sources
    # Photo-like stand-ins: smooth gradients, shapes and sensor noise (JPEG cost tracks detail).
    synthetic = []
    for _ in range(6):
        y, x = np.mgrid[0:1500, 0:2000].astype(np.float32)
        base = np.stack([x / 8, y / 6, (x + y) / 14], axis=-1) % 256
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 12, base.shape)
        picture = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
        synthetic.append(picture.filter(ImageFilter.GaussianBlur(1)))
    return synthetic


def _unique(data: bytes, index: int) -> bytes:
    # A JPEG comment after SOI makes every file's checksum distinct for the price of one encode.
    comment = f"imgpipe-bench {index}".encode()
    return data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]


class Corpus(Sequence[bytes]):
    """``count`` distinct JPEGs made on demand from a few encoded variants (memory stays small)."""

    def __init__(self, variants: list[bytes], count: int) -> None:
        self._variants, self._count = variants, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> bytes:  # type: ignore[override]
        if not 0 <= index < self._count:
            raise IndexError(index)
        return _unique(self._variants[index % len(self._variants)], index)


def make_corpus(count: int, size: tuple[int, int], seed: int = 7) -> Corpus:
    """``count`` distinct JPEGs of ``size`` (q90), every third tagged EXIF orientation 6."""
    rng = random.Random(seed)
    sources = _sources(rng)
    variants = []
    for index in range(min(count, 12)):  # a 12 MP encode is slow: reuse a dozen variants
        source = rng.choice(sources)
        w, h = source.size
        cw, ch = int(w * 0.8), int(h * 0.8)
        left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
        crop = source.crop((left, top, left + cw, top + ch)).resize(size, Image.Resampling.BICUBIC)
        # An upscale is smoother than a real photo; sensor-like grain brings the bytes per pixel
        # (and the entropy-decoding work) to the corpus' real 12 MP phone photo (~0.24 B/px).
        noise = np.random.default_rng(rng.randrange(1 << 30))
        grain = noise.integers(-9, 10, (size[1], size[0], 3))
        crop = Image.fromarray(np.clip(np.asarray(crop) + grain, 0, 255).astype(np.uint8))
        exif = Image.Exif()
        exif[0x0112] = 6 if index % 3 == 2 else 1
        buffer = io.BytesIO()
        crop.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
        variants.append(buffer.getvalue())
    return Corpus(variants, count)


def write_files(folder: Path, photos: Sequence[bytes]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(photos):
        path = folder / f"{index:05d}.jpg"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


# --- the three per-image ways, each reading its file as Spark's executors do ----------------


def seed_way(path: str) -> int:
    """The seed's way: full decode, transpose, LANCZOS thumbnail, JPEG save."""
    with Image.open(path) as image:
        image.load()
        oriented = ImageOps.exif_transpose(image)
        oriented.thumbnail((CONFIG.thumbnail_size,) * 2, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        oriented.convert("RGB").save(buffer, "JPEG", quality=CONFIG.thumbnail_quality)
    return len(buffer.getvalue())


def floor_way(path: str) -> int:
    """Entropy decode alone at 1/8 scale: no orientation, resize, features or encode."""
    with Image.open(path) as image:
        image.draft("RGB", (image.width // 8, image.height // 8))
        image.load()
        return image.width


def kernel_way(path: str) -> int:
    """The project's kernel: one decode -> thumbnail + features."""
    return len(process_image(Path(path).read_bytes(), CONFIG).thumbnail)


def _single_threaded() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core, as in the Spark job


def pool_rate(work: Callable[[str], int], paths: Sequence[str]) -> float:
    """Images per second of ``work`` over ``paths`` in a pool of CORES processes."""
    # spawn, not fork: the driver may already hold a JVM gateway and its threads.
    with get_context("spawn").Pool(CORES, initializer=_single_threaded) as pool:
        pool.map(work, paths[:CORES])  # import and first-call costs out of the timing
        start = time.perf_counter()
        pool.map(work, paths, chunksize=1)
        return len(paths) / (time.perf_counter() - start)


# --- the Spark process stage ------------------------------------------------------------------


def build_root(root: Path, photos: Sequence[bytes]) -> str:
    """A local store as the ingest leaves it: objects under ingest/, records under metadata/."""
    import hashlib

    from imgpipe.records import ImageRecord, image_record_to_json, metadata_key
    from imgpipe.store import LocalStore

    store = LocalStore(root)
    for index, data in enumerate(photos):
        key = f"ingest/bench/{index:05d}.jpg"
        store.put_bytes(key, data)
        width, height, orientation = _record_fields(data)
        record = ImageRecord(
            key=key,
            size=len(data),
            checksum="sha256:" + hashlib.sha256(data).hexdigest(),
            format="JPEG",
            width=width,
            height=height,
            orientation=orientation,
            creator="bench",
            creator_source="folder",
            ingested_at="2024-05-01T10:00:00Z",
        )
        store.put_bytes(metadata_key(key), image_record_to_json(record))
    return str(root)


def _record_fields(data: bytes) -> tuple[int, int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.width, image.height, image.getexif().get(0x0112, 1)


class PeakRss:
    """Samples the RSS of this process and its descendants (the JVM and the Python workers)."""

    def __init__(self, interval: float = 0.1) -> None:
        import psutil

        self._me = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.driver = self.jvm = self.workers = self.total = 0

    def _sample(self) -> None:
        import psutil

        driver = self._me.memory_info().rss
        jvm = workers = 0
        for child in self._me.children(recursive=True):
            try:
                rss = child.memory_info().rss
                if "java" in child.name():
                    jvm += rss
                else:
                    workers += rss
            except psutil.Error:
                continue  # a worker that just exited
        self.driver, self.jvm = max(self.driver, driver), max(self.jvm, jvm)
        self.workers = max(self.workers, workers)
        self.total = max(self.total, driver + jvm + workers)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    @contextmanager
    def watch(self) -> Iterator[PeakRss]:
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def __str__(self) -> str:
        mb = 1 << 20
        return (
            f"peak RSS {self.total / mb:.0f} MB (python workers {self.workers / mb:.0f}, "
            f"JVM {self.jvm / mb:.0f}, driver python {self.driver / mb:.0f})"
        )


def spark_run(
    spark: object, photos: Sequence[bytes], tmp: Path, name: str
) -> tuple[float, PeakRss]:
    """Seconds of one run_process over a fresh root holding ``photos``, and its peak RSS.

    A fresh root each time: run_process skips content it has features for.
    """
    import shutil

    from imgpipe.process.stage import run_process

    root = build_root(tmp / name, photos)
    peak = PeakRss()
    with peak.watch():
        start = time.perf_counter()
        counts = run_process(spark, root, CONFIG)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
    shutil.rmtree(root)
    if counts["processed"] != len(photos):
        raise SystemExit(f"process stage lost images: {counts}")
    return seconds, peak


# --- the report -------------------------------------------------------------------------------


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=192, help="12 MP photos (default 192)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement, best kept")
    parser.add_argument("--scale", action="store_true", help="also 1,000 -> 10,000 640 px images")
    parser.add_argument("--scale-max", type=int, default=10_000, help="largest --scale run")
    parser.add_argument("--skip-spark", action="store_true", help="pool measurements only")
    args = parser.parse_args(argv)

    print(f"before: {load()}")
    photos = make_corpus(args.images, PHOTO_SIZE)
    mean_mb = sum(map(len, photos)) / len(photos) / 1e6
    print(f"corpus: {len(photos)} JPEGs {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} q90, {mean_mb:.1f} MB each")
    with tempfile.TemporaryDirectory(prefix="bench-process-") as folder:
        tmp = Path(folder)
        paths = write_files(tmp / "files", photos)
        spark = None
        if not args.skip_spark:
            from imgpipe.spark import local_session

            spark = local_session("imgpipe-bench", cores=str(CORES))
            tiny = make_corpus(4, SMALL_SIZE, seed=1)
            spark_run(spark, tiny, tmp, "warm-up")  # JVM start, Python workers, JIT
        rates: dict[str, float] = {}
        peaks: list[PeakRss] = []
        fixed = float("inf")
        # Rounds interleave the measurements, so load from other sessions hits each alike;
        # the best of the rounds is kept for each.
        for round_ in range(args.repeat):
            for name, work in (("seed", seed_way), ("floor", floor_way), ("kernel", kernel_way)):
                rate = pool_rate(work, paths)
                rates[name] = max(rates.get(name, 0.0), rate)
                print(
                    f"[{round_}] {name:>6}: {rate:6.1f} images/s ({CORES}-process pool) [{load()}]"
                )
            if spark is not None:
                # The stage's per-run cost (reading records, shuffles, two table writes) does not
                # depend on the number of images: a run over 4 small images measures it.
                fixed = min(fixed, spark_run(spark, tiny, tmp, f"fixed-{round_}")[0])
                seconds, peak = spark_run(spark, photos, tmp, f"spark-{round_}")
                peaks.append(peak)
                rate = len(photos) / seconds
                rates["spark"] = max(rates.get("spark", 0.0), rate)
                print(
                    f"[{round_}]  spark: {rate:6.1f} images/s (local[{CORES}], {seconds:.1f} s, "
                    f"of which ~{fixed:.1f} s per-run cost) [{load()}]"
                )
        print("\nbest of the rounds:")
        for name, rate in rates.items():
            print(f"{name:>8}: {rate:6.1f} images/s")
        if peaks:
            print(f"process stage (12 MP): {max(peaks, key=lambda peak: peak.total)}")
        print(
            "ratios: "
            f"kernel/seed {rates['kernel'] / rates['seed']:.2f}x (target >= 3.5), "
            f"kernel/floor {rates['kernel'] / rates['floor']:.2f} (target >= 0.8)"
            + (
                f", spark/kernel {rates['spark'] / rates['kernel']:.2f} (target >= 0.8), "
                f"spark/seed {rates['spark'] / rates['seed']:.2f}x (target >= 3)"
                if "spark" in rates
                else ""
            )
        )
        if args.scale and spark is not None:
            for count in sorted({min(1000, args.scale_max), args.scale_max}):
                small = make_corpus(count, SMALL_SIZE, seed=3)
                seconds, peak = spark_run(spark, small, tmp, f"scale-{count}")
                print(
                    f"scale: {count:>6} images 640 px: {seconds:6.1f} s, "
                    f"{count / seconds:6.1f} images/s, {peak} [{load()}]"
                )
    print(f"after: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
