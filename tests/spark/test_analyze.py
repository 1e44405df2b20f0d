"""The analyze job on a hand-built image table, checked against counts computed in Python."""

from __future__ import annotations

import io
from collections import Counter
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from analysis.analyze import (
    ANALYSES,
    BLURRY_SHARPNESS_BELOW,
    DARK_BRIGHTNESS_BELOW,
    OVEREXPOSED_BRIGHTNESS_ABOVE,
    load_images,
    load_quarantine,
    query_parameters,
    register_views,
    run_analyze,
    run_query,
)
from imgpipe.config import PipelineConfig
from imgpipe.store import LocalStore
from spark_jobs.analyze import main
from tests.tablefixtures import (
    Row,
    image_row,
    label,
    sample_quarantine,
    sample_rows,
    write_collection,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark
CONFIG = PipelineConfig(top_n=50, near_duplicate_distance=6)
ROWS = sample_rows()


@pytest.fixture(scope="module")
def root(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bucket")
    write_collection(spark, LocalStore(path), ROWS, sample_quarantine())
    return path


@pytest.fixture(scope="module")
def tables(spark: SparkSession, root: Path) -> dict[str, pd.DataFrame]:
    return run_analyze(spark, str(root), "run-1", CONFIG)


def image_labels(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """key -> {label name -> its label dicts} (a name listed twice on an image is one label)."""
    result: dict[str, dict[str, Any]] = {}
    for row in rows:
        per_image: dict[str, list[dict[str, Any]]] = {}
        for lab in row["labels"] or []:
            per_image.setdefault(lab["name"], []).append(lab)
        result[row["key"]] = per_image
    return result


def as_dict(frame: pd.DataFrame, key: str, value: str) -> dict[Any, Any]:
    return dict(zip(frame[key], frame[value], strict=True))


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def test_every_analysis_is_written_as_csv_and_parquet(tables: dict, root: Path) -> None:
    directory = root / "reports" / "run-1" / "tables"
    for name in ANALYSES:
        from_csv = pd.read_csv(directory / f"{name}.csv")
        from_parquet = pd.read_parquet(directory / f"{name}.parquet")
        assert len(from_csv) == len(from_parquet) == len(tables[name]), name
        assert list(from_parquet.columns) == list(tables[name].columns), name


def test_overview_counts_rows_with_process_errors_in_totals(tables: dict) -> None:
    overview = tables["overview"].iloc[0]
    assert overview["images"] == len(ROWS)
    assert overview["bytes"] == sum(r["size"] for r in ROWS)
    assert overview["process_errors"] == sum(1 for r in ROWS if r["process_error"])
    assert overview["quarantined"] == len(sample_quarantine())


def test_top_labels_count_each_label_once_per_image_with_mean_confidence(tables: dict) -> None:
    per_image = image_labels(ROWS)
    counts = Counter(name for labels in per_image.values() for name in labels)
    best: dict[str, list[float]] = {}
    for labels in per_image.values():
        for name, entries in labels.items():
            best.setdefault(name, []).append(max(e["confidence"] for e in entries))
    top = tables["top_labels"]
    assert as_dict(top, "label", "images") == dict(counts)
    for name, confidences in best.items():
        expected = round(sum(confidences) / len(confidences), 2)
        assert as_dict(top, "label", "mean_confidence")[name] == pytest.approx(expected)
    assert list(top["images"]) == sorted(top["images"], reverse=True)


def test_label_listed_twice_on_one_image_counts_once(tables: dict) -> None:
    cats = sum(1 for r in ROWS if any(lab["name"] == "Cat" for lab in r["labels"] or []))
    assert as_dict(tables["top_labels"], "label", "images")["Cat"] == cats


def names_per_image(rows: list[Row]) -> dict[str, set[str]]:
    """key -> the image's label names and their parents (each name once per image)."""
    return {
        row["key"]: {n for lab in row["labels"] or [] for n in (lab["name"], *lab["parents"])}
        for row in rows
    }


def recorded_parents(rows: list[Row]) -> dict[str, set[str]]:
    """label -> every parent recorded for it anywhere in the collection."""
    parents: dict[str, set[str]] = {}
    for row in rows:
        for lab in row["labels"] or []:
            parents.setdefault(lab["name"], set()).update(lab["parents"])
    return parents


def test_label_hierarchy_lists_each_top_level_parent_once_with_the_labels_below(
    tables: dict,
) -> None:
    parents = recorded_parents(ROWS)
    has_parents = {name for name, ups in parents.items() if ups}
    roots = {p for ups in parents.values() for p in ups} - has_parents
    # Vehicle is recorded under Transportation; Mammal and Pet are never labels here, so
    # nothing places them under Animal.
    assert "Transportation" in roots and "Vehicle" not in roots
    counts = Counter(n for names in names_per_image(ROWS).values() for n in names)
    hierarchy = tables["label_parents"]
    assert list(hierarchy["parent"]) == sorted(roots, key=lambda r: (-counts[r], r))
    for root, images, listed in zip(
        hierarchy["parent"], hierarchy["images"], hierarchy["labels"], strict=True
    ):
        assert images == counts[root]
        below = sorted(
            (n for n, ups in parents.items() if root in ups), key=lambda n: (-counts[n], n)
        )
        assert listed == ", ".join(f"{n} ({counts[n]})" for n in below)
    assert as_dict(hierarchy, "parent", "labels")["Transportation"] == "Rocket (1), Vehicle (1)"


def test_hierarchy_counts_an_image_with_cat_and_dog_once_for_their_common_parent(
    tables: dict,
) -> None:
    with_animal = {key for key, names in names_per_image(ROWS).items() if "Animal" in names}
    assert "ingest/alice/cat-and-dog.jpg" in with_animal
    assert as_dict(tables["label_parents"], "parent", "images")["Animal"] == len(with_animal)


def test_label_categories_count_once_per_image(tables: dict) -> None:
    expected = Counter(
        cat for r in ROWS for cat in {c for lab in r["labels"] or [] for c in lab["categories"]}
    )
    assert as_dict(tables["label_categories"], "category", "images") == dict(expected)


def test_cooccurrence_pairs_are_unordered_counted_once_and_never_a_label_with_its_ancestor(
    tables: dict,
) -> None:
    parents = recorded_parents(ROWS)
    expected: Counter[tuple[str, str]] = Counter()
    for labels in image_labels(ROWS).values():
        expected.update(
            (a, b)
            for a, b in combinations(sorted(labels), 2)
            if a not in parents.get(b, ()) and b not in parents.get(a, ())
        )
    pairs = tables["label_pairs"]
    found = {(a, b): n for a, b, n in zip(pairs.label_a, pairs.label_b, pairs.images, strict=True)}
    assert found == dict(expected)
    assert found[("Cat", "Dog")] == 2  # cat-and-dog and its copy; never also ("Dog", "Cat")
    assert found[("Rocket", "Sky")] == 1
    assert ("Rocket", "Vehicle") not in found and ("Transportation", "Vehicle") not in found


def test_a_label_with_its_grandparent_is_no_pair_when_only_direct_parents_are_recorded(
    spark: SparkSession, tmp_path: Path
) -> None:
    rows = [
        image_row(
            "ingest/a.jpg",
            "sha256:1",
            labels=[
                label("Cat", 90.0, ("Mammal",)),
                label("Mammal", 90.0, ("Animal",)),
                label("Animal", 90.0),
                label("Sofa", 80.0, ("Furniture",)),
            ],
        )
    ]
    write_collection(spark, LocalStore(tmp_path), rows, [])
    pairs = run_analyze(spark, str(tmp_path), "run-1", CONFIG)["label_pairs"]
    found = set(zip(pairs.label_a, pairs.label_b, strict=True))
    assert found == {("Cat", "Sofa"), ("Mammal", "Sofa"), ("Animal", "Sofa")}


def test_creators_sum_images_and_bytes_and_missing_creator_is_unknown(tables: dict) -> None:
    images: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for row in ROWS:
        images[row["creator"] or "unknown"] += 1
        sizes[row["creator"] or "unknown"] += row["size"]
    creators = tables["creators"]
    assert as_dict(creators, "creator", "images") == dict(images)
    assert as_dict(creators, "creator", "bytes") == dict(sizes)


def test_creator_top_labels_list_the_most_frequent_first(tables: dict) -> None:
    top = as_dict(tables["creators"], "creator", "top_labels")
    assert top["bob"] == "Dog (2), Cat (1), Grass (1)"
    assert top["dave"] == ""  # the undecodable image has no labels


def test_images_over_time_group_exif_dates_by_month(tables: dict) -> None:
    expected = Counter(
        r["datetime_original"].strftime("%Y-%m") for r in ROWS if r["datetime_original"]
    )
    over_time = tables["images_over_time"]
    assert as_dict(over_time, "month", "images") == dict(expected)
    assert list(over_time["month"]) == sorted(expected)


def test_cameras_count_make_and_model_with_unknown_for_missing_exif(tables: dict) -> None:
    expected = Counter(
        (r["camera_make"] or "unknown", r["camera_model"] or "unknown") for r in ROWS
    )
    cams = tables["cameras"]
    found = {(a, b): n for a, b, n in zip(cams.make, cams.model, cams.images, strict=True)}
    assert found == dict(expected)


def test_formats_count_images_and_bytes(tables: dict) -> None:
    formats = tables["formats"]
    assert as_dict(formats, "format", "images") == dict(Counter(r["format"] for r in ROWS))
    assert as_dict(formats, "format", "bytes")["PNG"] == sum(
        r["size"] for r in ROWS if r["format"] == "PNG"
    )


def test_megapixel_bins_account_for_every_image_including_unmeasured(tables: dict) -> None:
    bins = as_dict(tables["megapixels"], "bin", "images")
    megapixels = [r["megapixels"] for r in ROWS]
    assert sum(bins.values()) == len(ROWS)
    assert bins["unknown"] == sum(1 for m in megapixels if m is None)
    assert bins["12-16 MP"] == sum(1 for m in megapixels if m is not None and 12 <= m < 16)
    assert bins["< 1 MP"] == sum(1 for m in megapixels if m is not None and m < 1)
    assert bins[">= 24 MP"] == sum(1 for m in megapixels if m is not None and m >= 24)


def test_sharpness_and_brightness_bins_account_for_every_image(tables: dict) -> None:
    sharp = as_dict(tables["sharpness"], "bin", "images")
    bright = as_dict(tables["brightness"], "bin", "images")
    assert sum(sharp.values()) == sum(bright.values()) == len(ROWS)
    sharpness = [r["sharpness"] for r in ROWS if r["sharpness"] is not None]
    brightness = [r["brightness"] for r in ROWS if r["brightness"] is not None]
    assert sharp["< 50"] == sum(1 for v in sharpness if v < 50)
    assert sharp["250-500"] == sum(1 for v in sharpness if 250 <= v < 500)
    assert bright["0-31"] == sum(1 for v in brightness if v < 32)
    assert bright["224-255"] == sum(1 for v in brightness if v >= 224)


def test_quality_flags_apply_the_documented_thresholds(tables: dict) -> None:
    def count(column: str, test: Any) -> int:
        return sum(1 for r in ROWS if r[column] is not None and test(r[column]))

    flags = as_dict(tables["quality"], "flag", "images")
    assert flags == {
        "blurry": count("sharpness", lambda v: v < BLURRY_SHARPNESS_BELOW),
        "dark": count("brightness", lambda v: v < DARK_BRIGHTNESS_BELOW),
        "overexposed": count("brightness", lambda v: v > OVEREXPOSED_BRIGHTNESS_ABOVE),
        "unmeasured": sum(1 for r in ROWS if r["process_error"]),
    }
    assert flags["blurry"] == flags["dark"] == 1  # dog-on-grass, so the test means something


def test_exact_duplicates_group_keys_sharing_a_checksum(tables: dict) -> None:
    by_checksum: dict[str, set[str]] = {}
    for row in ROWS:
        by_checksum.setdefault(row["checksum"], set()).add(row["key"])
    expected = {c: keys for c, keys in by_checksum.items() if len(keys) > 1}
    dups = tables["exact_duplicates"]
    found: dict[str, set[str]] = {}
    for checksum, key, copies in zip(dups.checksum, dups.key, dups.copies, strict=True):
        found.setdefault(checksum, set()).add(key)
        assert copies == len(expected[checksum])
    assert (
        found
        == expected
        == {"sha256:aaaa": {"ingest/alice/cat-and-dog.jpg", "ingest/bob/cat-and-dog-copy.jpg"}}
    )


def near_duplicates_of(rows: list[Row], max_distance: int) -> dict[str, tuple[str, int, int]]:
    """key -> (closest other content's key, its distance, how many within max_distance)."""
    hashed = [r for r in rows if r["phash"]]
    result = {}
    for row in hashed:
        near = sorted(
            (hamming(row["phash"], other["phash"]), other["key"])
            for other in hashed
            if other["checksum"] != row["checksum"]
            and hamming(row["phash"], other["phash"]) <= max_distance
        )
        if near:
            result[row["key"]] = (near[0][1], near[0][0], len(near))
    return result


def found_near_duplicates(near: pd.DataFrame) -> dict[str, tuple[str, int, int]]:
    return {
        key: (closest, distance, count)
        for key, closest, distance, count in zip(
            near.key, near.closest, near.distance, near.near_duplicates, strict=True
        )
    }


def test_near_duplicates_name_each_images_closest_and_count_them_excluding_exact_copies(
    tables: dict,
) -> None:
    near = tables["near_duplicates"]
    found = found_near_duplicates(near)
    assert found == near_duplicates_of(ROWS, CONFIG.near_duplicate_distance)
    assert found["ingest/carol/sky1.jpg"] == ("ingest/carol/sky2.jpg", 1, 1)  # high-bit hashes
    assert found["ingest/bob/dog-on-grass.png"][1:] == (5, 1)
    # Distance 8 is above the threshold of 6; the exact copy is not a near duplicate.
    assert "ingest/bob/dog-on-grass.png" not in {
        closest for key, (closest, _, _) in found.items() if key.endswith("cat-and-dog.jpg")
    }
    assert list(near.distance) == sorted(near.distance)


def test_near_duplicates_of_a_large_burst_are_one_row_per_image(
    spark: SparkSession, tmp_path: Path
) -> None:
    # 300 frames of one scene (one hash, 3 exact copies among them), 40 of a scene 2 bits
    # away, copies of a content alone in its hash, and an unrelated picture: ~58,000 pairs,
    # 343 rows.
    rows = [
        image_row(f"ingest/burst/a{i:03d}.jpg", f"sha256:a{i}", phash="00000000ffff0000")
        for i in range(300)
    ]
    rows += [
        image_row(f"ingest/burst/copy{i}.jpg", "sha256:a7", phash="00000000ffff0000")
        for i in range(3)
    ]
    rows += [
        image_row(f"ingest/burst/b{i:02d}.jpg", f"sha256:b{i}", phash="00000000ffff0003")
        for i in range(40)
    ]
    rows += [
        image_row(f"ingest/lone/c{i}.jpg", "sha256:c", phash="ffffffff00000000") for i in range(2)
    ]
    rows.append(image_row("ingest/other.jpg", "sha256:d", phash="0f0f0f0f0f0f0f0f"))
    store = LocalStore(tmp_path)
    write_collection(spark, store, rows, [])
    register_views(spark, load_images(spark, store), load_quarantine(spark, store))
    near = run_query(spark, "near_duplicates", query_parameters(CONFIG)).toPandas()
    found = found_near_duplicates(near)
    assert found == near_duplicates_of(rows, CONFIG.near_duplicate_distance)
    assert len(found) == 343
    # a007 and its 3 copies: 303 frames of the scene less 4 of this content, plus 40.
    assert found["ingest/burst/copy0.jpg"] == ("ingest/burst/a000.jpg", 0, 339)
    assert found["ingest/burst/a000.jpg"] == ("ingest/burst/a001.jpg", 0, 342)
    assert found["ingest/burst/b00.jpg"] == ("ingest/burst/b01.jpg", 0, 342)


def test_near_duplicates_compare_hashes_whatever_their_case(
    spark: SparkSession, tmp_path: Path
) -> None:
    # A table written by another producer may spell its hex digits in upper case: the same
    # hash either way, reported in lower case.
    rows = [
        image_row("ingest/a.jpg", "sha256:a", phash="ABCDEF0123456789"),
        image_row("ingest/b.jpg", "sha256:b", phash="abcdef0123456789"),
        image_row("ingest/c.jpg", "sha256:c", phash="abcdef012345678B"),
    ]
    store = LocalStore(tmp_path)
    write_collection(spark, store, rows, [])
    register_views(spark, load_images(spark, store), load_quarantine(spark, store))
    near = run_query(spark, "near_duplicates", query_parameters(CONFIG)).toPandas()

    assert found_near_duplicates(near) == {
        "ingest/a.jpg": ("ingest/b.jpg", 0, 2),
        "ingest/b.jpg": ("ingest/a.jpg", 0, 2),
        "ingest/c.jpg": ("ingest/a.jpg", 1, 2),
    }
    assert set(near.phash) == {"abcdef0123456789", "abcdef012345678b"}


def test_near_duplicate_threshold_comes_from_the_config(spark: SparkSession, root: Path) -> None:
    store = LocalStore(root)
    register_views(spark, load_images(spark, store), load_quarantine(spark, store))
    params = query_parameters(CONFIG.with_overrides(near_duplicate_distance=1))
    near: pd.DataFrame = run_query(spark, "near_duplicates", params).toPandas()
    assert list(zip(near["key"], near["closest"], strict=True)) == [
        ("ingest/carol/sky1.jpg", "ingest/carol/sky2.jpg"),
        ("ingest/carol/sky2.jpg", "ingest/carol/sky1.jpg"),
    ]


def test_quarantine_reasons_are_counted_and_listed(tables: dict) -> None:
    records = sample_quarantine()
    reasons = tables["quarantine_reasons"]
    assert as_dict(reasons, "reason", "objects") == dict(Counter(r.reason for r in records))
    listed = tables["quarantine_list"]
    assert sorted(listed["key"]) == sorted(r.key for r in records)
    assert as_dict(listed, "key", "message")["ingest/empty.jpg"] == "the file is empty"


def test_gallery_has_every_image_once_and_exact_copies_share_one_entry(tables: dict) -> None:
    gallery = tables["gallery"]
    by_checksum: dict[str, set[str]] = {}
    for row in ROWS:
        by_checksum.setdefault(row["checksum"], set()).add(row["key"])
    assert sorted(gallery["checksum"]) == sorted(by_checksum)
    for checksum, keys in zip(gallery["checksum"], gallery["keys"], strict=True):
        assert set(keys) == by_checksum[checksum]
    blank = gallery[gallery["checksum"] == "sha256:6666"].iloc[0]
    assert list(blank["labels"]) == [] and blank["thumbnail_key"]


def test_gallery_entries_list_labels_by_confidence_creators_and_quality_flags(
    tables: dict,
) -> None:
    gallery = tables["gallery"].set_index("checksum")
    assert list(gallery.loc["sha256:aaaa", "labels"]) == ["Cat", "Dog"]
    assert list(gallery.loc["sha256:aaaa", "creators"]) == ["alice", "bob"]
    assert list(gallery.loc["sha256:cccc", "flags"]) == ["blurry", "dark"]
    assert list(gallery.loc["sha256:dddd", "flags"]) == ["overexposed"]
    assert gallery.loc["sha256:9999", "process_error"]


def test_quality_flags_name_their_images(tables: dict) -> None:
    keys = as_dict(tables["quality"], "flag", "keys")
    assert keys["blurry"] == keys["dark"] == "ingest/bob/dog-on-grass.png"
    assert keys["overexposed"] == "ingest/carol/sky1.jpg"
    assert keys["unmeasured"] == "ingest/dave/broken.jpg"


def test_empty_inputs_produce_empty_tables(spark: SparkSession, tmp_path: Path) -> None:
    result = run_analyze(spark, str(tmp_path), "empty", CONFIG)
    assert set(result) == set(ANALYSES)
    assert all(result[name].empty for name in ANALYSES if name != "overview")
    assert result["overview"].iloc[0]["images"] == 0
    stored = pd.read_parquet(
        io.BytesIO(LocalStore(tmp_path).get_bytes("reports/empty/tables/top_labels.parquet"))
    )
    assert list(stored.columns) == ["label", "images", "mean_confidence"]


def test_main_runs_the_job_from_command_line_arguments(root: Path) -> None:
    code = main(["--root", root.as_uri(), "--run-id", "from-cli", "--top-n", "2"])
    assert code == 0
    top = pd.read_csv(root / "reports" / "from-cli" / "tables" / "top_labels.csv")
    assert list(top["label"]) == ["Cat", "Dog"]


def test_run_id_with_a_slash_is_rejected(spark: SparkSession, root: Path) -> None:
    with pytest.raises(ValueError, match="one path segment"):
        run_analyze(spark, str(root), "../escape", CONFIG)


def test_each_analysis_runs_as_one_spark_job(spark: SparkSession, root: Path) -> None:
    # A Spark job costs scheduling time (more in a young JVM) whatever its size: the 18
    # analyses once took ~117 jobs (adaptive execution, broadcast joins, scalar subqueries).
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup(None))
    run_analyze(spark, str(root), "run-jobs", CONFIG)
    # One more: counting the image table (which fills its cache) picks the evaluation mode.
    assert len(set(tracker.getJobIdsForGroup(None)) - before) <= len(ANALYSES) + 1


def test_small_tables_are_analyzed_interpreted_with_the_same_results(
    spark: SparkSession,
    root: Path,
    tables: dict[str, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import analysis.analyze as analyze

    assert len(ROWS) <= analyze.INTERPRETED_MAX_ROWS  # ``tables`` ran interpreted
    monkeypatch.setattr(analyze, "INTERPRETED_MAX_ROWS", -1)  # generated code, as for large ones
    generated = run_analyze(spark, str(root), "run-generated", CONFIG)

    assert sorted(generated) == sorted(tables)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, generated[name], obj=name)


def test_analyze_restores_the_session_settings_it_changes(spark: SparkSession, root: Path) -> None:
    # The session is shared with the process stage (and, here, the other tests).
    keys = (
        "spark.sql.adaptive.enabled",
        "spark.sql.autoBroadcastJoinThreshold",
        "spark.sql.shuffle.partitions",
    )
    spark.conf.set("spark.sql.adaptive.enabled", "true")
    spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")  # Spark's default
    before = {key: spark.conf.get(key) for key in keys}
    run_analyze(spark, str(root), "run-settings", CONFIG)
    assert {key: spark.conf.get(key) for key in keys} == before


def test_a_mean_confidence_on_a_rounding_tie_rounds_half_up(
    spark: SparkSession, tmp_path: Path
) -> None:
    # 667 images with Coffee at 95.465: the mean is 95.465, which rounds to 95.47. A sum of
    # the 667 doubles in one partition lands just below (95.4649...) and would round to 95.46.
    rows = [
        image_row(f"ingest/coffee/{n}.jpg", f"{n:064x}", labels=[label("Coffee", 95.465)])
        for n in range(667)
    ]
    write_collection(spark, LocalStore(tmp_path), rows, [])
    top = run_analyze(spark, str(tmp_path), "tie", CONFIG)["top_labels"]
    assert as_dict(top, "label", "mean_confidence") == {"Coffee": 95.47}
