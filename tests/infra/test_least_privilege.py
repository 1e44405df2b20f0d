"""Least privilege and data protection, asserted on every statement of the synthesized template.

Where ``tests/test_stack_*.py`` check one construct at a time, this module walks the whole
template: every IAM statement of every role, policy, bucket, queue, topic and key policy;
every bucket, queue, topic, table, work group and log group. A new resource or statement is
checked without anyone remembering to add a test for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from app import build_app
from tests.cfntemplate import render
from tests.repo import CONTEXT

# Actions that AWS lets a policy grant only on "*" (no resource-level permissions), each
# with the reason it is needed. Anything else on "*" fails.
RESOURCE_STAR_ALLOWED: dict[str, str] = {
    "rekognition:DetectLabels": "DetectLabels has no resource type; the ingest Lambda calls it",
    "xray:PutTraceSegments": "X-Ray tracing (Lambda, Step Functions): no resource type",
    "xray:PutTelemetryRecords": "X-Ray tracing: no resource type",
    "xray:GetSamplingRules": "X-Ray tracing from Step Functions: no resource type",
    "xray:GetSamplingTargets": "X-Ray tracing from Step Functions: no resource type",
    # Step Functions' execution logs are a vended log delivery: AWS documents "*" for these.
    "logs:CreateLogDelivery": "Step Functions log delivery (vended logs) requires *",
    "logs:GetLogDelivery": "Step Functions log delivery requires *",
    "logs:UpdateLogDelivery": "Step Functions log delivery requires *",
    "logs:DeleteLogDelivery": "Step Functions log delivery requires *",
    "logs:ListLogDeliveries": "Step Functions log delivery requires *",
    "logs:PutResourcePolicy": "Step Functions log delivery requires *",
    "logs:DescribeResourcePolicies": "Step Functions log delivery requires *",
    "logs:DescribeLogGroups": "Step Functions log delivery requires *",
}
# Roles CDK adds itself, whose AWS managed policy is not ours to shape.
CDK_MANAGED_POLICIES = {"service-role/AWSLambdaBasicExecutionRole"}
INGEST_ROLE, JOB_ROLE = "IngestFunctionRole", "ProcessingJobRole"
S3_WRITE = ("s3:PutObject", "s3:AbortMultipartUpload", "s3:RestoreObject", "s3:ReplicateObject")


@dataclass(frozen=True)
class Statement:
    """One policy statement, flattened: where it is, and its lists of actions and resources."""

    owner: str  # logical id of the policy, role or resource policy
    kind: str  # "identity" or "resource" (bucket/queue/topic/key policy)
    roles: tuple[str, ...]  # logical ids of the roles an identity policy is attached to
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    raw: dict[str, Any]


def as_tuple(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value]
    return tuple(render(v) for v in values)


def statements(template: dict[str, Any]) -> Iterator[Statement]:
    """Every statement of every policy document in the template."""
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        documents: list[tuple[str, dict[str, Any], tuple[str, ...]]] = []
        if kind == "AWS::IAM::Policy":
            roles = tuple(r["Ref"] for r in props.get("Roles", []))
            documents.append(("identity", props["PolicyDocument"], roles))
        elif kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                documents.append(("identity", policy["PolicyDocument"], (logical_id,)))
        elif kind in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            documents.append(("resource", props["PolicyDocument"], ()))
        elif kind == "AWS::KMS::Key":
            documents.append(("resource", props["KeyPolicy"], ()))
        for doc_kind, document, roles in documents:
            for raw in document["Statement"]:
                yield Statement(
                    owner=logical_id,
                    kind=doc_kind,
                    roles=roles,
                    effect=raw["Effect"],
                    actions=as_tuple(raw.get("Action", [])),
                    resources=as_tuple(raw.get("Resource", [])),
                    raw=raw,
                )


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def role_statements(template: dict[str, Any], role_prefix: str) -> list[Statement]:
    """The Allow statements of identity policies attached to the role named by its prefix."""
    (role,) = [k for k in of_type(template, "AWS::IAM::Role") if k.startswith(role_prefix)]
    return [s for s in statements(template) if role in s.roles and s.effect == "Allow"]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return build_app(CONTEXT).synth().get_stack_by_name("Imgpipe").template


@pytest.fixture(scope="module")
def data_bucket(template: dict[str, Any]) -> str:
    (bucket,) = [k for k in of_type(template, "AWS::S3::Bucket") if k.startswith("StorageData")]
    return "${" + bucket + ".Arn}"


class TestIamWildcards:
    def test_template_has_statements_to_check(self, template: dict[str, Any]) -> None:
        assert len(list(statements(template))) > 25

    def test_no_allow_grants_every_action_of_a_service(self, template: dict[str, Any]) -> None:
        for s in statements(template):
            if s.effect != "Allow" or s.owner.startswith("OrchestrationTopicKey"):
                continue
            for action in s.actions:
                assert action != "*" and not action.endswith(":*"), (s.owner, action)

    def test_resource_star_only_for_actions_without_resource_permissions(
        self, template: dict[str, Any]
    ) -> None:
        for s in statements(template):
            if s.effect != "Allow" or "*" not in s.resources or s.kind == "resource":
                continue
            unexpected = set(s.actions) - set(RESOURCE_STAR_ALLOWED)
            assert not unexpected, f"{s.owner}: {sorted(unexpected)} granted on '*'"

    def test_key_policy_stars_are_the_documented_default(self, template: dict[str, Any]) -> None:
        # In a key policy "Resource": "*" means this key. The account-root statement is the
        # AWS default key policy (without it the key becomes unmanageable); the other lets
        # CloudWatch alarms publish to the encrypted topic.
        for s in statements(template):
            if not s.owner.startswith("OrchestrationTopicKey"):
                continue
            principal = json.dumps(s.raw["Principal"])
            if s.actions == ("kms:*",):
                assert ":root" in principal
            else:
                assert "cloudwatch.amazonaws.com" in principal
                assert set(s.actions) <= {"kms:Decrypt", "kms:GenerateDataKey*"}

    def test_only_cdk_own_roles_use_aws_managed_policies(self, template: dict[str, Any]) -> None:
        for logical_id, role in of_type(template, "AWS::IAM::Role").items():
            arns = [render(a) for a in role["Properties"].get("ManagedPolicyArns", [])]
            if arns:
                assert logical_id.startswith("BucketNotificationsHandler"), logical_id
                assert {a.split(":policy/")[1] for a in arns} <= CDK_MANAGED_POLICIES


class TestIngestLambdaRole:
    def test_cannot_write_under_ingest(self, template: dict[str, Any]) -> None:
        for s in role_statements(template, INGEST_ROLE):
            if any(a.startswith(("s3:Put", "s3:Abort", "s3:Restore")) for a in s.actions):
                assert not any("/ingest/" in r or r.endswith(".Arn}/*") for r in s.resources)

    def test_writes_only_metadata_and_quarantine(
        self, template: dict[str, Any], data_bucket: str
    ) -> None:
        written = {
            r
            for s in role_statements(template, INGEST_ROLE)
            if any(a.startswith("s3:Put") for a in s.actions)
            for r in s.resources
        }
        assert written == {f"{data_bucket}/metadata/*", f"{data_bucket}/quarantine/*"}

    def test_cannot_delete_anything(self, template: dict[str, Any]) -> None:
        for s in role_statements(template, INGEST_ROLE):
            assert not any("Delete" in a for a in s.actions if not a.startswith("sqs:")), s.actions
        # DeleteMessage on its own queue is how SQS acknowledges a processed message.
        sqs_deletes = {
            r
            for s in role_statements(template, INGEST_ROLE)
            if "sqs:DeleteMessage" in s.actions
            for r in s.resources
        }
        assert len(sqs_deletes) == 1 and "IngestEvents" in next(iter(sqs_deletes))


class TestEmrJobRole:
    def test_reads_ingest_and_metadata(self, template: dict[str, Any], data_bucket: str) -> None:
        read = {
            r
            for s in role_statements(template, JOB_ROLE)
            if "s3:GetObject" in s.actions
            for r in s.resources
        }
        assert {f"{data_bucket}/ingest/*", f"{data_bucket}/metadata/*"} <= read

    def test_writes_only_processed_reports_and_its_logs(
        self, template: dict[str, Any], data_bucket: str
    ) -> None:
        # logs/emr/ is where EMR Serverless writes the job's driver and executor logs as the
        # job role: without it a failed job leaves nothing to read.
        written = {
            r
            for s in role_statements(template, JOB_ROLE)
            if any(a in S3_WRITE or a.startswith("s3:Put") for a in s.actions)
            for r in s.resources
        }
        assert written == {
            f"{data_bucket}/processed/*",
            f"{data_bucket}/reports/*",
            f"{data_bucket}/logs/emr/*",
        }

    def test_lists_only_the_data_bucket(self, template: dict[str, Any], data_bucket: str) -> None:
        # Unconditioned (object requests carry no s3:prefix), so it must name one bucket.
        listed = {
            r
            for s in role_statements(template, JOB_ROLE)
            if any(a.startswith("s3:List") for a in s.actions)
            for r in s.resources
        }
        assert listed == {data_bucket}

    def test_deletes_only_under_processed(self, template: dict[str, Any], data_bucket: str) -> None:
        deleted = {
            r
            for s in role_statements(template, JOB_ROLE)
            if any("Delete" in a for a in s.actions)
            for r in s.resources
        }
        assert deleted == {f"{data_bucket}/processed/*"}


class TestDataProtection:
    @pytest.mark.parametrize(
        ("policy_type", "target"),
        [
            ("AWS::S3::BucketPolicy", "AWS::S3::Bucket"),
            ("AWS::SQS::QueuePolicy", "AWS::SQS::Queue"),
            ("AWS::SNS::TopicPolicy", "AWS::SNS::Topic"),
        ],
    )
    def test_every_bucket_queue_and_topic_denies_requests_without_tls(
        self, template: dict[str, Any], policy_type: str, target: str
    ) -> None:
        protected = set()
        for logical_id in of_type(template, policy_type):
            for s in statements(template):
                condition = s.raw.get("Condition", {}).get("Bool", {})
                if (
                    s.owner == logical_id
                    and s.effect == "Deny"
                    and condition == {"aws:SecureTransport": "false"}
                ):
                    protected |= {r.split("}")[0].lstrip("${").split(".")[0] for r in s.resources}
        assert set(of_type(template, target)) <= protected

    def test_no_resource_policy_allows_anyone(self, template: dict[str, Any]) -> None:
        for s in statements(template):
            if s.kind == "resource" and s.effect == "Allow":
                assert s.raw["Principal"] not in ("*", {"AWS": "*"}), s.owner

    def test_every_bucket_blocks_public_access_and_is_encrypted(
        self, template: dict[str, Any]
    ) -> None:
        for logical_id, bucket in of_type(template, "AWS::S3::Bucket").items():
            props = bucket["Properties"]
            assert props.get("PublicAccessBlockConfiguration") == {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            }, logical_id
            assert props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration"), (
                logical_id
            )

    def test_every_queue_topic_and_table_is_encrypted(self, template: dict[str, Any]) -> None:
        for logical_id, queue in of_type(template, "AWS::SQS::Queue").items():
            props = queue["Properties"]
            assert props.get("SqsManagedSseEnabled") or props.get("KmsMasterKeyId"), logical_id
        for logical_id, topic in of_type(template, "AWS::SNS::Topic").items():
            assert topic["Properties"].get("KmsMasterKeyId"), logical_id
        for logical_id, table in of_type(template, "AWS::DynamoDB::Table").items():
            assert table["Properties"]["SSESpecification"]["SSEEnabled"], logical_id
        for logical_id, group in of_type(template, "AWS::Athena::WorkGroup").items():
            results = group["Properties"]["WorkGroupConfiguration"]["ResultConfiguration"]
            assert results["EncryptionConfiguration"]["EncryptionOption"], logical_id

    def test_every_log_group_has_retention_and_the_default_encryption(
        self, template: dict[str, Any]
    ) -> None:
        # CloudWatch Logs always encrypts at rest with a service key; a customer key is not
        # used (see stacks/checkov_skips.py, CKV_AWS_158).
        groups = of_type(template, "AWS::Logs::LogGroup")
        assert groups
        for logical_id, group in groups.items():
            assert group["Properties"].get("RetentionInDays", 0) > 0, logical_id

    def test_every_lambda_function_of_ours_logs_to_a_retained_group(
        self, template: dict[str, Any]
    ) -> None:
        for logical_id, function in of_type(template, "AWS::Lambda::Function").items():
            if logical_id.startswith("BucketNotificationsHandler"):
                continue  # CDK's helper: its own log group, see test_stack_log_groups.py
            group = function["Properties"]["LoggingConfig"]["LogGroup"]
            assert render(group).startswith("${IngestFunctionLogs"), logical_id
