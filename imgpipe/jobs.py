"""The Spark jobs' command lines, defined once.

The jobs parse their arguments with :func:`job_parser`, and the state machine passes what
:func:`job_arguments` produces, so the two cannot drift apart (a contract test runs the jobs
with exactly the arguments in the synthesized state machine).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from imgpipe.config import PipelineConfig, add_config_arguments


@dataclass(frozen=True)
class JobSpec:
    """One Spark job: its entry module under ``spark_jobs/`` and whether it takes a run id."""

    name: str
    module: str
    description: str
    needs_run_id: bool


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "process", "process", "Decode each recorded image once: thumbnails + table.", False
        ),
        JobSpec("analyze", "analyze", "SparkSQL analyses over processed/images -> tables.", True),
        JobSpec("report", "report", "Charts and index.html from a run's tables.", True),
    )
}


def job_parser(name: str) -> argparse.ArgumentParser:
    """The argument parser of job ``name``."""
    spec = JOBS[name]
    parser = argparse.ArgumentParser(prog=spec.name, description=spec.description)
    parser.add_argument("--root", required=True, help="s3://BUCKET, file:///path or a local path")
    if spec.needs_run_id:
        parser.add_argument("--run-id", required=True, help="the run: reports/RUN_ID/")
    add_config_arguments(parser)
    return parser


def parse_job_args(name: str, argv: Sequence[str] | None) -> argparse.Namespace:
    return job_parser(name).parse_args(argv)


def job_arguments(name: str, root: str, run_id: str | None, config: PipelineConfig) -> list[str]:
    """The argument list that :func:`job_parser` of job ``name`` accepts.

    ``root`` and ``run_id`` may be deploy-time tokens or Step Functions intrinsics.
    """
    spec = JOBS[name]
    args = ["--root", root]
    if spec.needs_run_id:
        if run_id is None:
            raise ValueError(f"job {name!r} needs a run id")
        args += ["--run-id", run_id]
    return args + config.to_args()
