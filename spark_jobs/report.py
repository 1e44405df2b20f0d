"""EMR Serverless entry point of the report stage (:func:`analysis.report_stage.run_report`).

Run as ``report.py --root s3://BUCKET --run-id RUN_ID [--top-n 20 ...]``; prints the report's
key as JSON. The stage does no Spark work, but spark-submit runs this as a Spark application's
driver, which is expected to start a SparkContext; the session is cheap next to the start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from analysis.report_stage import run_report
from imgpipe.jobs import JobArgs, run_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def report(spark: SparkSession, args: JobArgs) -> dict[str, str]:
    """The report's ``index.html`` key."""
    del spark  # the tables are small: pandas through the store
    return {"report": run_report(args.root, args.run, args.config)}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the job's arguments, run the stage, return the exit status."""
    return run_job("report", argv, report)


if __name__ == "__main__":
    raise SystemExit(main())
