"""How a local first run spreads its records over tasks (imgpipe.process.transforms)."""

from __future__ import annotations

from imgpipe.process.transforms import balanced_groups, content_weights


def test_copies_share_a_group_and_count_once() -> None:
    contents = [("a", 10), ("b", 10), ("a", 10), ("c", 10), ("a", 10)]
    groups = balanced_groups(contents, 3)
    assert groups[0] == groups[2] == groups[4]
    # "a" weighs one decode, not three: the three contents take a group each.
    assert sorted(set(groups)) == [0, 1, 2]


def test_groups_hold_even_bytes_largest_content_first() -> None:
    sizes = [9, 8, 7, 6, 5, 4, 3, 2, 1, 1]
    groups = balanced_groups([(f"c{i}", size) for i, size in enumerate(sizes)], 3)
    loads = [
        sum(size for size, group in zip(sizes, groups, strict=True) if group == g) for g in range(3)
    ]
    assert sorted(loads) == [15, 15, 16]


def test_records_without_a_checksum_or_size_are_placed_too() -> None:
    groups = balanced_groups([(None, 0), (None, 0), ("x", -1)], 2)
    assert groups[0] == groups[1] and set(groups) <= {0, 1}
    assert balanced_groups([], 4) == []


def test_a_content_weighs_its_size_once_and_the_largest_when_its_records_disagree() -> None:
    weights = content_weights([("a", 10), ("b", 4), ("a", 10), (None, 0), ("b", 0)])
    assert weights == {"a": 10, "b": 4, None: 0}
