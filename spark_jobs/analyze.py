"""EMR Serverless entry point of the analyze stage (:func:`analysis.analyze.run_analyze`).

Run as ``analyze.py --root s3://BUCKET --run-id RUN_ID [--top-n 20 ...]``; prints each result
table's row count as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from analysis.analyze import run_analyze
from imgpipe.jobs import JobArgs, run_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def analyze(spark: SparkSession, args: JobArgs) -> dict[str, int]:
    """Each result table's row count."""
    tables = run_analyze(spark, args.root, args.run, args.config)
    return {name: len(frame) for name, frame in tables.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the job's arguments, run the stage, return the exit status."""
    return run_job("analyze", argv, analyze)


if __name__ == "__main__":
    raise SystemExit(main())
