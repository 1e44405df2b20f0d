"""The ingest logic on its own: records written through a store, labeling failures isolated."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from imgpipe import ingest
from imgpipe.config import PipelineConfig
from imgpipe.ingest import Ingester, IngestItem, in_order_ahead
from imgpipe.labelers import ImageInput, LabelingError
from imgpipe.records import Label
from imgpipe.store import LocalStore
from tests.imagefactory import jpeg_bytes, photo_like


class PickyLabeler:
    """Labels every image except those whose top-left pixel is pure black."""

    name = "picky"
    model_version = "1"

    def __init__(self) -> None:
        self.calls = 0

    def label(self, images: Sequence[ImageInput]) -> list[list[Label]]:
        self.calls += 1
        for image in images:
            assert image.rgb is not None
            if not image.rgb[0, 0].any():
                raise LabelingError("InvalidImageFormatException: refused", retryable=False)
        return [[Label("Thing", 90.0)] for _ in images]


def dark_corner(seed: int) -> bytes:
    image = photo_like(200, 200, seed)
    image.paste((0, 0, 0), (0, 0, 40, 40))
    return jpeg_bytes(image, quality=100)


def test_one_refused_image_does_not_quarantine_its_batch(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    items = [IngestItem(f"ingest/ok{i}.jpg", jpeg_bytes(photo_like(200, 200, i))) for i in range(3)]
    items.insert(1, IngestItem("ingest/refused.jpg", dark_corner(9)))
    outcomes = list(Ingester(store, PipelineConfig(), PickyLabeler()).run(items))
    assert {o.key: o.accepted for o in outcomes} == {
        "ingest/ok0.jpg": True,
        "ingest/refused.jpg": False,
        "ingest/ok1.jpg": True,
        "ingest/ok2.jpg": True,
    }
    record = json.loads(store.get_bytes("quarantine/refused.jpg.json"))
    assert record["reason"] == "labeling_failed"
    assert "InvalidImageFormatException" in record["message"]
    assert json.loads(store.get_bytes("metadata/ok0.jpg.json"))["labels"][0]["name"] == "Thing"


def test_retryable_labeling_error_propagates_and_writes_nothing(tmp_path: Path) -> None:
    class Throttled(PickyLabeler):
        def label(self, images: Sequence[ImageInput]) -> list[list[Label]]:
            raise LabelingError("ThrottlingException", retryable=True)

    store = LocalStore(tmp_path)
    with pytest.raises(LabelingError):
        list(
            Ingester(store, PipelineConfig(), Throttled()).run(
                [IngestItem("ingest/a.jpg", dark_corner(1))]
            )
        )
    assert list(store.list_keys("")) == []


def test_unchanged_content_is_not_labeled_again(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    labeler = PickyLabeler()
    item = IngestItem("ingest/a.jpg", jpeg_bytes(photo_like(200, 200, 1)))
    first = list(Ingester(store, PipelineConfig(), labeler).run([item]))
    second = list(Ingester(store, PipelineConfig(), labeler).run([item]))
    assert labeler.calls == 1
    assert (first[0].reused, second[0].reused) == (False, True)


def test_changed_content_supersedes_a_stale_quarantine_record(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ingester = Ingester(store, PipelineConfig(), PickyLabeler())
    list(ingester.run([IngestItem("ingest/a.jpg", b"not yet a photo")]))
    assert json.loads(store.get_bytes("quarantine/a.jpg.json"))["reason"] == "not_an_image"
    list(ingester.run([IngestItem("ingest/a.jpg", jpeg_bytes(photo_like(200, 200, 1)))]))
    assert json.loads(store.get_bytes("metadata/a.jpg.json"))["labeler"] == "picky"
    # Not deleted (the Lambda cannot delete), but overwritten with a marker: no record.
    marker = json.loads(store.get_bytes("quarantine/a.jpg.json"))
    assert marker["superseded_by"] == "metadata/a.jpg.json"
    assert "reason" not in marker and "checksum" not in marker


@pytest.mark.parametrize("threads", [2, 4])
def test_described_on_threads_the_outcomes_are_those_of_one_thread_in_its_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: int
) -> None:
    items = [
        IngestItem(f"ingest/{i:02d}.jpg", jpeg_bytes(photo_like(120, 90, i))) for i in range(40)
    ]
    items[5] = IngestItem("ingest/05.jpg", b"not an image at all")
    items[11] = IngestItem("ingest/11.jpg", b"")
    items[30] = IngestItem("ingest/30.jpg", dark_corner(3))  # refused by the labeler
    runs = []
    for count in (1, threads):
        monkeypatch.setattr(ingest, "DESCRIBE_THREADS", count)
        store = LocalStore(tmp_path / str(count))
        runs.append(list(Ingester(store, PipelineConfig(), PickyLabeler()).run(items)))
    assert runs[0] == runs[1]
    assert sorted(o.key for o in runs[1]) == [item.key for item in items]
    assert [o.key for o in runs[1] if not o.accepted] == [
        "ingest/05.jpg",
        "ingest/11.jpg",
        "ingest/30.jpg",
    ]


def test_in_order_ahead_reads_at_most_two_items_per_thread_ahead() -> None:
    taken: list[int] = []

    def source() -> Iterator[int]:
        for i in range(50):
            taken.append(i)
            yield i

    results = in_order_ahead(lambda i: i * i, source(), threads=3)
    assert [next(results) for _ in range(4)] == [0, 1, 4, 9]
    assert len(taken) <= 4 + 2 * 3
    assert list(results) == [i * i for i in range(4, 50)]


def test_in_order_ahead_raises_an_error_at_its_item() -> None:
    def work(i: int) -> int:
        if i == 3:
            raise ValueError("item 3")
        return i

    results = in_order_ahead(work, range(10), threads=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="item 3"):
        next(results)
