"""The ingest path (bucket events -> queue -> Lambda), asserted on the synthesized template."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk import Stack
from aws_cdk.assertions import Capture, Match, Template

from app import build_app
from stacks.acknowledgements import BUCKET_NOTIFICATIONS_HANDLER
from tests.cfntemplate import as_list, logical_id, render, role_statements
from tests.repo import CONTEXT

# Values unlike the defaults, so each assertion shows the setting reached the resource.
OVERRIDES = {
    "lambda_timeout_seconds": 100,
    "lambda_memory_mb": 2048,
    "ingest_batch_size": 7,
    "ingest_max_concurrency": 3,
    "max_receive_count": 4,
    "log_retention_days": 30,
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    app = build_app({**CONTEXT, "imgpipe": {**CONTEXT["imgpipe"], **OVERRIDES}})
    app.synth()
    yield app.node.find_child("Imgpipe")  # type: ignore[misc]
    shutil.rmtree(app.outdir, ignore_errors=True)  # a temporary dir holding the bundles


@pytest.fixture(scope="module")
def template(stack: Stack) -> Template:
    return Template.from_stack(stack)


class TestQueue:
    def test_uploads_under_ingest_notify_the_queue(self, stack: Stack, template: Template) -> None:
        template.has_resource_properties(
            "Custom::S3BucketNotifications",
            {
                "NotificationConfiguration": {
                    "QueueConfigurations": [
                        {
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {"FilterRules": [{"Name": "prefix", "Value": "ingest/"}]}
                            },
                            "QueueArn": {"Fn::GetAtt": [logical_id(stack, "Ingest/Events"), "Arn"]},
                        }
                    ]
                }
            },
        )

    def test_queue_and_dead_letter_queue_are_encrypted(self, template: Template) -> None:
        queues = template.find_resources("AWS::SQS::Queue")
        assert len(queues) == 2
        assert all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues.values())

    def test_queue_and_dead_letter_queue_refuse_requests_without_tls(
        self, stack: Stack, template: Template
    ) -> None:
        for path in ("Ingest/Events", "Ingest/DeadLetters"):
            template.has_resource_properties(
                "AWS::SQS::QueuePolicy",
                {
                    "Queues": [{"Ref": logical_id(stack, path)}],
                    "PolicyDocument": {
                        "Statement": Match.array_with(
                            [
                                Match.object_like(
                                    {
                                        "Effect": "Deny",
                                        "Principal": {"AWS": "*"},
                                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                    }
                                )
                            ]
                        )
                    },
                },
            )

    def test_failed_messages_move_to_the_dead_letter_queue_after_max_receives(
        self, stack: Stack, template: Template
    ) -> None:
        template.has_resource_properties(
            "AWS::SQS::Queue",
            {
                "RedrivePolicy": {
                    "deadLetterTargetArn": {
                        "Fn::GetAtt": [logical_id(stack, "Ingest/DeadLetters"), "Arn"]
                    },
                    "maxReceiveCount": 4,
                },
                # 6 x the 100 s function timeout
                "VisibilityTimeout": 600,
            },
        )

    def test_dead_letters_are_kept_fourteen_days(self, template: Template) -> None:
        template.has_resource_properties(
            "AWS::SQS::Queue",
            {"MessageRetentionPeriod": 14 * 24 * 3600, "RedrivePolicy": Match.absent()},
        )


class TestFunction:
    def test_queue_feeds_the_function_with_partial_batch_failures_and_a_concurrency_cap(
        self, stack: Stack, template: Template
    ) -> None:
        template.has_resource_properties(
            "AWS::Lambda::EventSourceMapping",
            {
                "EventSourceArn": {"Fn::GetAtt": [logical_id(stack, "Ingest/Events"), "Arn"]},
                "FunctionName": {"Ref": logical_id(stack, "Ingest/Function")},
                "BatchSize": 7,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": 3},
            },
        )

    def test_function_runs_python_311_on_graviton_with_tracing(self, template: Template) -> None:
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Runtime": "python3.11",
                "Architectures": ["arm64"],
                "Handler": "lambda_src.ingest_handler.lambda_handler",
                "MemorySize": 2048,
                "Timeout": 100,
                "TracingConfig": {"Mode": "Active"},
            },
        )

    def test_function_environment_names_bucket_cache_and_pipeline_config(
        self, stack: Stack, template: Template
    ) -> None:
        variables = Capture()
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": Match.string_like_regexp("ingest_handler"),
                "Environment": {"Variables": variables},
            },
        )
        env = variables.as_object()
        assert env["IMGPIPE_BUCKET"] == {"Ref": logical_id(stack, "Storage/Data")}
        assert env["IMGPIPE_LABEL_CACHE_TABLE"] == {"Ref": logical_id(stack, "Ingest/LabelCache")}
        # The handler names its Powertools service and metric namespace itself (the dashboard
        # reads the same constants); a variable here would be a second, ignored spelling.
        assert not [name for name in env if name.startswith("POWERTOOLS_")]
        # From cdk.json's imgpipe:pipeline context.
        assert env["IMGPIPE_THUMBNAIL_SIZE"] == "512"
        assert env["IMGPIPE_MIN_CONFIDENCE"] == "55.0"

    def test_function_logs_to_a_group_with_retention(
        self, stack: Stack, template: Template
    ) -> None:
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {"LoggingConfig": {"LogGroup": {"Ref": logical_id(stack, "Ingest/FunctionLogs")}}},
        )
        template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})

    def test_bucket_notifications_handler_log_group_follows_the_retention_setting(
        self, stack: Stack, template: Template
    ) -> None:
        handler = logical_id(stack, f"{BUCKET_NOTIFICATIONS_HANDLER}/Resource")
        template.has_resource(
            "AWS::Logs::LogGroup",
            {
                "Properties": {
                    "LogGroupName": {"Fn::Join": ["", ["/aws/lambda/", {"Ref": handler}]]},
                    "RetentionInDays": 30,
                },
                "DeletionPolicy": "Delete",
            },
        )

    def test_label_cache_is_on_demand_encrypted_recoverable_and_expiring(
        self, template: Template
    ) -> None:
        template.has_resource_properties(
            "AWS::DynamoDB::Table",
            {
                "KeySchema": [{"AttributeName": "checksum", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "checksum", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
                "SSESpecification": {"SSEEnabled": True},
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            },
        )


@pytest.fixture(scope="module")
def statements(stack: Stack, template: Template) -> list[dict[str, Any]]:
    """Everything the ingest Lambda's role may do."""
    return role_statements(template, logical_id(stack, "Ingest/FunctionRole"))


class TestFunctionRole:
    def test_role_grants_only_the_expected_actions(self, statements: list[dict[str, Any]]) -> None:
        actions = {a for s in statements for a in as_list(s["Action"])}
        assert actions == {
            "s3:GetObject",
            "s3:ListBucket",
            "s3:PutObject",
            "rekognition:DetectLabels",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        }
        assert all(s["Effect"] == "Allow" for s in statements)

    def test_role_cannot_delete_anything(self, statements: list[dict[str, Any]]) -> None:
        actions = [a for s in statements for a in as_list(s["Action"])]
        assert not [a for a in actions if "Delete" in a and a.startswith(("s3:", "dynamodb:"))]
        assert not [a for a in actions if a.endswith("*")]

    def test_role_writes_only_metadata_and_quarantine(
        self, statements: list[dict[str, Any]]
    ) -> None:
        written = [
            render(r)
            for s in statements
            if any(a.startswith("s3:Put") for a in as_list(s["Action"]))
            for r in as_list(s["Resource"])
        ]
        assert sorted(w.rsplit("}", 1)[1] for w in written) == ["/metadata/*", "/quarantine/*"]
        assert not [w for w in written if "ingest/" in w or w == "*"]

    def test_role_reads_uploads_and_its_own_records_only(
        self, statements: list[dict[str, Any]]
    ) -> None:
        read = {
            render(r).rsplit("}", 1)[1]
            for s in statements
            if "s3:GetObject" in as_list(s["Action"])
            for r in as_list(s["Resource"])
        }
        assert read == {"/ingest/*", "/metadata/*", "/quarantine/*"}

    def test_only_rekognition_and_xray_use_a_wildcard_resource(
        self, statements: list[dict[str, Any]]
    ) -> None:
        wildcard = {
            a for s in statements if "*" in as_list(s["Resource"]) for a in as_list(s["Action"])
        }
        assert wildcard == {
            "rekognition:DetectLabels",
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        }
