"""The ImageNet -> Rekognition-style vocabulary table: complete, closed and sensible."""

from __future__ import annotations

import csv
from importlib import resources

import pytest

from imgpipe.labelers.vocabulary import CATEGORIES, load_vocabulary, parent_labels


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    text = resources.files("imgpipe").joinpath("data", "imagenet_rekognition.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def _split(cell: str) -> set[str]:
    return {part for part in cell.split(";") if part}


def test_every_imagenet_class_maps_to_a_title_case_name(rows: list[dict[str, str]]) -> None:
    assert [int(row["index"]) for row in rows] == list(range(1000))
    for row in rows:
        assert row["imagenet_name"], row
        words = row["name"].split()
        assert words and all(word[0].isupper() for word in words), row


def test_parents_and_categories_come_from_closed_sets(rows: list[dict[str, str]]) -> None:
    allowed = parent_labels()
    for row in rows:
        assert _split(row["parents"]) <= allowed.keys(), row
        assert _split(row["categories"]), row
        assert _split(row["categories"]) <= CATEGORIES, row
    for info in allowed.values():
        assert set(info.parents) <= allowed.keys()
        assert set(info.categories) <= CATEGORIES


def test_parents_list_every_ancestor(rows: list[dict[str, str]]) -> None:
    """Rekognition returns all ancestors, so a listed parent's own parents are listed too."""
    allowed = parent_labels()
    for row in rows:
        parents = _split(row["parents"])
        for parent in parents:
            assert set(allowed[parent].parents) <= parents, (row, parent)


def test_a_name_has_one_meaning_wherever_it_appears(rows: list[dict[str, str]]) -> None:
    allowed = parent_labels()
    seen: dict[str, tuple[str, str]] = {}
    for row in rows:
        meaning = (row["parents"], row["categories"])
        assert seen.setdefault(row["name"], meaning) == meaning, row
        if row["name"] in allowed:
            info = allowed[row["name"]]
            assert _split(row["parents"]) == set(info.parents), row
            assert _split(row["categories"]) == set(info.categories), row


@pytest.mark.parametrize(
    ("index", "imagenet_name", "name", "parents"),
    [
        (285, "Egyptian cat", "Cat", {"Animal", "Mammal", "Pet"}),
        (281, "tabby", "Cat", {"Animal", "Mammal", "Pet"}),
        (207, "golden retriever", "Dog", {"Animal", "Canine", "Mammal", "Pet"}),
        (967, "espresso", "Coffee", {"Beverage", "Food"}),
        (504, "coffee mug", "Coffee Cup", {"Cup"}),
        (670, "motor scooter", "Scooter", {"Motorcycle", "Vehicle", "Transportation"}),
        (657, "missile", "Rocket", {"Vehicle", "Transportation"}),
        (812, "space shuttle", "Space Shuttle", {"Aircraft", "Vehicle", "Transportation"}),
        (61, "boa constrictor", "Snake", {"Reptile", "Animal"}),
        (738, "pot", "Potted Plant", {"Plant"}),
        (681, "notebook", "Laptop", {"Computer", "Electronics"}),
    ],
)
def test_spot_checks(index: int, imagenet_name: str, name: str, parents: set[str]) -> None:
    vocabulary = load_vocabulary()
    assert vocabulary.imagenet_names[index] == imagenet_name
    assert vocabulary.class_labels[index] == name
    assert set(vocabulary.info(name).parents) == parents


def test_all_dog_breeds_are_dogs() -> None:
    vocabulary = load_vocabulary()
    assert {vocabulary.class_labels[i] for i in range(151, 269)} == {"Dog"}


def test_person_labels_follow_rekognition() -> None:
    labels = parent_labels()
    assert labels["Person"].parents == ()
    assert set(labels["Face"].parents) == {"Head", "Person"}
    assert labels["Face"].categories == ("Person Description",)
