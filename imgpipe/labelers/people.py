"""Faces and people for the local labeler: ImageNet has no person class.

Detectors are the ones OpenCV 4.x ships (``cv2.data`` Haar cascades and the HOG pedestrian
SVM), so nothing is downloaded. Both run on a grayscale copy downscaled to
:data:`DETECT_SIDE`, which keeps them to a few tens of milliseconds per photo.

Confidence (0-100) from detector evidence:
    * Face: a Haar detection is the merge of ``n`` overlapping raw hits (its neighbours);
      ``100 * (1 - 0.5 ** (n / 3))``: the minimum of 3 neighbours gives 50, 9 give 87.5,
      the ~20 of a clear frontal face give ~99. Each 3 more neighbours halve the doubt.
    * Person (HOG): the SVM margin ``w`` of the window, ``100 * (1 - exp(-w))``: a margin
      of 1 gives 63, 2 gives 86.
    * A face also implies a person, with the face's confidence, whose box is estimated
      from the face (shoulders ~3 face widths wide, body down to ~7 face heights).
Labels follow Rekognition: Person (no parents), Face with parents Head and Person, and the
parents emitted as labels too (Head carries the Face confidence, no boxes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import cv2.data  # the packaged Haar cascade files (gone in OpenCV 5)
import numpy as np

from imgpipe.labelers.vocabulary import load_vocabulary
from imgpipe.records import Instance, Label

DETECT_SIDE = 256
FACE_CASCADE = "haarcascade_frontalface_alt2.xml"
FACE_MIN_NEIGHBOURS = 3
FACE_MIN_SIZE = 20  # pixels at DETECT_SIDE: faces from ~8 % of the longest side
HOG_MIN_MARGIN = 0.3  # weaker HOG windows are mostly texture (fur, foliage)


@dataclass(frozen=True)
class Box:
    """A detection in pixels of the downscaled image, with its 0-100 confidence."""

    x: float
    y: float
    w: float
    h: float
    confidence: float

    def contains_point(self, px: float, py: float) -> bool:
        return self.x <= px <= self.x + self.w and self.y <= py <= self.y + self.h


def face_confidence(neighbours: int) -> float:
    """Confidence of a Haar face from its neighbour count (see the module docstring)."""
    return 100.0 * (1.0 - 0.5 ** (neighbours / 3.0))


def hog_confidence(margin: float) -> float:
    """Confidence of a HOG person window from its SVM margin (see the module docstring)."""
    return 100.0 * (1.0 - math.exp(-max(margin, 0.0)))


def person_from_face(face: Box, width: int, height: int) -> Box:
    """The body a face implies: wider by the shoulders, down towards the feet, clipped."""
    left = max(0.0, face.x - face.w)
    top = max(0.0, face.y - 0.25 * face.h)
    right = min(float(width), face.x + 2.0 * face.w)
    bottom = min(float(height), face.y + 7.0 * face.h)
    return Box(left, top, right - left, bottom - top, face.confidence)


def _instance(box: Box, width: int, height: int) -> Instance:
    return Instance(
        left=round(box.x / width, 4),
        top=round(box.y / height, 4),
        width=round(box.w / width, 4),
        height=round(box.h / height, 4),
        confidence=round(box.confidence, 3),
    )


class PeopleDetector:
    """Finds frontal faces (Haar) and standing people (HOG) in RGB images."""

    def __init__(self) -> None:
        self._faces = cv2.CascadeClassifier(cv2.data.haarcascades + FACE_CASCADE)
        if self._faces.empty():
            raise RuntimeError(f"OpenCV has no {FACE_CASCADE}; opencv-python-headless<5 needed")
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector()))

    def detect(self, rgb: np.ndarray) -> tuple[list[Box], list[Box], tuple[int, int]]:
        """Faces and people in pixels of the downscaled copy, and that copy's (width, height)."""
        height, width = rgb.shape[:2]
        scale = min(1.0, DETECT_SIDE / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        rects, neighbours = self._faces.detectMultiScale2(
            gray,
            scaleFactor=1.2,
            minNeighbors=FACE_MIN_NEIGHBOURS,
            minSize=(FACE_MIN_SIZE, FACE_MIN_SIZE),
        )
        faces = [
            Box(float(x), float(y), float(w), float(h), face_confidence(int(n)))
            for (x, y, w, h), n in zip(rects, np.ravel(neighbours), strict=True)
        ]
        people: list[Box] = []
        if min(size) >= 128:  # the HOG window is 64x128
            found, margins = self._hog.detectMultiScale(
                gray, hitThreshold=HOG_MIN_MARGIN, winStride=(8, 8), scale=1.1
            )
            people = [
                Box(float(x), float(y), float(w), float(h), hog_confidence(float(m)))
                for (x, y, w, h), m in zip(found, np.ravel(margins), strict=True)
            ]
        return faces, people, size

    def labels(self, rgb: np.ndarray) -> list[Label]:
        """Person, Face and Head labels with instances as ratios; empty when nobody is found."""
        faces, people, (width, height) = self.detect(rgb)
        # A face outside every HOG body still means a person: estimate the body from it.
        bodies = list(people)
        for face in faces:
            cx, cy = face.x + face.w / 2, face.y + face.h / 2
            if not any(body.contains_point(cx, cy) for body in people):
                bodies.append(person_from_face(face, width, height))
        vocabulary = load_vocabulary()
        out: list[Label] = []
        if bodies:
            info = vocabulary.info("Person")
            out.append(
                Label(
                    name="Person",
                    confidence=max(b.confidence for b in bodies),
                    parents=info.parents,
                    categories=info.categories,
                    instances=tuple(_instance(b, width, height) for b in bodies),
                )
            )
        if faces:
            best = max(f.confidence for f in faces)
            face_info, head_info = vocabulary.info("Face"), vocabulary.info("Head")
            out.append(
                Label(
                    name="Face",
                    confidence=best,
                    parents=face_info.parents,
                    categories=face_info.categories,
                    instances=tuple(_instance(f, width, height) for f in faces),
                )
            )
            out.append(Label("Head", best, head_info.parents, head_info.categories))
        return out
