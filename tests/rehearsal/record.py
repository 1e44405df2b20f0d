"""Runs each deployed component's real code on moto and records every AWS call it makes.

A ``before-parameter-build`` hook on the default boto3 session's event system sees every
call of every client created after it is registered (clients copy the session's handlers),
with the parameters the code passed; an ``after-call`` hook marks the calls that met a
missing key (``Missing``), which S3 answers with 404 only to a caller that may list the
bucket. The rig's own set-up calls use another session.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pandas as pd
from moto import mock_aws

from analysis import analyze, report_stage
from imgpipe import aws_clients
from imgpipe.config import PipelineConfig
from imgpipe.process import kernel, manifest, stage
from imgpipe.records import FEATURES_PREFIX, metadata_key
from imgpipe.store import S3Store
from lambda_src import ingest_handler
from tests.imagefactory import jpeg_bytes, photo_like
from tests.lambdarig import sqs_event
from tests.rehearsal.access import Call

BUCKET = "imgpipe-rehearsal-bucket"
TABLE = "imgpipe-rehearsal-label-cache"
QUEUE = "imgpipe-rehearsal-events"
RUN_ID = "2024-06-01"
REGION = "us-east-1"
MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """String parameters, nested ones named with dots (``Image.S3Object.Name``)."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _flatten(item, f"{prefix}{name}.")
    elif isinstance(value, str) and len(value) < 1024:
        yield prefix.rstrip("."), value


class Recorder:
    """Collects the calls made while a component is current."""

    def __init__(self) -> None:
        self.component = ""
        self.calls: dict[str, list[Call]] = defaultdict(list)

    def __call__(
        self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        """``before-parameter-build``: the call as the code made it."""
        if self.component:
            service = model.service_model.service_name
            calls = self.calls[self.component]
            context["rehearsal"] = (self.component, len(calls))
            calls.append(Call(service, model.name, tuple(sorted(_flatten(params)))))

    def answered(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        """``after-call``: mark a call that met a missing key (S3 answers it 404 or 403)."""
        if "rehearsal" not in context:
            return
        if parsed.get("Error", {}).get("Code") in MISSING:
            component, index = context["rehearsal"]
            call = self.calls[component][index]
            self.calls[component][index] = Call.of(
                call.service, call.operation, **dict(call.params), Missing="true"
            )

    @contextmanager
    def as_component(self, name: str) -> Iterator[None]:
        self.component = name
        try:
            yield
        finally:
            self.component = ""


@dataclass
class LambdaContext:
    function_name: str = "imgpipe-ingest"
    memory_limit_in_mb: int = 1536
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:imgpipe-ingest"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"


class World:
    """moto's bucket (notifying a queue) and label cache, set up outside the recording."""

    def __init__(self) -> None:
        setup = boto3.session.Session(region_name=REGION)
        self.s3, self.sqs = setup.client("s3"), setup.client("sqs")
        self.s3.create_bucket(Bucket=BUCKET)
        self.queue_url = self.sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self.s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": arn["Attributes"]["QueueArn"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": "ingest/"}]}
                        },
                    }
                ]
            },
        )
        setup.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "checksum", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "checksum", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

    def upload(self, key: str, body: bytes) -> list[dict[str, Any]]:
        """Put an object; the SQS messages its S3 event produced."""
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        response: Any = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
        return [m for m in response.get("Messages", []) if "s3:TestEvent" not in m["Body"]]


def _invoke(messages: list[dict[str, Any]]) -> None:
    response = ingest_handler.lambda_handler(
        sqs_event(messages, f"arn:aws:sqs:{REGION}:123456789012:{QUEUE}"), LambdaContext()
    )
    assert response["batchItemFailures"] == [], response


def run_ingest(world: World) -> None:
    """The handler on batches of S3 events covering each of its paths.

    A new image and a quarantined file; then the image's redelivery (its record is there,
    nothing is relabeled), a copy of its content under another key (a label cache hit) and
    an object deleted before its event was handled (a HEAD of a missing key).
    """
    photo = jpeg_bytes(photo_like(320, 240, 7), make="Nikon")
    new = world.upload("ingest/alice/cat.jpg", photo)
    _invoke(new + world.upload("ingest/junk.txt", b"this is not an image"))
    copy = world.upload("ingest/bob/copy of cat.jpg", photo)
    gone = world.upload("ingest/gone.jpg", photo)
    world.s3.delete_object(Bucket=BUCKET, Key="ingest/gone.jpg")
    _invoke(new + copy + gone)
    copied = json.loads(
        world.s3.get_object(Bucket=BUCKET, Key=metadata_key("ingest/bob/copy of cat.jpg"))[
            "Body"
        ].read()
    )
    assert copied["labels"], "the copy's labels came from the cache"


def run_process() -> None:
    """The process job's own store calls, through its real functions (Spark cannot run here)."""
    store, config = S3Store(BUCKET), PipelineConfig()
    settings = kernel.processing_settings(config)
    fingerprint = manifest.inputs_fingerprint(store, settings)
    assert manifest.unchanged_counts(store, fingerprint) is None  # first run: no manifest yet
    # A first run on S3 sizes its tasks from the listing of ingest/ (the junk file is in it too).
    assert stage.ingest_totals(store)[0] == 3
    record = json.loads(store.get_bytes(metadata_key("ingest/alice/cat.jpg")))
    row = kernel.process_row(store, record["key"], record["checksum"], 1, config)
    assert row["process_error"] is None, row
    # A first run's tasks write the features they computed to the cache themselves.
    cache = f"{FEATURES_PREFIX}run=0123abcd/"
    kernel.write_features_part(store, cache, [(record["checksum"], row)], settings)
    gone = kernel.process_row(store, "ingest/gone.jpg", "sha256:0", 1, config)
    assert gone["process_error"].startswith("unreadable"), gone
    # run_process's last write: the manifest of what the table was built from.
    counts = {"records": 2, "processed": 2, "failed": 0}
    manifest.write_manifest(store, fingerprint, counts)
    assert manifest.unchanged_counts(store, fingerprint) == counts  # the next run's check


def run_analyze() -> None:
    """The analyze job's store calls: the emptiness checks and the result tables."""
    store = S3Store(BUCKET)
    analyze._has_objects(store, analyze.IMAGES_TABLE_PREFIX)
    assert analyze._has_objects(store, analyze.QUARANTINE_PREFIX)
    tables = {
        "overview": pd.DataFrame({"images": [2], "quarantined": [1], "process_errors": [0]}),
        "top_labels": pd.DataFrame({"label": ["Cat"], "images": [2], "mean_confidence": [97.0]}),
    }
    analyze.write_tables(store, RUN_ID, tables)


def run_report() -> None:
    """The report job as it runs in the cloud (pandas through the store, no Spark work)."""
    key = report_stage.run_report(f"s3://{BUCKET}", RUN_ID, PipelineConfig())
    assert key.endswith("index.html")


@contextmanager
def moto_world(monkeypatch: Any) -> Iterator[tuple[World, Recorder]]:
    """moto with the bucket, queue and table, and a recorder on the default session."""
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "IMGPIPE_BUCKET": BUCKET,
        "IMGPIPE_LABEL_CACHE_TABLE": TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        boto3.setup_default_session(region_name=REGION)
        recorder = Recorder()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        events.register("before-parameter-build", recorder)
        events.register("after-call", recorder.answered)
        # Clients cached by an earlier test belong to another session, without the hook.
        for cached in (
            ingest_handler.ingester,
            aws_clients.s3_client,
            aws_clients.rekognition_client,
        ):
            cached.cache_clear()
        try:
            yield World(), recorder
        finally:
            for cached in (
                ingest_handler.ingester,
                aws_clients.s3_client,
                aws_clients.rekognition_client,
            ):
                cached.cache_clear()
            boto3.DEFAULT_SESSION = None


def record_all(monkeypatch: Any) -> dict[str, list[Call]]:
    """Every component's recorded calls, by component (``ingest``, ``process``, ...)."""
    with moto_world(monkeypatch) as (world, recorder):
        with recorder.as_component("ingest"):
            run_ingest(world)
        for name, run in (
            ("process", run_process),
            ("analyze", run_analyze),
            ("report", run_report),
        ):
            with recorder.as_component(name):
                run()
        return dict(recorder.calls)
