"""Charts, the HTML report and the exploration notebook over a run's result tables.

A run's report lives under ``reports/RUN_ID/``: ``tables/NAME.{csv,parquet}`` written by the
analyze job, ``NAME.png`` charts and ``index.html`` written by the report step.
"""

from __future__ import annotations

from imgpipe.records import REPORTS_PREFIX


def report_prefix(run_id: str) -> str:
    """The key prefix of a run's report (``reports/RUN_ID/``).

    Raises:
        ValueError: If ``run_id`` is not a single safe path segment.
    """
    if not run_id or "/" in run_id or "\\" in run_id or run_id in {".", ".."}:
        raise ValueError(f"run id must be one path segment, got {run_id!r}")
    return f"{REPORTS_PREFIX}{run_id}/"


def tables_prefix(run_id: str) -> str:
    """The key prefix of a run's result tables (``reports/RUN_ID/tables/``)."""
    return f"{report_prefix(run_id)}tables/"
