"""The local run's stages after ingest: process, analyze and report in one SparkSession, or
the report alone from an earlier run's tables when nothing changed (:func:`reuse_analysis`).

Part of the local runner's composition root (:mod:`imgpipe.runner`): it reaches into
``analysis`` as the runner does.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from imgpipe.config import PipelineConfig
from imgpipe.progress import ProgressReporter
from imgpipe.rerun import Reusable, copy_tables
from imgpipe.spark import INTERPRETED
from imgpipe.store import LocalStore

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from imgpipe.runner import RunSummary


def reuse_analysis(
    store: LocalStore,
    summary: RunSummary,
    reusable: Reusable,
    progress: ProgressReporter,
    timed: Callable[[str, int], None],
) -> None:
    """Write this run's report from the tables of a run over the same records: no Spark."""
    from analysis.report import build_report

    counts = reusable.counts
    summary.reused_analysis_of = reusable.run_id
    summary.processed = counts["processed"]
    note = f"nothing changed since run {reusable.run_id}: its analysis reused"
    timed("process", counts["records"])
    summary.stages["process"].update(decoded=0, reused=counts["records"], note=note)
    copy_tables(store, reusable.run_id, summary.run_id)
    timed("analyze", 0)
    summary.stages["analyze"]["note"] = note
    with progress.stage("report"):
        summary.report = build_report(
            store, summary.run_id, None, summary.to_dict(), charts_of=reusable.run_id
        )
    timed("report", int(summary.stages.get("report", {}).get("images", 0)))


def _preload(module: str) -> None:
    """Import ``module`` ahead of use; a failure is left for the real import to report."""
    with contextlib.suppress(ImportError):
        importlib.import_module(module)


# The process stage's shuffles are a few small ones (records by checksum, the features join):
# adaptive execution has nothing to re-plan there, yet it runs each shuffle stage as a job of
# its own. Off for the local run's process stage only (a cold 120-photo run: 13 jobs -> 4);
# the EMR job keeps the session's settings. Its JVM side moves one row per record (the pixels
# stay in the Python workers), so expressions are evaluated interpreted, as analyze does for
# small tables: compiling Java for each plan costs a young JVM more than running it (cold
# 120-photo stage, JVM CPU 6.7-7.2 -> 5.4-6.2 s, load 4-6).
LOCAL_PROCESS_SQL = {"spark.sql.adaptive.enabled": "false", **INTERPRETED}


def analyze_with_spark(
    spark: SparkSession,
    store: LocalStore,
    config: PipelineConfig,
    summary: RunSummary,
    progress: ProgressReporter,
    timed: Callable[[str, int], None],
    records: str,
) -> None:
    """The process, analyze and report stages in one SparkSession.

    ``records`` is the records' fingerprint the runner just took: the process stage needs it
    and need not read every record again.
    """
    # Imported here: pyspark is slow to import and the CLI's usage errors should be instant.
    from analysis.analyze import run_analyze
    from analysis.report import build_report
    from imgpipe.process.stage import run_process
    from imgpipe.spark import session_settings

    root = store.uri()
    with progress.stage("process"), session_settings(spark, LOCAL_PROCESS_SQL):
        counts = run_process(spark, root, config, fingerprint=records)
        summary.processed = counts["processed"]
        timed("process", counts["records"])
        # Every row of the table was either decoded by this run or reused from earlier work
        # (an earlier run, or an exact copy of content decoded once).
        summary.stages["process"]["decoded"] = counts["decoded"]
        summary.stages["process"]["reused"] = counts["records"] - counts["decoded"]
    # The charts' imports (matplotlib, seaborn, scipy: seconds) load while Spark analyzes:
    # its small queries leave a core partly idle, and the main thread only waits on the JVM.
    charts = threading.Thread(target=_preload, args=("analysis.charts",), daemon=True)
    charts.start()
    with progress.stage("analyze"):
        tables = run_analyze(spark, root, summary.run_id, config)
        timed("analyze", int(counts.get("records", 0)))
    charts.join()
    with progress.stage("report"):
        # build_report adds the report stage's row to summary.stages (the same dict); its
        # seconds are then the runner's, which include writing the page.
        report = build_report(store, summary.run_id, tables, summary.to_dict())
        summary.report = report
        timed("report", int(summary.stages.get("report", {}).get("images", 0)))


def save_class_archive(
    spark: SparkSession, progress: ProgressReporter, summary: RunSummary, lap: Callable[[], float]
) -> None:
    """On the installation's first run: let the JVM write its class archive, and wait for it."""
    from imgpipe.spark import archive_in_progress, finish_class_archive

    if not archive_in_progress():
        return
    progress.info("saving Spark's class archive for faster starts (once per installation)")
    finish_class_archive(spark)
    summary.overheads["class_archive"] = lap()
