"""``imgpipe aws check`` on moto: a sample through S3 events, the real ingest handler and a run.

moto's S3 puts each upload's event onto the ingest queue; the check's wait hook
(:func:`imgpipe.aws_check.pause`) stands in for the SQS event source and hands the messages
to the real Lambda handler. moto's Step Functions runs the state machine; EMR cannot run
here, so a successful run's report object is written the moment the run starts, as the
report job would.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws
from PIL import Image

from imgpipe import aws_check, aws_clients, aws_ops
from imgpipe.cli import main
from imgpipe.store import S3Store
from lambda_src import ingest_handler
from tests.imagefactory import jpeg_bytes, photo_like
from tests.lambdarig import create_queues, invoke
from tests.statemachines import FAILS, SUCCEEDS

BUCKET = "imgpipe-ops-bucket"  # the bucket SUCCEEDS names in its report_uri
TABLE = "imgpipe-label-cache"
ROLE = "arn:aws:iam::123456789012:role/imgpipe-pipeline"
FUNCTION = "Imgpipe-IngestFunction1A2B3C"
LOG_GROUP = "Imgpipe-IngestFunctionLogs4D5E6F"
# What a user already has in the bucket; none of it may change.
USER_OBJECTS = {
    "ingest/alice/beach.jpg": jpeg_bytes(photo_like(200, 150, 1)),
    "metadata/alice/beach.jpg.json": b'{"key": "ingest/alice/beach.jpg", "checksum": "x:1"}',
    "quarantine/alice/notes.txt.json": b'{"key": "ingest/alice/notes.txt", "reason": "x"}',
    "ingest/_imgpipe-checklist.jpg": b"a user's file whose name only looks like the prefix",
    # Another check's leftovers: not this check's keys, so not its to delete.
    "ingest/_imgpipe-check/20250101T000000Z-00000000.jpg": b"older",
    "metadata/_imgpipe-check/20250101T000000Z-00000000.jpg.json": b"{}",
}


@dataclass
class Deployment:
    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)

    def keys(self, prefix: str = "") -> dict[str, str]:
        """Every current object under ``prefix`` with its ETag."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}

    def depth(self, queue_url: str) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
        return sum(int(attributes["Attributes"][name]) for name in names)

    def receive(self, visibility: int | None = None) -> list[dict[str, Any]]:
        extra = {} if visibility is None else {"VisibilityTimeout": visibility}
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], **extra
        )
        return list(response.get("Messages", []))

    def lambda_runs(self, seconds: float) -> None:
        """The event source mapping: queued messages to the real handler; done ones deleted."""
        messages = self.receive()
        for key in self.keys("ingest/_imgpipe-check/"):  # as the Lambda finds them
            self.uploads[key] = self.s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        failed = set(invoke(messages)) if messages else set()
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def lambda_crashes(self, seconds: float) -> None:
        """A Lambda that dies on every batch: each message returns to the queue, then the DLQ."""
        self.receive(visibility=0)


def notify_queue_on_ingest(s3: Any, queue_arn: str) -> None:
    rule = {"Key": {"FilterRules": [{"Name": "prefix", "Value": "ingest/"}]}}
    configuration = {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"], "Filter": rule}
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [configuration]}
    )


def create_stack(state_machine: dict[str, Any], queue_url: str, dlq_url: str) -> None:
    """The state machine, and a stack whose outputs name everything as cdk deploy's would."""
    arn = boto3.client("stepfunctions").create_state_machine(
        name="Imgpipe-pipeline", definition=json.dumps(state_machine), roleArn=ROLE
    )["stateMachineArn"]
    outputs = {
        aws_ops.OUTPUT_BUCKET: BUCKET,
        aws_ops.OUTPUT_STATE_MACHINE: arn,
        aws_ops.OUTPUT_INGEST_QUEUE: queue_url,
        aws_ops.OUTPUT_DEAD_LETTER_QUEUE: dlq_url,
        aws_ops.OUTPUT_INGEST_FUNCTION: FUNCTION,
        aws_ops.OUTPUT_INGEST_LOG_GROUP: LOG_GROUP,
    }
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName="Imgpipe", TemplateBody=json.dumps(template)
    )


@pytest.fixture
def deploy(
    monkeypatch: pytest.MonkeyPatch, aws_credentials: None
) -> Iterator[Callable[[dict[str, Any]], Deployment]]:
    """Deploys a stack with this state machine over a bucket already holding USER_OBJECTS."""
    for name, value in {
        "POWERTOOLS_TRACE_DISABLED": "true",
        "IMGPIPE_BUCKET": BUCKET,
        "IMGPIPE_LABEL_CACHE_TABLE": TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(aws_ops, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(aws_check, "POLL_SECONDS", 0.01)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        for cached in (ingest_handler.ingester, aws_clients.s3_client):
            cached.cache_clear()  # clients of an earlier test belong to another moto session
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "checksum", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "checksum", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for key, body in USER_OBJECTS.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)

        def make(state_machine: dict[str, Any]) -> Deployment:
            queue_url, dlq_url, queue_arn = create_queues(sqs)
            notify_queue_on_ingest(s3, queue_arn)
            deployment = Deployment(s3, sqs, queue_url, dlq_url)
            for message in deployment.receive():  # S3's s3:TestEvent on configuration
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            create_stack(state_machine, queue_url, dlq_url)
            return deployment

        yield make


def write_reports(monkeypatch: pytest.MonkeyPatch, deployment: Deployment) -> None:
    """Every started run writes its report, as the report job would, noting what it read."""
    from imgpipe.process.manifest import inputs_fingerprint

    def start_run(sfn: Any, arn: str) -> tuple[str, str]:
        run_id, execution_arn = aws_ops.start_run(sfn, arn)
        store = S3Store(BUCKET, deployment.s3)
        records = {k: json.loads(store.get_bytes(k)) for k in deployment.keys("metadata/")}
        fingerprint = inputs_fingerprint(store, "settings")
        deployment.runs.append({"run_id": run_id, "records": records, "inputs": fingerprint})
        store.put_bytes(f"reports/{run_id}/index.html", b"<html></html>", "text/html")
        return run_id, execution_arn

    monkeypatch.setattr(aws_check, "start_run", start_run)


def last_line(err: str) -> str:
    return err.splitlines()[-1]


def test_check_reports_on_the_sample_then_removes_only_its_own_objects(
    deploy: Callable[[dict[str, Any]], Deployment],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from imgpipe.process.manifest import inputs_fingerprint

    deployment = deploy(SUCCEEDS)
    write_reports(monkeypatch, deployment)
    monkeypatch.setattr(aws_check, "pause", deployment.lambda_runs)
    before = deployment.keys()
    inputs_before = inputs_fingerprint(S3Store(BUCKET, deployment.s3), "settings")

    assert main(["aws", "check", "--timeout", "30"]) == 0

    (run,) = deployment.runs
    report = f"reports/{run['run_id']}/index.html"
    out, err = capsys.readouterr()
    # The last line: the Lambda, run in this process, prints its logs and metrics first.
    assert out.splitlines()[-1] == f"report: s3://{BUCKET}/{report}"
    # The run read the sample's record, made by the real handler from the real upload.
    (sample,) = [r for k, r in run["records"].items() if k not in USER_OBJECTS]
    assert sample["key"].startswith("ingest/_imgpipe-check/") and sample["key"].endswith(".jpg")
    assert (sample["format"], sample["width"], sample["height"]) == ("JPEG", 240, 160)
    assert (sample["creator"], sample["creator_source"]) == ("imgpipe check", "metadata")
    assert [label["name"] for label in sample["labels"]] == ["Mobile Phone"]  # moto's answer
    upload = deployment.uploads[sample["key"]]
    assert upload["ContentType"] == "image/jpeg"
    # Sent without a client checksum, as `imgpipe aws upload` sends: S3 assigns CRC64NVME.
    assert not [name for name in upload if name.startswith("Checksum")]
    # Afterwards: the report is there, the sample and its record are gone, the user's
    # objects (and another check's leftovers) are untouched.
    assert deployment.keys() == {**before, report: deployment.keys()[report]}
    # So the next process stage sees exactly the inputs it had before the check.
    assert inputs_fingerprint(S3Store(BUCKET, deployment.s3), "settings") == inputs_before
    assert run["inputs"] != inputs_before
    assert "step: Report" in err
    assert "removed its 2 objects" in err and "cost about $0.05, approximate" in err


@pytest.mark.parametrize(
    ("lambda_name", "expected"),
    [
        (None, "ingest queue 1 waiting, 0 in flight; dead-letter queue 0;"),
        ("lambda_crashes", "ingest queue 0 waiting, 0 in flight; dead-letter queue 1;"),
    ],
    ids=["nothing-consumes", "lambda-crashes"],
)
def test_no_record_in_time_names_queue_depths_and_the_lambda(
    deploy: Callable[[dict[str, Any]], Deployment],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lambda_name: str | None,
    expected: str,
) -> None:
    deployment = deploy(SUCCEEDS)
    wait: Callable[[float], None] = (
        getattr(deployment, lambda_name) if lambda_name else (lambda seconds: None)
    )
    monkeypatch.setattr(aws_check, "pause", wait)
    before = deployment.keys()

    assert main(["aws", "check", "--timeout", "0.2"]) == 1

    err = capsys.readouterr().err
    line = last_line(err)
    assert line.startswith("imgpipe: check failed: no record for s3://imgpipe-ops-bucket/ingest/")
    assert expected in line
    assert f"log group {LOG_GROUP}" in line and f"FunctionName {FUNCTION}" in line
    assert "Errors metric" in line
    # The sample went anyway: a late ingest finds it gone and writes nothing.
    assert deployment.keys() == before


def test_quarantined_sample_fails_with_its_reason_and_starts_no_run(
    deploy: Callable[[dict[str, Any]], Deployment],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment = deploy(SUCCEEDS)
    monkeypatch.setattr(aws_check, "pause", deployment.lambda_runs)
    # Under Rekognition's 80 px minimum: the real handler quarantines it.
    monkeypatch.setattr(aws_check, "sample_jpeg", lambda: jpeg_bytes(photo_like(40, 30, 3)))
    before = deployment.keys()

    assert main(["aws", "check", "--timeout", "30"]) == 1

    line = last_line(capsys.readouterr().err)
    assert line.startswith("imgpipe: check failed: the sample was quarantined (quarantine/_imgpipe")
    assert "too_small" in line
    sfn = boto3.client("stepfunctions")
    (machine,) = sfn.list_state_machines()["stateMachines"]
    assert sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"] == []
    assert deployment.keys() == before  # its quarantine record removed too


def test_failed_run_names_the_step_and_cleans_up(
    deploy: Callable[[dict[str, Any]], Deployment],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment = deploy(FAILS)
    monkeypatch.setattr(aws_check, "pause", deployment.lambda_runs)
    before = deployment.keys()

    assert main(["aws", "check", "--timeout", "30"]) == 1

    line = last_line(capsys.readouterr().err)
    assert line.startswith("imgpipe: check failed: run ")
    assert "step 'Process' failed: SNS.NotFoundException" in line
    assert deployment.keys() == before


def test_run_without_a_report_fails_the_check(
    deploy: Callable[[dict[str, Any]], Deployment],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment = deploy(SUCCEEDS)  # no report writer: the run succeeds with nothing in S3
    monkeypatch.setattr(aws_check, "pause", deployment.lambda_runs)
    before = deployment.keys()

    assert main(["aws", "check", "--timeout", "30"]) == 1

    line = last_line(capsys.readouterr().err)
    assert line.startswith("imgpipe: check failed: run ") and "succeeded but wrote no s3://" in line
    assert deployment.keys() == before


def test_check_without_the_stack_is_an_operator_error(
    deploy: Callable[[dict[str, Any]], Deployment], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["aws", "check", "--stack", "Nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("imgpipe: error: stack 'Nope' not found")


@pytest.mark.parametrize("timeout", ["0", "-5", "soon", "nan"])
def test_timeout_must_be_a_positive_number_of_seconds(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["aws", "check", "--timeout", timeout])
    assert exited.value.code == 2
    assert "not a positive number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize(
    "key",
    [
        "ingest/alice/beach.jpg",
        "metadata/alice/beach.jpg.json",
        "reports/20250101T000000Z/index.html",
        "ingest/_imgpipe-checklist.jpg",
        "ingest/_imgpipe-check/../alice/beach.jpg",
        "metadata/_imgpipe-check/../alice/beach.jpg.json",
    ],
)
def test_deleting_outside_the_check_prefixes_is_refused(
    deploy: Callable[[dict[str, Any]], Deployment], key: str
) -> None:
    deployment = deploy(SUCCEEDS)
    with pytest.raises(ValueError, match="refusing to delete"):
        aws_check.require_check_key(key)
    if key.startswith("ingest/"):
        with pytest.raises(ValueError, match="refusing to delete"):
            aws_check.remove_check_objects(deployment.s3, BUCKET, key)
    assert set(deployment.keys()) == set(USER_OBJECTS)


def test_check_keys_are_accepted() -> None:
    sample = aws_check.new_sample_key()
    for key in (sample, f"metadata/{sample[7:]}.json", f"quarantine/{sample[7:]}.json"):
        aws_check.require_check_key(key)


@pytest.mark.parametrize("skimage", [True, False], ids=["skimage", "generated"])
def test_sample_is_a_small_deterministic_jpeg_rekognition_accepts(
    monkeypatch: pytest.MonkeyPatch, skimage: bool
) -> None:
    if not skimage:
        monkeypatch.setitem(__import__("sys").modules, "skimage", None)  # import fails
    data = aws_check.sample_jpeg()
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and min(image.size) >= 80
    assert 1_000 < len(data) < 20_000
    assert aws_check.sample_jpeg() == data


def test_stack_outputs_name_the_ingest_function_and_its_log_group(imgpipe_template: Any) -> None:
    outputs = imgpipe_template.to_json()["Outputs"]
    assert {
        aws_ops.OUTPUT_BUCKET,
        aws_ops.OUTPUT_STATE_MACHINE,
        aws_ops.OUTPUT_INGEST_QUEUE,
        aws_ops.OUTPUT_DEAD_LETTER_QUEUE,
        aws_ops.OUTPUT_INGEST_FUNCTION,
        aws_ops.OUTPUT_INGEST_LOG_GROUP,
    } <= set(outputs)
    functions = imgpipe_template.find_resources("AWS::Lambda::Function")
    (ingest,) = [name for name, f in functions.items() if "ingest" in str(f["Properties"])]
    assert outputs[aws_ops.OUTPUT_INGEST_FUNCTION]["Value"] == {"Ref": ingest}
    logging = functions[ingest]["Properties"]["LoggingConfig"]["LogGroup"]
    assert outputs[aws_ops.OUTPUT_INGEST_LOG_GROUP]["Value"] == logging
    # Reading the function's log group must not have added a log-retention custom resource.
    assert imgpipe_template.find_resources("Custom::LogRetention") == {}
