"""Operator commands for the deployed pipeline: ``imgpipe aws upload | run | report | check``.

Everything is found from the CloudFormation stack's outputs (``BucketName``,
``StateMachineArn``, ...), so the user names at most the stack. Problems an operator can fix (no
stack, no credentials, no report yet) are :class:`OpsError` with a one-line message.
"""

from __future__ import annotations

import hashlib
import html
import json
import mimetypes
import posixpath
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from imgpipe.aws_clients import RETRY_CONFIG
from imgpipe.deployment import (
    OUTPUT_BUCKET,
    OUTPUT_DEAD_LETTER_QUEUE,
    OUTPUT_INGEST_FUNCTION,
    OUTPUT_INGEST_LOG_GROUP,
    OUTPUT_INGEST_QUEUE,
    OUTPUT_STATE_MACHINE,
)
from imgpipe.localfs import scan_inputs
from imgpipe.progress import ProgressReporter
from imgpipe.records import INGEST_PREFIX, REPORTS_PREFIX, THUMBNAILS_PREFIX, new_run_id
from imgpipe.s3_events import encode_metadata_text
from imgpipe.store import LocalStore, S3Store

if TYPE_CHECKING:  # the stubs are a dev dependency
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_stepfunctions.type_defs import HistoryEventTypeDef

DEFAULT_STACK = "Imgpipe"
POLL_SECONDS = 5.0
# No client-side checksum on upload, so S3 gives each object a full-object CRC64NVME: the
# content identity the ingest Lambda reads with a HEAD instead of downloading the image.
# (botocore's default would send CRC32, and S3 would then keep only that.)
UPLOAD_CONFIG = RETRY_CONFIG.merge(Config(request_checksum_calculation="when_required"))
_REFERENCE = re.compile(r'(?:src|href)="([^"#?]+)"')


class OpsError(Exception):
    """A problem the operator can fix; the message is one line to print."""


class RunFailed(OpsError):
    """A pipeline execution ended without success; the message names the step and cause."""


@dataclass(frozen=True)
class StackOutputs:
    """What the commands need from the deployed stack."""

    stack: str
    bucket: str
    state_machine_arn: str
    ingest_queue_url: str | None = None
    dead_letter_queue_url: str | None = None
    ingest_function: str | None = None
    ingest_log_group: str | None = None


@dataclass(frozen=True)
class UploadSummary:
    uploaded: int
    skipped: int
    uploaded_bytes: int


@contextmanager
def aws_errors(stack: str) -> Iterator[None]:
    """Turn the AWS errors an operator meets into one-line :class:`OpsError` messages."""
    try:
        yield
    except NoCredentialsError as exc:
        raise OpsError("no AWS credentials found: run 'aws configure' or set AWS_PROFILE") from exc
    except NoRegionError as exc:
        raise OpsError("no AWS region set: use --region or set AWS_REGION") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            raise OpsError(
                f"stack {stack!r} not found in this account/region: deploy it first "
                "(npx aws-cdk deploy) or pass --stack/--region"
            ) from exc
        raise OpsError(f"AWS {error.get('Code', 'error')}: {error.get('Message', exc)}") from exc
    except BotoCoreError as exc:
        raise OpsError(f"AWS request failed: {exc}") from exc


def stack_outputs(cloudformation: CloudFormationClient, stack: str = DEFAULT_STACK) -> StackOutputs:
    """Read the bucket and state machine from the stack's outputs."""
    (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    missing = [name for name in (OUTPUT_BUCKET, OUTPUT_STATE_MACHINE) if name not in outputs]
    if missing:
        raise OpsError(f"stack {stack!r} has no output {', '.join(missing)}: is it imgpipe's?")
    return StackOutputs(
        stack,
        outputs[OUTPUT_BUCKET],
        outputs[OUTPUT_STATE_MACHINE],
        outputs.get(OUTPUT_INGEST_QUEUE),
        outputs.get(OUTPUT_DEAD_LETTER_QUEUE),
        outputs.get(OUTPUT_INGEST_FUNCTION),
        outputs.get(OUTPUT_INGEST_LOG_GROUP),
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_directory(
    s3: S3Client,
    bucket: str,
    directory: Path,
    creator: str | None = None,
    progress: ProgressReporter | None = None,
) -> UploadSummary:
    """Upload every regular file below ``directory`` to ``ingest/<relative path>``.

    A file already there with the same size, SHA-256 and creator is skipped: re-running an
    upload sends only what changed (and triggers no new ingest).
    """
    if not directory.is_dir():
        raise OpsError(f"not a directory: {directory}")
    progress = progress or ProgressReporter()
    files = [entry for entry in scan_inputs(directory) if entry.regular]
    existing = {
        obj["Key"]: obj["Size"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=INGEST_PREFIX
        )
        for obj in page.get("Contents", ())
    }
    wanted_creator = encode_metadata_text(creator) if creator else None
    uploaded = skipped = sent = 0
    with progress.stage("upload", total=len(files)) as advance:
        for entry in files:
            digest = sha256_file(entry.path)
            metadata = {"sha256": digest} | ({"creator": wanted_creator} if wanted_creator else {})
            if existing.get(entry.key) == entry.size and _same(s3, bucket, entry.key, metadata):
                skipped += 1
            else:
                content_type = mimetypes.guess_type(entry.path.name)[0]
                extra = {"Metadata": metadata, "ContentType": content_type or "binary/octet-stream"}
                s3.upload_file(str(entry.path), bucket, entry.key, ExtraArgs=extra)
                uploaded, sent = uploaded + 1, sent + entry.size
            advance(1)
    return UploadSummary(uploaded, skipped, sent)


def _same(s3: S3Client, bucket: str, key: str, metadata: dict[str, str]) -> bool:
    return dict(s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})) == metadata


def start_run(sfn: SFNClient, state_machine_arn: str) -> tuple[str, str]:
    """Start an execution named after a new run id; returns the run id and execution ARN.

    The execution input is ``{"run_id": RUN_ID}``: the state machine writes
    ``reports/RUN_ID/`` and returns ``report_uri`` in its output.
    """
    base = new_run_id()
    for attempt in range(1, 100):
        run_id = base if attempt == 1 else f"{base}-{attempt}"
        # Asked first because Step Functions answers a repeated name and input with the
        # running execution instead of an error: a second run must not silently join it.
        if _execution_exists(sfn, state_machine_arn, run_id):
            continue
        try:
            response = sfn.start_execution(
                stateMachineArn=state_machine_arn, name=run_id, input=json.dumps({"run_id": run_id})
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
                continue  # started by someone else in the same second
            raise
        return run_id, response["executionArn"]
    raise OpsError(f"could not find a free execution name for run {base}")


def _execution_exists(sfn: SFNClient, state_machine_arn: str, name: str) -> bool:
    arn = state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"
    try:
        sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return False
        raise
    return True


def _history(sfn: SFNClient, execution_arn: str) -> list[HistoryEventTypeDef]:
    """The execution's events, oldest first."""
    events: list[HistoryEventTypeDef] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return sorted(events, key=lambda event: int(event["id"]))


def current_step(events: Sequence[Mapping[str, Any]]) -> str | None:
    """The state most recently entered, from events oldest first."""
    for event in reversed(events):
        if event["type"].endswith("StateEntered"):
            return str(event["stateEnteredEventDetails"]["name"])
    return None


def describe_failure(events: Sequence[Mapping[str, Any]], status: Mapping[str, Any]) -> str:
    """Which step failed and why, from an execution's events (oldest first).

    The step is the state entered before the first failure: a caught error runs on through
    a failure path (notify, then Fail), whose states are not the culprit.
    """
    step, details = None, {}
    for event in events:
        found = next(
            (
                v
                for k, v in event.items()
                if k.endswith(("FailedEventDetails", "TimedOutEventDetails"))
            ),
            None,
        )
        if found is not None:
            details = found
            break
        if event["type"].endswith("StateEntered"):
            step = event["stateEnteredEventDetails"]["name"]
    error = status.get("error") or details.get("error") or status["status"]
    cause = " ".join(str(status.get("cause") or details.get("cause") or "").split())[:300]
    return f"step {step or '?'!r} failed: {error}" + (f": {cause}" if cause else "")


def report_uri_of(output: str | None) -> str | None:
    """The ``report_uri`` in an execution's output (at the top level or one level down)."""
    try:
        data = json.loads(output or "{}")
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("report_uri"), str):
        return str(data["report_uri"])
    nested = (v["report_uri"] for v in data.values() if isinstance(v, dict) and "report_uri" in v)
    return next(nested, None)


def wait_for_run(
    sfn: SFNClient,
    execution_arn: str,
    progress: ProgressReporter,
    poll_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Poll until the execution ends, telling each step as it starts; the report URI.

    Raises:
        RunFailed: The execution failed, timed out or was aborted (names step and cause).
    """
    shown: str | None = None
    while True:
        status = sfn.describe_execution(executionArn=execution_arn)
        events = _history(sfn, execution_arn)
        step = current_step(events)
        if step and step != shown:
            progress.info(f"step: {step}")
            shown = step
        if status["status"] == "SUCCEEDED":
            return report_uri_of(status.get("output"))
        if status["status"] != "RUNNING":
            raise RunFailed(describe_failure(events, status))
        sleep(POLL_SECONDS if poll_seconds is None else poll_seconds)


def find_report(s3: S3Client, bucket: str, run_id: str | None = None) -> str:
    """The run id of the newest report, or check that ``run_id`` has one."""
    store = S3Store(bucket, s3)
    if run_id is not None:
        if not store.exists(f"{REPORTS_PREFIX}{run_id}/index.html"):
            raise OpsError(f"no report for run {run_id!r} in s3://{bucket}/{REPORTS_PREFIX}")
        return run_id
    runs = sorted(
        key[len(REPORTS_PREFIX) :].split("/")[0]
        for key in store.list_keys(REPORTS_PREFIX)
        if key.count("/") == 2 and key.endswith("/index.html")
    )
    if not runs:
        raise OpsError(f"no report yet in s3://{bucket}/{REPORTS_PREFIX}: run 'imgpipe aws run'")
    return runs[-1]


def download_report(s3: S3Client, bucket: str, run_id: str, target: Path) -> Path:
    """Copy ``reports/RUN/`` and the thumbnails its page shows into ``target``.

    ``target`` is laid out like the bucket, so the page's relative links work offline.

    Returns:
        The path of the downloaded ``index.html``.
    """
    source, local = S3Store(bucket, s3), LocalStore(target)
    prefix = f"{REPORTS_PREFIX}{run_id}/"
    for key in source.list_keys(prefix):
        local.put_bytes(key, source.get_bytes(key))
    page = local.path(f"{prefix}index.html")
    for reference in _REFERENCE.findall(page.read_text(encoding="utf-8")):
        key = posixpath.normpath(posixpath.join(prefix, unquote(html.unescape(reference))))
        if key.startswith(THUMBNAILS_PREFIX) and not local.exists(key) and source.exists(key):
            local.put_bytes(key, source.get_bytes(key))
    return page


def main(args: Any, progress: ProgressReporter | None = None) -> int:
    """Run ``imgpipe aws upload|run|report|check`` from parsed arguments; the exit status.

    Output for scripts (the report URI, the downloaded path) goes to stdout, progress to
    stderr.
    """
    progress = progress or ProgressReporter()
    session = boto3.session.Session(region_name=args.region)
    with aws_errors(args.stack):
        stack = stack_outputs(session.client("cloudformation", config=RETRY_CONFIG), args.stack)
        if args.aws_command == "upload":
            s3 = session.client("s3", config=UPLOAD_CONFIG)
            done = upload_directory(s3, stack.bucket, args.directory, args.creator, progress)
            print(
                f"uploaded {done.uploaded} files ({done.uploaded_bytes / 1e6:.1f} MB) to "
                f"s3://{stack.bucket}/{INGEST_PREFIX}, {done.skipped} unchanged skipped"
            )
            return 0
        if args.aws_command == "check":
            from imgpipe import aws_check

            return aws_check.main(session, stack, args.timeout, progress)
        if args.aws_command == "run":
            sfn = session.client("stepfunctions", config=RETRY_CONFIG)
            run_id, execution_arn = start_run(sfn, stack.state_machine_arn)
            print(f"run {run_id} started: {execution_arn}")
            if args.wait:
                report = wait_for_run(sfn, execution_arn, progress)
                print(f"report: {report or 'the run succeeded without a report_uri output'}")
            return 0
        s3 = session.client("s3", config=RETRY_CONFIG)
        run_id = find_report(s3, stack.bucket, args.run_id)
        if args.download is not None:
            page = download_report(s3, stack.bucket, run_id, args.download)
            print(f"report: {page}")
        else:
            print(f"report: s3://{stack.bucket}/{REPORTS_PREFIX}{run_id}/index.html")
        return 0
