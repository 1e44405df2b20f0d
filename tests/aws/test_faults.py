"""Injected faults: Rekognition throttling and 5xx, DLQ and redrive, a Lambda killed
mid-batch, duplicate and concurrent delivery (with the label cache's claim: a claimant
killed or failing, the cache unavailable), a failed state-machine step, and a user's
Ctrl-C during a local run.

Every scenario ends with the "nothing lost" invariant (originals fingerprinted before the
run). The moto rig, handler invocation and client wrappers come from
``tests/aws/test_lambda_ingest.py``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import EndpointConnectionError

from app import build_app
from imgpipe.aws_clients import RETRY_CONFIG
from imgpipe.cloud_ingest import CloudIngester, IngestFailed
from imgpipe.config import PipelineConfig
from imgpipe.invariants import check_nothing_lost, fingerprint_originals
from imgpipe.label_cache import LabelCache
from imgpipe.labelers import LabelerOptions
from imgpipe.labelers.rekognition import RekognitionLabeler
from imgpipe.records import FEATURES_PREFIX
from imgpipe.store import S3Store
from tests.clirig import JVM_CHATTER, write_photos
from tests.imagefactory import jpeg_bytes, photo_like
from tests.lambdarig import (
    BUCKET,
    LABELS,
    TABLE,
    Rig,
    invoke,
    stubbed_rekognition,
    use,
)
from tests.repo import CONTEXT, REPO_ROOT

MAX_RECEIVE_COUNT = 3


def assert_nothing_lost(rig: Rig, originals: dict[str, str]) -> None:
    report = check_nothing_lost(S3Store(BUCKET, rig.s3), originals=originals)
    assert report.ok, report


def upload(rig: Rig, *names: str) -> dict[str, str]:
    """Upload one distinct photo per name under ``ingest/``; the originals' fingerprints."""
    for seed, name in enumerate(names):
        rig.put(f"ingest/{name}", jpeg_bytes(photo_like(200, 160, 100 + seed)))
    return fingerprint_originals(S3Store(BUCKET, rig.s3))


class Raw:
    """A raw HTTP body for :class:`AWSResponse`."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def failing_then_ok(code: str, status: int, failures: int) -> tuple[Any, list[int]]:
    """A real Rekognition client (the Lambda's retry config) whose first HTTP answers fail."""
    client = boto3.client("rekognition", config=RETRY_CONFIG)
    attempts: list[int] = []

    def answer(request: Any, **_: Any) -> Any:
        # Stands in for the HTTP exchange, so botocore's own retry logic sees each failure.
        attempts.append(status)
        body: dict[str, Any] = LABELS
        status_code = 200
        if len(attempts) <= failures:
            body, status_code = {"__type": code, "message": "injected"}, status
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.1"
        return AWSResponse(request.url, status_code, headers, Raw(json.dumps(body).encode()))

    client.meta.events.register("before-send.rekognition.DetectLabels", answer)
    return client, attempts


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("ProvisionedThroughputExceededException", 400),
        ("InternalServerError", 500),
        ("ServiceUnavailableException", 503),
    ],
)
def test_a_burst_of_throttling_or_5xx_is_retried_with_backoff_then_labeled(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, code: str, status: int
) -> None:
    client, attempts = failing_then_ok(code, status, failures=3)
    use(monkeypatch, rig, client)
    originals = upload(rig, "burst.jpg")

    assert invoke(rig.receive()) == []

    assert len(attempts) == 4  # three failures retried inside one invocation, then success
    assert rig.keys("metadata/") == ["metadata/burst.jpg.json"]
    assert_nothing_lost(rig, originals)


def test_lambda_clients_retry_adaptively_with_room_for_a_burst() -> None:
    # Adaptive: exponential backoff with jitter plus client-side rate limiting on throttles.
    retries: dict[str, Any] = RETRY_CONFIG.retries  # type: ignore[attr-defined]
    assert retries["mode"] == "adaptive"
    assert retries["total_max_attempts"] >= 4


def set_max_receive_count(rig: Rig, count: int) -> None:
    dlq_arn = rig.sqs.get_queue_attributes(QueueUrl=rig.dlq_url, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": count}
    rig.sqs.set_queue_attributes(
        QueueUrl=rig.queue_url, Attributes={"RedrivePolicy": json.dumps(redrive)}
    )


def redrive(rig: Rig) -> int:
    """What ``aws sqs start-message-move-task --source-arn DLQ_ARN`` does (moto 5 lacks it).

    Moves every dead letter back to the queue it came from; returns how many moved.
    """
    moved = 0
    while dead := rig.receive(rig.dlq_url):
        for message in dead:
            rig.sqs.send_message(QueueUrl=rig.queue_url, MessageBody=message["Body"])
            rig.sqs.delete_message(QueueUrl=rig.dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalServerError"])
def test_persistent_fault_reaches_the_dlq_and_redrive_then_ingests_it_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    set_max_receive_count(rig, MAX_RECEIVE_COUNT)
    # A Stubber answers without botocore's retries: each delivery is one failed call.
    failing, stubber = stubbed_rekognition(*[code] * MAX_RECEIVE_COUNT)
    use(monkeypatch, rig, failing)
    originals = upload(rig, "stuck.jpg")

    for _ in range(MAX_RECEIVE_COUNT):
        (message,) = rig.receive()
        assert invoke([message]) == [message["MessageId"]]  # back to the queue
        rig.sqs.change_message_visibility(
            QueueUrl=rig.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
        # Failed, so no record: the object is "in flight", not lost (it waits in SQS).
        assert rig.keys("metadata/") == rig.keys("quarantine/") == []
    assert rig.receive() == []  # the next receive moved it to the DLQ instead
    stubber.assert_no_pending_responses()

    assert redrive(rig) == 1
    healthy, _ = stubbed_rekognition("ok")
    use(monkeypatch, rig, healthy)
    assert invoke(rig.receive()) == []

    assert rig.keys("metadata/") == ["metadata/stuck.jpg.json"]
    assert len(failing.calls["detect_labels"]) == MAX_RECEIVE_COUNT
    assert len(healthy.calls["detect_labels"]) == 1
    assert rig.receive(rig.dlq_url) == []
    assert_nothing_lost(rig, originals)


class LambdaTimeout(BaseException):
    """Stands in for the runtime killing the function: no ``except Exception`` catches it."""


class DiesOnSecondCall:
    """DetectLabels that answers once, then "times out" the invocation on the next call."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def detect_labels(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request["Image"]["S3Object"]["Name"])
        if len(self.calls) == 2:
            raise LambdaTimeout("Task timed out")
        return LABELS


def test_lambda_killed_mid_batch_is_redelivered_without_duplicates_or_relabeling(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rekognition = DiesOnSecondCall()
    use(monkeypatch, rig, rekognition)
    originals = upload(rig, "first.jpg", "second.jpg")
    batch = rig.receive()
    assert len(batch) == 2

    with pytest.raises(LambdaTimeout):
        invoke(batch)
    # The first object was finished before the kill; the second left no trace.
    assert rig.keys("metadata/") == ["metadata/first.jpg.json"]
    first = rig.record("metadata/first.jpg.json")

    # A failed invocation returns the whole batch to the queue: both messages come again.
    assert invoke(batch) == []

    assert rig.keys("metadata/") == ["metadata/first.jpg.json", "metadata/second.jpg.json"]
    assert rig.keys("quarantine/") == []
    assert rekognition.calls.count("ingest/first.jpg") == 1  # reused, not relabeled
    assert rig.record("metadata/first.jpg.json")["ingested_at"] == first["ingested_at"]
    assert_nothing_lost(rig, originals)


def test_same_event_delivered_twice_writes_one_record_and_labels_once(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rekognition, _ = stubbed_rekognition("ok")  # a second call would find no answer
    use(monkeypatch, rig, rekognition)
    originals = upload(rig, "twice.jpg")
    messages = rig.receive()

    assert invoke(messages) == []
    assert invoke(messages) == []

    assert rig.keys("metadata/") == ["metadata/twice.jpg.json"]
    assert len(rekognition.calls["detect_labels"]) == 1
    assert_nothing_lost(rig, originals)


def ingester(rig: Rig, rekognition: Any, dynamodb: Any = None, **cache: Any) -> CloudIngester:
    """One Lambda container's ingester (its own label cache object, the shared table)."""
    options = LabelerOptions()
    return CloudIngester(
        BUCKET,
        PipelineConfig(),
        RekognitionLabeler(options, rekognition),
        rig.s3,
        LabelCache(TABLE, options, dynamodb or rig.dynamodb, **cache),
    )


class SpiesOnClaims:
    """A DynamoDB client that notes when a reader finds another worker's claim (no labels).

    Every call holds one lock: DynamoDB applies a conditional write to an item atomically, and
    moto 5 does not (it checks the condition, then writes, with no lock between: two threads
    racing ``attribute_not_exists`` both won 14 times in 300 here). Without the lock both
    deliveries could claim the content, which the real service never lets happen.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._atomic = threading.Lock()
        self.claim_seen = threading.Event()

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if not callable(call):
            return call

        def atomic(*args: Any, **kwargs: Any) -> Any:
            with self._atomic:
                return call(*args, **kwargs)

        return atomic

    def get_item(self, **kwargs: Any) -> Any:
        with self._atomic:
            response = self._client.get_item(**kwargs)
        item = response.get("Item")
        if item is not None and "claim_owner" in item and "labels" not in item:
            self.claim_seen.set()
        return response


class HoldsFirstCall:
    """DetectLabels counting its calls; the first is held until ``release`` is set (or 60 s).

    The bound only ends a failing run (both deliveries claimed, or the second never read the
    claim): a passing one is released as soon as the other delivery sees the claim.
    """

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.calls = 0
        self.released_in_time = False
        self.lock = threading.Lock()

    def detect_labels(self, **_: Any) -> dict[str, Any]:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            # The other delivery is now past the record check and waits on the claim.
            self.released_in_time = self.release.wait(timeout=60)
        return LABELS


def test_concurrent_duplicate_delivery_writes_one_record_and_labels_once(rig: Rig) -> None:
    """Two Lambda containers handle the same event at the same moment.

    Both pass the record check; the first to miss the label cache claims the content, the
    other finds the claim, waits, and takes the claimant's labels from the cache. The first
    Rekognition call is held until the other delivery has seen the claim, so the two truly
    overlap.
    """
    dynamodb = SpiesOnClaims(rig.dynamodb)
    rekognition = HoldsFirstCall(release=dynamodb.claim_seen)
    originals = upload(rig, "race.jpg")
    (message,) = rig.receive()
    ingesters = [ingester(rig, rekognition, dynamodb) for _ in range(2)]
    errors: list[BaseException] = []
    labeled_by: list[str | None] = []

    def deliver(ingester: CloudIngester) -> None:
        try:
            (result,) = ingester.ingest_notification(message["Body"])
            labeled_by.append(result.labeled_by)
        except BaseException as exc:  # surfaced to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(i,)) for i in ingesters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert rekognition.released_in_time  # the second delivery waited on the claim
    assert rekognition.calls == 1
    assert sorted(labeled_by, key=str) == ["cache", "labeler"]
    assert rig.keys("metadata/") == ["metadata/race.jpg.json"]
    assert rig.keys("quarantine/") == []
    assert_nothing_lost(rig, originals)


class KilledOnFirstCall:
    """DetectLabels whose first call "times out" the invocation; later calls answer."""

    def __init__(self) -> None:
        self.calls = 0

    def detect_labels(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            raise LambdaTimeout("Task timed out")
        return LABELS


def test_a_claimant_killed_while_labeling_is_taken_over_when_its_lease_ends(rig: Rig) -> None:
    # A killed container runs no handler: its claim stays until the lease ends.
    lease = 0.5
    rekognition = KilledOnFirstCall()
    originals = upload(rig, "orphan.jpg")
    (message,) = rig.receive()
    with pytest.raises(LambdaTimeout):
        ingester(rig, rekognition, lease_seconds=lease).ingest_notification(message["Body"])
    assert rig.keys("metadata/") == []

    started = time.monotonic()
    (result,) = ingester(rig, rekognition, lease_seconds=lease).ingest_notification(message["Body"])
    waited = time.monotonic() - started

    assert result.labeled_by == "labeler"
    assert rekognition.calls == 2  # the killed call, then the one that took the claim over
    assert lease * 0.5 <= waited < lease + 5  # waited for the lease, not for ever
    assert rig.keys("metadata/") == ["metadata/orphan.jpg.json"]
    assert_nothing_lost(rig, originals)


def test_a_failed_labeling_releases_its_claim_for_an_immediate_retry(rig: Rig) -> None:
    rekognition, stubber = stubbed_rekognition("ThrottlingException", "ok")
    originals = upload(rig, "retry.jpg")
    (message,) = rig.receive()
    with pytest.raises(IngestFailed):  # the default 60 s lease
        ingester(rig, rekognition).ingest_notification(message["Body"])
    (claim,) = rig.dynamodb.scan(TableName=TABLE)["Items"]
    assert "labels" not in claim and claim["claimed_until"] == {"N": "0"}  # released

    started = time.monotonic()
    (result,) = ingester(rig, rekognition).ingest_notification(message["Body"])

    assert time.monotonic() - started < 5  # claimed at once, far inside the old lease
    assert result.labeled_by == "labeler"
    assert len(rekognition.calls["detect_labels"]) == 2
    stubber.assert_no_pending_responses()
    assert rig.keys("metadata/") == ["metadata/retry.jpg.json"]
    assert_nothing_lost(rig, originals)


class Unreachable:
    """A DynamoDB client whose every call fails to connect."""

    def __getattr__(self, name: str) -> Any:
        def fail(**_: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

        return fail


@pytest.mark.parametrize("failure", ["no such table", "connection refused"])
def test_an_unavailable_label_cache_labels_at_once(rig: Rig, failure: str) -> None:
    dynamodb = Unreachable() if failure == "connection refused" else rig.dynamodb
    rekognition, _ = stubbed_rekognition("ok")
    originals = upload(rig, "nocache.jpg")
    (message,) = rig.receive()
    options = LabelerOptions()
    cache = LabelCache("no-such-table" if failure == "no such table" else TABLE, options, dynamodb)
    cloud = CloudIngester(
        BUCKET, PipelineConfig(), RekognitionLabeler(options, rekognition), rig.s3, cache
    )

    started = time.monotonic()
    (result,) = cloud.ingest_notification(message["Body"])

    assert time.monotonic() - started < 5  # no waiting on a claim nobody holds
    assert result.labeled_by == "labeler"
    assert len(rekognition.calls["detect_labels"]) == 1
    assert rig.keys("metadata/") == ["metadata/nocache.jpg.json"]
    assert_nothing_lost(rig, originals)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    """The state machine's definition as synthesized (references replaced by ``REF``)."""
    template = build_app(CONTEXT).synth().get_stack_by_name("Imgpipe").template
    (machine,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    text = "".join(p if isinstance(p, str) else "REF" for p in parts)
    return dict(json.loads(text))


class TestFailedStateMachineStep:
    """Asserted on the synthesized definition: moto cannot run ``emr-serverless`` ``.sync``."""

    def job_states(self, definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {
            name: state
            for name, state in definition["States"].items()
            if "emr-serverless:startJobRun.sync" in str(state.get("Resource", ""))
        }

    def test_every_job_step_is_caught(self, definition: dict[str, Any]) -> None:
        jobs = self.job_states(definition)
        assert set(jobs) == {"Process", "Analyze", "Report"}
        for name, state in jobs.items():
            (catch,) = state["Catch"]
            assert catch["ErrorEquals"] == ["States.ALL"], name

    def test_each_catch_names_its_step_then_publishes_it_to_sns(
        self, definition: dict[str, Any]
    ) -> None:
        states = definition["States"]
        for name, state in self.job_states(definition).items():
            marker = states[state["Catch"][0]["Next"]]
            # The step's name is recorded where the notification reads it.
            assert (marker["Type"], marker["Result"], marker["ResultPath"]) == (
                "Pass",
                name,
                "$.failed_step",
            )
            notify = states[marker["Next"]]
            assert notify["Resource"].endswith(":states:::sns:publish")
            message = notify["Parameters"]["Message.$"]
            assert "$.failed_step" in message and "$.error.Cause" in message
            failed = states[notify["Next"]]
            assert failed["Type"] == "Fail"

    def test_notification_text_names_the_failed_step(self, definition: dict[str, Any]) -> None:
        # Evaluate the States.Format the way Step Functions would, for a failed Analyze.
        notify = next(s for s in definition["States"].values() if "sns:publish" in str(s))
        expression = notify["Parameters"]["Message.$"]
        template, *paths = [p.strip() for p in expression[len("States.Format(") : -1].split(",")]
        values = {
            "$$.Execution.Name": "run-42",
            "$.failed_step": "Analyze",
            "$.error.Error": "States.TaskFailed",
            "$.error.Cause": "job run failed",
        }
        text = template.strip("'")
        for path in paths:
            text = text.replace("{}", values[path], 1)
        assert "step Analyze" in text and "run-42" in text


@pytest.mark.spark
@pytest.mark.slow
def test_ctrl_c_during_process_is_one_line_exit_130_and_nothing_half_written(
    tmp_path: Path,
) -> None:
    """A user's Ctrl-C while the process stage runs in Spark (not the py4j tracebacks)."""
    photos = write_photos(tmp_path / "photos", 24, 1600, 1200)  # seconds of decoding
    out = tmp_path / "out"
    command = [sys.executable, "-m", "imgpipe.cli", "run", str(photos), "--out", str(out)]
    before: list[str] = []
    with subprocess.Popen(
        [*command, "--labeler", "none"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # A background job of a non-interactive shell (CI) starts with SIGINT ignored, and
        # Python keeps it so: give the child the terminal's default, as a user's shell does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as child:
        assert child.stderr is not None
        for line in child.stderr:  # plain progress lines: stderr is not a terminal
            before.append(line)
            if line.startswith("process: started"):
                time.sleep(0.5)  # inside the Spark job, waiting on the JVM
                child.send_signal(signal.SIGINT)
                break
        after = child.stderr.read()
        assert child.wait(timeout=60) == 130

    assert "process: started\n" in before
    assert after == "imgpipe: interrupted\n"
    assert not any(chatter in "".join(before) for chatter in JVM_CHATTER)
    assert not (out / "reports").exists()
    # What a reader sees is whole: apart from "_" folders (staging and Spark's temporary
    # output, which readers skip and the next run clears), every Parquet folder committed.
    # The features cache is the exception: a first run's tasks each add one whole file as
    # they finish, with no folder-wide commit (RELIABILITY §7), so each file must read.
    visible = [
        path
        for path in out.rglob("*.parquet")
        if not any(part.startswith("_") for part in path.relative_to(out).parts)
    ]
    for path in visible:
        if path.relative_to(out).as_posix().startswith(FEATURES_PREFIX):
            pq.read_table(path)
        else:
            assert (path.parent / "_SUCCESS").is_file(), path.parent
    for record in out.rglob("metadata/**/*.json"):
        json.loads(record.read_text())
