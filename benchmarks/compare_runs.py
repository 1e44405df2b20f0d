"""Compare two local runs' outputs as data: equal apart from the times they ran at.

    python benchmarks/compare_runs.py OUT_A OUT_B

Checks every metadata and quarantine record (JSON, fields named ``*_at`` left out), the image
table (``processed/images``, rows sorted by key, ``*_at`` columns left out), every thumbnail
(bytes), each run's result tables (``reports/RUN_ID/tables/*.parquet`` of the newest run in
each; ``*_at`` columns left out) and the summaries' counts (times and durations left out).
Prints what differs; exits 1 when anything does, 0 when the runs hold the same data. For
refactors that must not change behaviour.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

# What differs between any two runs (the time it ran at, how long it took), not what it computed.
# The inputs' fingerprint includes a digest of the analysis code: a refactor changes it.
SUMMARY_TIMING = ("run_id", "report", "overheads", "wall_seconds", "inputs_fingerprint")


def _timeless(value: Any) -> Any:
    """``value`` without the fields named ``*_at`` (at any depth)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if not k.endswith("_at")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _files(root: Path, folder: str, pattern: str) -> dict[str, Path]:
    base = root / folder
    return {p.relative_to(root).as_posix(): p for p in sorted(base.rglob(pattern)) if p.is_file()}


def compare_files(a: Path, b: Path, folder: str, pattern: str, as_json: bool) -> Iterator[str]:
    """Differences between the files matching ``pattern`` under ``folder`` of each run."""
    files_a, files_b = _files(a, folder, pattern), _files(b, folder, pattern)
    for name in sorted(files_a.keys() ^ files_b.keys()):
        yield f"{name}: only in {'A' if name in files_a else 'B'}"
    for name in sorted(files_a.keys() & files_b.keys()):
        if as_json:
            left = _timeless(json.loads(files_a[name].read_text(encoding="utf-8")))
            right = _timeless(json.loads(files_b[name].read_text(encoding="utf-8")))
        else:
            left, right = files_a[name].read_bytes(), files_b[name].read_bytes()
        if left != right:
            yield f"{name}: differs" + (f"\n  A: {left}\n  B: {right}" if as_json else "")


def _frame_difference(left: pd.DataFrame, right: pd.DataFrame) -> str | None:
    left = left.drop(columns=[c for c in left.columns if c.endswith("_at")])
    right = right.drop(columns=[c for c in right.columns if c.endswith("_at")])
    try:
        pd.testing.assert_frame_equal(left, right)
    except AssertionError as exc:
        return str(exc)
    return None


def compare_image_tables(a: Path, b: Path) -> Iterator[str]:
    """The Parquet image tables, rows sorted by key."""
    tables = [
        pd.read_parquet(root / "processed" / "images").sort_values("key", ignore_index=True)
        for root in (a, b)
    ]
    difference = _frame_difference(*tables)
    if difference:
        yield f"processed/images: {difference}"
    else:
        yield f"processed/images: {len(tables[0])} rows equal"


def newest_run(root: Path) -> Path:
    runs = sorted(p for p in (root / "reports").iterdir() if p.is_dir())
    if not runs:
        raise SystemExit(f"no run under {root / 'reports'}")
    return runs[-1]


def compare_reports(a: Path, b: Path) -> Iterator[str]:
    """The newest run's result tables (in report order, as written) and summary counts."""
    run_a, run_b = newest_run(a), newest_run(b)
    tables_a = {p.name: p for p in (run_a / "tables").glob("*.parquet")}
    tables_b = {p.name: p for p in (run_b / "tables").glob("*.parquet")}
    for name in sorted(tables_a.keys() ^ tables_b.keys()):
        yield f"reports tables {name}: only in {'A' if name in tables_a else 'B'}"
    equal = 0
    for name in sorted(tables_a.keys() & tables_b.keys()):
        difference = _frame_difference(
            pd.read_parquet(tables_a[name]), pd.read_parquet(tables_b[name])
        )
        if difference:
            yield f"reports tables {name}: {difference}"
        else:
            equal += 1
    yield f"reports tables: {equal} of {len(tables_a.keys() | tables_b.keys())} equal"
    summaries = [json.loads((run / "summary.json").read_text()) for run in (run_a, run_b)]
    for summary in summaries:
        for name in SUMMARY_TIMING:
            summary.pop(name, None)
        for stage in summary.get("stages", {}).values():
            stage.pop("seconds", None)
    if summaries[0] != summaries[1]:
        yield f"summary.json counts differ:\n  A: {summaries[0]}\n  B: {summaries[1]}"


def differences(a: Path, b: Path) -> tuple[list[str], list[str]]:
    """(differences, notes): every way the two runs' data differ, and what was found equal."""
    found: list[str] = []
    notes: list[str] = []
    for folder, pattern, as_json in (
        ("metadata", "*.json", True),
        ("quarantine", "*.json", True),
        ("processed/thumbnails", "*", False),
    ):
        diffs = list(compare_files(a, b, folder, pattern, as_json))
        found += diffs
        if not diffs:
            notes.append(f"{folder}: {len(_files(a, folder, pattern))} files equal")
    for line in [*compare_image_tables(a, b), *compare_reports(a, b)]:
        (notes if line.endswith("equal") else found).append(line)
    return found, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_a", type=Path)
    parser.add_argument("out_b", type=Path)
    args = parser.parse_args(argv)
    found, notes = differences(args.out_a, args.out_b)
    for line in notes:
        print(f"equal: {line}")
    for line in found:
        print(f"DIFFERS: {line}")
    print("the runs hold the same data" if not found else f"{len(found)} differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
