"""The local labeler on real photos (skimage.data), and its people detector."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from imgpipe.labelers import (
    ImageInput,
    LabelerOptions,
    LabelerUnavailable,
    LabelingError,
    make_labeler,
)
from imgpipe.labelers.people import Box, face_confidence, hog_confidence, person_from_face
from imgpipe.records import Label

if TYPE_CHECKING:
    from imgpipe.labelers.local import LocalLabeler

OPTIONS = LabelerOptions(max_labels=10, min_confidence=55.0)
PHOTOS = ("chelsea", "coffee", "astronaut", "motorcycle", "rocket")


def _photo(name: str) -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    image = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return np.ascontiguousarray(image[..., :3])


@pytest.fixture(scope="module")
def labeler() -> LocalLabeler:
    pytest.importorskip("torch")
    from imgpipe.labelers.local import LocalLabeler

    return LocalLabeler(OPTIONS)


@pytest.fixture(scope="module")
def results(labeler: LocalLabeler) -> dict[str, list[Label]]:
    """All five photos labeled in one batch, as the pipeline does."""
    labels = labeler.label([ImageInput(rgb=_photo(name)) for name in PHOTOS])
    return dict(zip(PHOTOS, labels, strict=True))


def _names(labels: list[Label]) -> set[str]:
    return {label.name for label in labels}


def test_cat_is_a_cat_with_its_parents(results: dict[str, list[Label]]) -> None:
    assert {"Cat", "Animal", "Mammal", "Pet"} <= _names(results["chelsea"])


def test_coffee_is_coffee(results: dict[str, list[Label]]) -> None:
    names = _names(results["coffee"])
    assert names & {"Coffee", "Cup", "Coffee Cup"}
    assert names & {"Beverage", "Food"}


def test_motorcycle_is_a_vehicle(results: dict[str, list[Label]]) -> None:
    assert {"Motorcycle", "Vehicle", "Transportation"} <= _names(results["motorcycle"])


def test_rocket_is_a_rocket(results: dict[str, list[Label]]) -> None:
    assert _names(results["rocket"]) & {"Rocket", "Space Shuttle"}


def test_astronaut_is_a_person_with_a_face(results: dict[str, list[Label]]) -> None:
    by_name = {label.name: label for label in results["astronaut"]}
    assert by_name["Person"].instances
    [face] = by_name["Face"].instances
    # Her face is in the upper middle of the photo.
    assert 0.3 < face.left + face.width / 2 < 0.6
    assert 0.1 < face.top + face.height / 2 < 0.4
    assert "Head" in by_name


@pytest.mark.parametrize("photo", ["chelsea", "coffee", "motorcycle", "rocket"])
def test_no_people_where_there_are_none(results: dict[str, list[Label]], photo: str) -> None:
    assert not _names(results[photo]) & {"Person", "Face", "Head"}


@pytest.mark.parametrize("photo", PHOTOS)
def test_labels_have_the_rekognition_shape(results: dict[str, list[Label]], photo: str) -> None:
    labels = results[photo]
    assert 0 < len(labels) <= OPTIONS.max_labels
    confidences = [label.confidence for label in labels]
    assert confidences == sorted(confidences, reverse=True)
    assert all(OPTIONS.min_confidence <= c <= 100.0 for c in confidences)
    names = _names(labels)
    for label in labels:
        assert set(label.parents) <= names, label  # parents are labels too
        assert label.categories
        for box in label.instances:
            assert 0 <= box.left <= 1 and 0 <= box.top <= 1
            assert 0 < box.width <= 1 and 0 < box.height <= 1


def test_max_labels_keeps_parents_of_kept_labels(labeler: LocalLabeler) -> None:
    from imgpipe.labelers.local import LocalLabeler

    small = LocalLabeler(LabelerOptions(max_labels=3, min_confidence=10.0))
    small._model = labeler._load()[0]  # share the loaded model
    [labels] = small.label([ImageInput(rgb=_photo("chelsea"))])
    small.close()
    assert len(labels) == 3
    names = _names(labels)
    assert all(set(label.parents) <= names for label in labels)


def test_jpeg_bytes_are_decoded(labeler: LocalLabeler) -> None:
    buffer = io.BytesIO()
    Image.fromarray(_photo("chelsea")).save(buffer, "JPEG", quality=90)
    [labels] = labeler.label([ImageInput(data=buffer.getvalue())])
    assert "Cat" in _names(labels)


def test_an_s3_reference_alone_is_refused(labeler: LocalLabeler) -> None:
    with pytest.raises(LabelingError):
        labeler.label([ImageInput(s3_bucket="b", s3_key="k")])


def test_torch_threads_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from imgpipe.labelers.local import torch_threads

    monkeypatch.setenv("IMGPIPE_TORCH_THREADS", "3")
    assert torch_threads() == 3
    monkeypatch.setenv("IMGPIPE_TORCH_THREADS", "many")
    with pytest.raises(ValueError, match="IMGPIPE_TORCH_THREADS"):
        torch_threads()
    monkeypatch.delenv("IMGPIPE_TORCH_THREADS")
    assert 1 <= torch_threads() <= 8


def test_without_the_extra_local_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.delitem(sys.modules, "imgpipe.labelers.local", raising=False)
    with pytest.raises(LabelerUnavailable, match=r"pip install 'imgpipe\[local\]'"):
        make_labeler("local")
    assert make_labeler("none").label([ImageInput()]) == [[]]


def test_torch_is_imported_with_the_first_image_to_label_not_with_the_labeler() -> None:
    # A fresh interpreter: this one may have imported torch already. A re-run with nothing new
    # makes its labeler and labels nothing; importing torch would cost it ~1.2 s.
    pytest.importorskip("torch")
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from imgpipe.labelers import ImageInput, make_labeler\n"
        "labeler = make_labeler('local')\n"
        "print('torch' in sys.modules)\n"
        "rgb = np.zeros((64, 64, 3), np.uint8)\n"
        "print(isinstance(labeler.label([ImageInput(rgb=rgb)])[0], list), 'torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    assert out.split() == ["False", "True", "True"]


def test_face_confidence_grows_with_neighbours() -> None:
    assert face_confidence(3) == pytest.approx(50.0)
    assert face_confidence(9) == pytest.approx(87.5)
    assert face_confidence(20) > 98


def test_hog_confidence_from_margin() -> None:
    assert hog_confidence(0.0) == 0.0
    assert hog_confidence(1.0) == pytest.approx(63.2, abs=0.1)


def test_person_box_from_a_face_stays_inside_the_image() -> None:
    body = person_from_face(Box(10, 5, 20, 20, 80.0), width=100, height=60)
    assert (body.x, body.y) == (0.0, 0.0)
    assert body.x + body.w <= 100 and body.y + body.h <= 60
    assert body.w == 50 and body.h == 60
    assert body.confidence == 80.0
