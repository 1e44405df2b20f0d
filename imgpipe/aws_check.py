"""``imgpipe aws check``: the post-deploy self-test, one known photo through the whole pipeline.

It uploads a small JPEG under ``ingest/_imgpipe-check/``, waits for the ingest Lambda's record,
runs the state machine, confirms the report, and then removes what it added: the sample and
its record. The check's own report includes the sample; the next run's process stage sees
that a record disappeared (its inputs fingerprint changes) and rebuilds the image table
without it, so later reports do not. Nothing outside the check's prefixes is ever deleted,
and only the keys of this check's own sample.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

from imgpipe.aws_ops import (
    OpsError,
    RunFailed,
    StackOutputs,
    start_run,
    wait_for_run,
)
from imgpipe.deployment import CHECK_FOLDER
from imgpipe.progress import ProgressReporter
from imgpipe.records import (
    INGEST_PREFIX,
    METADATA_PREFIX,
    QUARANTINE_PREFIX,
    REPORTS_PREFIX,
    metadata_key,
    new_run_id,
    parse_live_record,
    quarantine_key,
)
from imgpipe.s3_events import encode_metadata_text
from imgpipe.store import S3Store

if TYPE_CHECKING:  # the stubs are a dev dependency
    from boto3.session import Session
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
    from mypy_boto3_stepfunctions import SFNClient

CHECK_PREFIX = f"{INGEST_PREFIX}{CHECK_FOLDER}"
# The only prefixes a delete may touch: the sample's and its two possible records'.
DELETABLE_PREFIXES = (
    CHECK_PREFIX,
    METADATA_PREFIX + CHECK_FOLDER,
    QUARANTINE_PREFIX + CHECK_FOLDER,
)
POLL_SECONDS = 5.0
CHECK_CREATOR = "imgpipe check"
# Rekognition needs at least 80 px per side; this size keeps the JPEG at a few KB.
SAMPLE_SIZE = (240, 160)
# List prices (us-east-1): DetectLabels $1 per 1,000 images; EMR Serverless on Graviton
# ~$0.042 per vCPU-hour and ~$0.0046 per GB-hour, billed per second with a one-minute minimum
# per worker: a driver and one executor for ~2 minutes per job is ~$0.015. Lambda, S3, SQS,
# DynamoDB and Step Functions requests add well under a cent.
CHECK_COST = (
    "about $0.05, approximate: at most one Rekognition DetectLabels call (~$0.001; none when "
    "an earlier check labeled this photo) and three short EMR Serverless job runs (~$0.015 "
    "each at list prices, more when the bucket already holds many images)"
)


class CheckFailed(OpsError):
    """The deployed pipeline failed the self-test; the message says what to look at."""


def pause(seconds: float) -> None:
    """How the check waits between polls (a seam for tests, which run the Lambda here)."""
    time.sleep(seconds)


def sample_jpeg() -> bytes:
    """The check's photo: scikit-image's cat when installed, else a generated photo-like image.

    Deterministic, so repeated checks send the same content: the label cache then spares the
    Rekognition call and the process stage's feature cache the decode.
    """
    try:
        from skimage import data

        image = Image.fromarray(data.chelsea())
    except ImportError:
        image = _generated_photo()
    buffer = io.BytesIO()
    image.resize(SAMPLE_SIZE, Image.Resampling.LANCZOS).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _generated_photo() -> Image.Image:
    """Smooth gradients and a disc: something a labeler can look at, without skimage."""
    import numpy as np

    width, height = SAMPLE_SIZE
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.stack(
        [127 + 100 * np.sin(x / width * k + y / height * (4 - k)) for k in (1.0, 2.0, 3.0)],
        axis=-1,
    )
    pixels[(x - width * 0.6) ** 2 + (y - height * 0.45) ** 2 < (height / 4) ** 2] = (200, 60, 40)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def new_sample_key() -> str:
    """A key of its own for this check's sample (timestamp for people, random part for races)."""
    return f"{CHECK_PREFIX}{new_run_id()}-{uuid4().hex[:8]}.jpg"


def require_check_key(key: str) -> None:
    """Refuse any key outside the check's prefixes: the check never deletes anything else.

    Raises:
        ValueError: ``key`` is not under a check prefix (a bug, never an operator error).
    """
    if not key.startswith(DELETABLE_PREFIXES) or "/../" in f"/{key}/":
        raise ValueError(f"refusing to delete {key!r}: not under {', '.join(DELETABLE_PREFIXES)}")


def upload_sample(s3: S3Client, bucket: str, key: str, data: bytes) -> None:
    """Put the sample as ``imgpipe aws upload`` would (the caller's client has UPLOAD_CONFIG)."""
    metadata = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "creator": encode_metadata_text(CHECK_CREATOR),
    }
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg", Metadata=metadata)


def wait_for_record(
    s3: S3Client,
    bucket: str,
    key: str,
    timeout: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
) -> tuple[str, dict[str, Any]] | None:
    """Poll for the ingest record of ``key``; its key and JSON, or ``None`` after ``timeout``."""
    store = S3Store(bucket, s3)
    deadline = clock() + timeout
    while True:
        for record_key in (metadata_key(key), quarantine_key(key)):
            record = parse_live_record(store.get_bytes_or_none(record_key))
            if record is not None:
                return record_key, record
        left = deadline - clock()
        if left <= 0:
            return None
        sleep(min(POLL_SECONDS, left))


def queue_depth(sqs: SQSClient, queue_url: str | None) -> tuple[str, str]:
    """Messages waiting and in flight ("?" when the queue is unknown or unreadable)."""
    if queue_url is None:
        return "?", "?"
    names: list[QueueAttributeNameType] = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
    ]
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
    except (ClientError, BotoCoreError):
        return "?", "?"  # the message is still useful without the numbers
    values = attributes.get("Attributes", {})
    return values.get(names[0], "?"), values.get(names[1], "?")


def no_record_message(sqs: SQSClient, stack: StackOutputs, key: str, timeout: float) -> str:
    """One line naming what to look at when the sample got no record in time."""
    waiting, in_flight = queue_depth(sqs, stack.ingest_queue_url)
    dead, _ = queue_depth(sqs, stack.dead_letter_queue_url)
    function = stack.ingest_function or "the ingest function"
    logs = f"log group {stack.ingest_log_group}" if stack.ingest_log_group else "log group"
    return (
        f"no record for s3://{stack.bucket}/{key} after {timeout:g}s: ingest queue {waiting} "
        f"waiting, {in_flight} in flight; dead-letter queue {dead}; look at the ingest "
        f"Lambda's {logs} and its Errors metric (AWS/Lambda, FunctionName {function})"
    )


def remove_check_objects(s3: S3Client, bucket: str, sample_key: str) -> list[str]:
    """Delete this check's sample and whichever of its records exist; the keys deleted."""
    store = S3Store(bucket, s3)
    records = [k for k in (metadata_key(sample_key), quarantine_key(sample_key)) if store.exists(k)]
    removed = []
    for key in [sample_key, *records]:
        require_check_key(key)
        s3.delete_object(Bucket=bucket, Key=key)
        removed.append(key)
    return removed


def run_check(
    s3: S3Client,
    sqs: SQSClient,
    sfn: SFNClient,
    stack: StackOutputs,
    timeout: float,
    progress: ProgressReporter,
    sleep: Callable[[float], None] = pause,
) -> str:
    """Run the self-test; the report URI. Removes the check's objects whatever the outcome.

    Raises:
        CheckFailed: No record in time, a quarantined sample, a failed run or no report.
    """
    key = new_sample_key()
    upload_sample(s3, stack.bucket, key, sample_jpeg())
    progress.info(f"check: uploaded s3://{stack.bucket}/{key}")
    try:
        uri = _follow(s3, sqs, sfn, stack, key, timeout, progress, sleep)
    except BaseException:
        _remove_after_failure(s3, stack.bucket, key, progress)
        raise
    try:
        removed = remove_check_objects(s3, stack.bucket, key)
    except (ClientError, BotoCoreError) as exc:
        raise CheckFailed(
            f"the pipeline works, but the check's objects could not be removed ({exc}): delete "
            f"s3://{stack.bucket}/{key} and its record yourself, or later reports include it"
        ) from exc
    progress.info(f"check: removed its {len(removed)} objects (later reports leave it out)")
    progress.info(f"check: passed; cost {CHECK_COST}")
    return uri


def _follow(
    s3: S3Client,
    sqs: SQSClient,
    sfn: SFNClient,
    stack: StackOutputs,
    key: str,
    timeout: float,
    progress: ProgressReporter,
    sleep: Callable[[float], None],
) -> str:
    progress.info(f"check: waiting up to {timeout:g}s for the ingest Lambda's record")
    found = wait_for_record(s3, stack.bucket, key, timeout, sleep)
    if found is None:
        raise CheckFailed(no_record_message(sqs, stack, key, timeout))
    record_key, record = found
    if record_key.startswith(QUARANTINE_PREFIX):
        message = " ".join(str(record.get("message", "")).split())[:300]  # one line
        raise CheckFailed(
            f"the sample was quarantined ({record_key}): {record.get('reason', '?')}: {message}"
        )
    labels = ", ".join(str(label.get("name")) for label in record.get("labels", [])[:5])
    progress.info(f"check: ingested, labels: {labels or 'none'}")
    run_id, execution_arn = start_run(sfn, stack.state_machine_arn)
    progress.info(f"check: run {run_id} started")
    try:
        wait_for_run(sfn, execution_arn, progress, sleep=sleep)
    except RunFailed as exc:
        raise CheckFailed(f"run {run_id}: {exc}") from exc
    report_key = f"{REPORTS_PREFIX}{run_id}/index.html"
    if not S3Store(stack.bucket, s3).exists(report_key):
        raise CheckFailed(f"run {run_id} succeeded but wrote no s3://{stack.bucket}/{report_key}")
    return f"s3://{stack.bucket}/{report_key}"


def _remove_after_failure(s3: S3Client, bucket: str, key: str, progress: ProgressReporter) -> None:
    """Clean up after a failed check without hiding why it failed."""
    try:
        remove_check_objects(s3, bucket, key)
    except (ClientError, BotoCoreError) as exc:
        progress.info(f"check: could not remove s3://{bucket}/{key} ({exc}): delete it yourself")


def main(session: Session, stack: StackOutputs, timeout: float, progress: ProgressReporter) -> int:
    """``imgpipe aws check``: the report URI to stdout; the exit status."""
    from imgpipe.aws_clients import RETRY_CONFIG
    from imgpipe.aws_ops import UPLOAD_CONFIG

    uri = run_check(
        session.client("s3", config=UPLOAD_CONFIG),
        session.client("sqs", config=RETRY_CONFIG),
        session.client("stepfunctions", config=RETRY_CONFIG),
        stack,
        timeout,
        progress,
        sleep=pause,  # looked up now, so a test may replace it
    )
    print(f"report: {uri}")
    return 0
