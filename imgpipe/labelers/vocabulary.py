"""Rekognition-style names for the 1,000 ImageNet classes, with parents and categories.

The class table is data (``imgpipe/data/imagenet_rekognition.csv``): one row per ImageNet
class with its Rekognition-style name, all its ancestor labels (nearest first, as Rekognition
returns "all ancestor labels") and its categories. The parent labels themselves form a small
closed taxonomy, kept here because the labelers emit parents as labels of their own and need
their ancestors and categories too.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

TABLE_RESOURCE = "imagenet_rekognition.csv"
NUM_CLASSES = 1000

# Rekognition's label categories (the subset this vocabulary uses).
CATEGORIES = frozenset(
    {
        "Animals and Pets",
        "Apparel and Accessories",
        "Buildings and Architecture",
        "Everyday Objects",
        "Food and Beverage",
        "Hobbies and Interests",
        "Home and Indoors",
        "Medical",
        "Nature and Outdoors",
        "Person Description",
        "Plants and Flowers",
        "Sports",
        "Technology and Computing",
        "Text and Documents",
        "Tools and Machinery",
        "Vehicles and Automotive",
        "Weapons and Military",
    }
)

# The parent labels: ``name | direct parents | category``. Ancestors are the transitive
# closure of the direct parents, so each line only names the nearest ones.
_PARENT_TABLE = """
Animal | | Animals and Pets
Mammal | Animal | Animals and Pets
Pet | Animal | Animals and Pets
Wildlife | Animal | Animals and Pets
Canine | Mammal | Animals and Pets
Rodent | Mammal | Animals and Pets
Horse | Mammal | Animals and Pets
Bear | Mammal, Wildlife | Animals and Pets
Bird | Animal | Animals and Pets
Sea Life | Animal | Animals and Pets
Fish | Sea Life | Animals and Pets
Reptile | Animal | Animals and Pets
Amphibian | Animal | Animals and Pets
Invertebrate | Animal | Animals and Pets
Insect | Invertebrate | Animals and Pets
Transportation | | Vehicles and Automotive
Vehicle | Transportation | Vehicles and Automotive
Car | Vehicle | Vehicles and Automotive
Sports Car | Car | Vehicles and Automotive
Van | Vehicle | Vehicles and Automotive
Truck | Vehicle | Vehicles and Automotive
Bus | Vehicle | Vehicles and Automotive
Motorcycle | Vehicle | Vehicles and Automotive
Bicycle | Vehicle | Vehicles and Automotive
Train | Vehicle | Vehicles and Automotive
Boat | Vehicle | Vehicles and Automotive
Ship | Boat | Vehicles and Automotive
Aircraft | Vehicle | Vehicles and Automotive
Airplane | Aircraft | Vehicles and Automotive
Food | | Food and Beverage
Beverage | Food | Food and Beverage
Alcohol | Beverage | Food and Beverage
Meal | Food | Food and Beverage
Dish | Meal | Food and Beverage
Dessert | Food | Food and Beverage
Bread | Food | Food and Beverage
Fruit | Food, Plant | Food and Beverage
Citrus Fruit | Fruit | Food and Beverage
Vegetable | Food, Plant | Food and Beverage
Plant | | Plants and Flowers
Flower | Plant | Plants and Flowers
Fungus | Plant | Plants and Flowers
Mushroom | Fungus | Plants and Flowers
Nature | | Nature and Outdoors
Outdoors | | Nature and Outdoors
Water | | Nature and Outdoors
Sea | Nature, Outdoors, Water | Nature and Outdoors
Mountain | Nature, Outdoors | Nature and Outdoors
Furniture | | Home and Indoors
Chair | Furniture | Home and Indoors
Table | Furniture | Home and Indoors
Cabinet | Furniture | Home and Indoors
Appliance | | Home and Indoors
Cookware | | Home and Indoors
Cutlery | | Home and Indoors
Cup | | Home and Indoors
Clock | | Home and Indoors
Lamp | | Home and Indoors
Curtain | | Home and Indoors
Door | | Home and Indoors
Window | | Home and Indoors
Indoors | | Home and Indoors
Room | Indoors | Home and Indoors
Bottle | | Everyday Objects
Cosmetics | | Everyday Objects
Electronics | | Technology and Computing
Computer | Electronics | Technology and Computing
Phone | Electronics | Technology and Computing
Monitor | Electronics | Technology and Computing
Clothing | | Apparel and Accessories
Accessories | | Apparel and Accessories
Footwear | Clothing | Apparel and Accessories
Shoe | Footwear | Apparel and Accessories
Hat | Clothing | Apparel and Accessories
Coat | Clothing | Apparel and Accessories
Pants | Clothing | Apparel and Accessories
Sweater | Clothing | Apparel and Accessories
Swimwear | Clothing | Apparel and Accessories
Bag | Accessories | Apparel and Accessories
Tie | Accessories | Apparel and Accessories
Jewelry | Accessories | Apparel and Accessories
Glasses | Accessories | Apparel and Accessories
Musical Instrument | | Hobbies and Interests
Guitar | Musical Instrument | Hobbies and Interests
Piano | Musical Instrument | Hobbies and Interests
Toy | | Hobbies and Interests
Game | | Hobbies and Interests
Sport | | Sports
Ball | Sport | Sports
Fitness | Sport | Sports
Tool | | Tools and Machinery
Machine | | Tools and Machinery
Gauge | | Tools and Machinery
Weapon | | Weapons and Military
Gun | Weapon | Weapons and Military
Armor | | Weapons and Military
Architecture | | Buildings and Architecture
Building | Architecture | Buildings and Architecture
Shop | Building | Buildings and Architecture
Tower | Building | Buildings and Architecture
Bridge | Architecture | Buildings and Architecture
Monument | Architecture | Buildings and Architecture
Text | | Text and Documents
Publication | | Text and Documents
Book | Publication | Text and Documents
Person | | Person Description
Head | Person | Person Description
Face | Head | Person Description
"""


@dataclass(frozen=True)
class LabelInfo:
    """What every occurrence of a label name carries: its ancestors and categories."""

    parents: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Vocabulary:
    """The ImageNet class table and the info of every name it can emit.

    Attributes:
        imagenet_names: The ImageNet class names, by class index.
        class_labels: The Rekognition-style name of each class, by class index.
        labels: Parents and categories of every leaf and parent name.
    """

    imagenet_names: tuple[str, ...]
    class_labels: tuple[str, ...]
    labels: dict[str, LabelInfo]

    def info(self, name: str) -> LabelInfo:
        """Parents and categories of ``name``. Raises KeyError for an unknown name."""
        return self.labels[name]


def _split(cell: str, sep: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(sep) if part.strip())


def _ancestors(direct: dict[str, tuple[str, ...]], name: str) -> tuple[str, ...]:
    """All ancestors of ``name``, nearest first (breadth first), without repeats."""
    found: list[str] = []
    queue = list(direct[name])
    while queue:
        parent = queue.pop(0)
        if parent not in found:
            found.append(parent)
            queue.extend(direct[parent])
    return tuple(found)


@cache
def parent_labels() -> dict[str, LabelInfo]:
    """The closed set of parent labels with their own ancestors and categories."""
    direct: dict[str, tuple[str, ...]] = {}
    categories: dict[str, tuple[str, ...]] = {}
    for line in _PARENT_TABLE.strip().splitlines():
        name, parents, category = (cell.strip() for cell in line.split("|"))
        direct[name] = _split(parents, ",")
        categories[name] = (category,)
    return {name: LabelInfo(_ancestors(direct, name), categories[name]) for name in direct}


@cache
def load_vocabulary() -> Vocabulary:
    """Read the class table shipped in the package (cached: it never changes at run time)."""
    text = resources.files("imgpipe").joinpath("data", TABLE_RESOURCE).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    if [int(row["index"]) for row in rows] != list(range(NUM_CLASSES)):
        raise ValueError(f"{TABLE_RESOURCE} must list classes 0..{NUM_CLASSES - 1} in order")
    labels = dict(parent_labels())
    for row in rows:
        info = LabelInfo(_split(row["parents"], ";"), _split(row["categories"], ";"))
        # The first row of a name defines it; the vocabulary test checks that all agree.
        labels.setdefault(row["name"], info)
    return Vocabulary(
        imagenet_names=tuple(row["imagenet_name"] for row in rows),
        class_labels=tuple(row["name"] for row in rows),
        labels=labels,
    )
