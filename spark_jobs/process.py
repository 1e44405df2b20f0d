"""EMR Serverless entry point of the process stage (:func:`imgpipe.process.stage.run_process`).

Run as ``process.py --root s3://BUCKET [--thumbnail-size 512 ...]``; prints the counts as JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from imgpipe.jobs import JobArgs, run_job
from imgpipe.process.stage import run_process

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def process(spark: SparkSession, args: JobArgs) -> dict[str, int]:
    """The stage's counts: table rows, processed, failed and decoded images."""
    return run_process(spark, args.root, args.config)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the job's arguments, run the stage, return the exit status."""
    return run_job("process", argv, process)


if __name__ == "__main__":
    raise SystemExit(main())
