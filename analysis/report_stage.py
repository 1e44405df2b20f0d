"""The report stage: a run's result tables -> chart PNGs, ``index.html`` and ``summary.json``.

The analyze stage leaves ``reports/RUN_ID/tables/*.parquet``; this stage reads those small tables
through the store (pandas, no Spark work), draws the charts, writes the page, and writes the run
summary (:func:`summary_from_tables`), all under ``reports/RUN_ID/``. The EMR entry point
(``spark_jobs/report.py``) calls :func:`run_report`; the local runner builds its report from
the tables it already holds, with its own richer summary.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from analysis import report_prefix, tables_prefix
from analysis.report import build_report, load_tables
from imgpipe.config import PipelineConfig
from imgpipe.store import Store, open_store

log = logging.getLogger(__name__)


class MissingTablesError(FileNotFoundError):
    """The run has no result tables: the analyze job has not run for it."""


def _overview_count(overview: pd.DataFrame | None, column: str) -> int:
    if overview is None or overview.empty or column not in overview.columns:
        return 0
    value = overview[column].iloc[0]
    return 0 if pd.isna(value) else int(value)


def summary_from_tables(run_id: str, tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """The run summary from the analyze job's ``overview`` table.

    It has the fields of the local run's :class:`imgpipe.runner.RunSummary` that a cloud run
    knows: ``run_id``, the five counts and ``stages``.

    In the cloud, ingest happens object by object in the Lambda, so a run knows its inputs only
    from what the table and the quarantine hold: ``accepted`` is the table's images,
    ``quarantined`` the quarantine records, ``processed`` the images decoded without error.
    Nothing is skipped as unchanged within a cloud run (the Lambda's label cache works per
    object, outside any run), and the stage timings of the other jobs live in Step Functions.
    """
    overview = tables.get("overview")
    images = _overview_count(overview, "images")
    quarantined = _overview_count(overview, "quarantined")
    return {
        "run_id": run_id,
        "inputs": images + quarantined,
        "accepted": images,
        "quarantined": quarantined,
        "processed": images - _overview_count(overview, "process_errors"),
        "skipped_unchanged": 0,
        "stages": {},
    }


def _write_summary(store: Store, run_id: str, summary: Mapping[str, Any]) -> None:
    store.put_bytes(
        f"{report_prefix(run_id)}summary.json",
        json.dumps(summary, indent=2, ensure_ascii=False).encode("utf-8"),
        "application/json",
    )


def run_report(root: str, run_id: str, config: PipelineConfig) -> str:
    """Build the report of run ``run_id`` from its stored tables; return the index's key.

    Args:
        root: The store root: ``s3://BUCKET``, ``file:///path`` or a local path.
        run_id: The run whose ``reports/RUN_ID/tables/`` the analyze job wrote.
        config: The pipeline config; accepted like every job's, though the report's layout
            depends only on the tables (``top_n`` already shaped them).

    Raises:
        MissingTablesError: If the run has no tables (analyze has not run for it).
    """
    del config  # the tables already carry every config-dependent choice
    store = open_store(root)
    tables = load_tables(store, run_id)
    if not tables:
        raise MissingTablesError(
            f"no result tables under {store.uri(tables_prefix(run_id))}: "
            f"run the analyze job for run {run_id!r} first"
        )
    summary = summary_from_tables(run_id, tables)
    key = build_report(store, run_id, tables, summary)  # adds the report stage's row
    summary["report"] = key
    _write_summary(store, run_id, summary)
    log.info("report: %s", store.uri(key))
    return key
