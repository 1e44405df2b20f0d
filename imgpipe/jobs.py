"""The Spark jobs' command lines, defined once.

The jobs parse their arguments with :func:`job_parser`, and the state machine passes what
:func:`job_arguments` produces, so the two cannot drift apart (a contract test runs the jobs
with exactly the arguments in the synthesized state machine). :func:`run_job` is the common part
of the three entry points in ``spark_jobs/``: parse, start the session, run one stage, report.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imgpipe.config import PipelineConfig, add_config_arguments, config_from_namespace
from imgpipe.records import (
    FEATURES_PREFIX,
    IMAGES_TABLE_PREFIX,
    METADATA_PREFIX,
    PROCESSED_PREFIX,
    QUARANTINE_PREFIX,
)
from imgpipe.store import open_store

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@dataclass(frozen=True)
class StorageCall:
    """One S3 request that Spark's own file system (EMRFS) makes in the job's bucket.

    The jobs' own reads and writes go through :class:`imgpipe.store.S3Store` and are recorded
    by the access rehearsal (``tests/infra/test_access_rehearsal.py``); what Spark lists, reads,
    writes, renames and probes cannot be recorded without a real EMR, so it is declared here,
    next to the arguments, and the rehearsal checks the job role allows it.

    Attributes:
        operation: The S3 API operation (``HeadObject``, ``ListObjectsV2``, ``CopyObject``...).
        key: The object key (the listing prefix for ``ListObjectsV2``); a representative
            example where the real one varies (part files, staging tokens).
        why: What Spark does with it.
        missing: Whether the key may not exist (a probe): S3 then answers 404 only to a
            caller with ``s3:ListBucket`` on the bucket, and 403 to anyone else.
    """

    operation: str
    key: str
    why: str
    missing: bool = False


def _reads_folder(prefix: str, example: str, why: str) -> tuple[StorageCall, ...]:
    """Hadoop's ``getFileStatus`` + recursive listing + reads of a folder that may be absent."""
    return (
        # The folder's own key is probed first (HEAD without the slash): it never exists, so S3
        # answers 404 only to a caller with s3:ListBucket (and 403 to anyone else).
        StorageCall("HeadObject", prefix.rstrip("/"), f"probe {prefix} ({why})", missing=True),
        StorageCall("ListObjectsV2", prefix, f"list {prefix} recursively ({why})"),
        StorageCall("GetObject", f"{prefix}{example}", f"read a file under {prefix} ({why})"),
    )


def _writes_table(folder: str, why: str) -> tuple[StorageCall, ...]:
    """A Parquet write through Spark's file output committer into ``folder``."""
    part = "part-00000-0a1b2c3d.snappy.parquet"
    temporary = f"{folder}_temporary/0/_temporary/attempt_0/{part}"
    return (
        StorageCall(
            "HeadObject", folder.rstrip("/"), f"probe the output path ({why})", missing=True
        ),
        StorageCall("ListObjectsV2", folder, f"check the output path is empty ({why})"),
        StorageCall("PutObject", temporary, f"task output ({why})"),
        StorageCall("AbortMultipartUpload", temporary, f"a failed task's upload ({why})"),
        StorageCall("CopyObject", f"{folder}{part}", f"commit: rename into place ({why})"),
        StorageCall("DeleteObject", temporary, f"commit: the rename's delete ({why})"),
        StorageCall("PutObject", f"{folder}_SUCCESS", f"the commit marker ({why})"),
    )


# write_parquet_atomically stages the table beside it and swaps it in (imgpipe.spark_io).
_STAGING = f"{PROCESSED_PREFIX}_staging/"
_STAGED_TABLE = f"{_STAGING}images-0123abcd/"
_PROCESS_STORAGE = (
    *_reads_folder(METADATA_PREFIX, "alice/a.jpg.json", "the image records"),
    *_reads_folder(FEATURES_PREFIX, "run=0/part-00000.parquet", "cached features"),
    *_writes_table(f"{FEATURES_PREFIX}run=0123abcd/", "new features"),
    StorageCall("HeadObject", _STAGING.rstrip("/"), "probe a killed run's staging", missing=True),
    StorageCall("ListObjectsV2", _STAGING, "find a killed run's staging folders"),
    *_writes_table(_STAGED_TABLE, "the staged image table"),
    StorageCall("HeadObject", IMAGES_TABLE_PREFIX.rstrip("/"), "is there a table", missing=True),
    StorageCall("CopyObject", f"{_STAGING}images-0123abcd-old/part-0.parquet", "move aside"),
    StorageCall("DeleteObject", f"{IMAGES_TABLE_PREFIX}part-0.parquet", "move aside"),
    StorageCall("CopyObject", f"{IMAGES_TABLE_PREFIX}part-0.parquet", "swap the table in"),
    StorageCall("DeleteObject", f"{_STAGED_TABLE}part-0.parquet", "swap the table in"),
    StorageCall("DeleteObject", f"{_STAGING}images-0123abcd-old/part-0.parquet", "drop old"),
)
_ANALYZE_STORAGE = (
    *_reads_folder(IMAGES_TABLE_PREFIX, "part-0.parquet", "the image table"),
    *_reads_folder(QUARANTINE_PREFIX, "junk.txt.json", "the quarantine records"),
)


@dataclass(frozen=True)
class JobSpec:
    """One Spark job: its entry module under ``spark_jobs/`` and whether it takes a run id.

    ``storage_access`` declares what Spark's file system does in the bucket for the job
    (:class:`StorageCall`); the job's own store calls are not repeated here.
    """

    name: str
    module: str
    description: str
    needs_run_id: bool
    storage_access: tuple[StorageCall, ...] = ()


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "process",
            "process",
            "Decode each recorded image once: thumbnails + table.",
            False,
            _PROCESS_STORAGE,
        ),
        JobSpec(
            "analyze",
            "analyze",
            "SparkSQL analyses over processed/images -> tables.",
            True,
            _ANALYZE_STORAGE,
        ),
        # pandas through the store only: the session is started, but Spark reads nothing.
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


@dataclass(frozen=True)
class JobArgs:
    """A job's parsed and validated arguments."""

    root: str
    run_id: str | None
    config: PipelineConfig

    @property
    def run(self) -> str:
        """The run id, for the jobs that take one (their parser requires it)."""
        if self.run_id is None:
            raise ValueError("this job takes no run id")
        return self.run_id


def parse_job_args(name: str, argv: Sequence[str] | None) -> JobArgs:
    """Job ``name``'s arguments; an unusable root or config exits with a one-line usage error."""
    parser = job_parser(name)
    args = parser.parse_args(argv)
    try:
        open_store(args.root)
        config = config_from_namespace(args)
    except ValueError as exc:
        parser.error(str(exc))
    return JobArgs(args.root, getattr(args, "run_id", None), config)


def run_job(
    name: str,
    argv: Sequence[str] | None,
    stage: Callable[[SparkSession, JobArgs], Mapping[str, Any]],
) -> int:
    """Run job ``name`` as an entry point: parse ``argv``, start the session, run ``stage``.

    The stage's result is printed as one JSON line (what the job did, for the driver's log).

    Returns:
        The exit status: 0 when the stage returned. A stage's exception propagates, so
        spark-submit reports the job as failed with its traceback.
    """
    from imgpipe.spark import job_session

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    args = parse_job_args(name, argv)
    spark = job_session(f"imgpipe-{name}")
    result = stage(spark, args)
    print(json.dumps(dict(result)))
    return 0


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
