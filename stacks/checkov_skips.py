"""Every checkov finding the stack keeps on purpose, each with the reason it is kept.

The checkov counterpart of :mod:`stacks.acknowledgements` (cdk-nag): one table, applied from
one place as ``Metadata.checkov.skip`` on the CloudFormation resource, which checkov reads
and reports as a skipped check with this comment. ``tests/infra/test_checkov.py`` fails on any
unskipped finding and on any skip that no longer matches a finding.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnResource, Stack

from stacks.acknowledgements import BUCKET_NOTIFICATIONS_HANDLER, BUCKET_NOTIFICATIONS_HANDLER_LOGS

METADATA_KEY = "checkov"

_SQS_MANAGED = (
    "encrypted at rest with SQS-managed SSE (SqsManagedSseEnabled), which this checkov "
    "version does not recognise; a customer key would need a key policy for S3 to send"
)
_NO_VPC = (
    "talks only to public AWS endpoints (S3, SQS, Rekognition, DynamoDB) over TLS with IAM "
    "auth; a VPC would add NAT or endpoint cost and no private resource to reach"
)
_LOGS_DEFAULT_KEY = (
    "CloudWatch Logs encrypts every log group at rest with a service key; these logs hold "
    "keys and reason codes, never image content, so a customer key adds cost, not protection"
)


@dataclass(frozen=True)
class CheckovSkip:
    """One kept finding: the construct (path below the stack), the check id, and why."""

    path: str
    check: str
    comment: str


CHECKOV_SKIPS: tuple[CheckovSkip, ...] = (
    CheckovSkip(
        "Storage/AccessLogs/Resource",
        "CKV_AWS_18",
        "this is the server-access-log bucket itself; logging it to itself would loop",
    ),
    CheckovSkip("Ingest/Events/Resource", "CKV_AWS_27", _SQS_MANAGED),
    CheckovSkip("Ingest/DeadLetters/Resource", "CKV_AWS_27", _SQS_MANAGED),
    CheckovSkip(
        "Ingest/LabelCache/Resource",
        "CKV_AWS_119",
        "encrypted with the AWS-managed DynamoDB KMS key; the cache holds labels by checksum, "
        "no image data, and is rebuilt by relabeling",
    ),
    CheckovSkip("Ingest/FunctionLogs/Resource", "CKV_AWS_158", _LOGS_DEFAULT_KEY),
    CheckovSkip("Orchestration/ExecutionLogs/Resource", "CKV_AWS_158", _LOGS_DEFAULT_KEY),
    CheckovSkip(f"{BUCKET_NOTIFICATIONS_HANDLER_LOGS}/Resource", "CKV_AWS_158", _LOGS_DEFAULT_KEY),
    CheckovSkip(
        "Ingest/Function/Resource",
        "CKV_AWS_116",
        "invoked by an SQS event source mapping, where a Lambda DLQ never applies (async "
        "invocations only): failed messages go to the ingest queue's dead-letter queue",
    ),
    CheckovSkip("Ingest/Function/Resource", "CKV_AWS_117", _NO_VPC),
    CheckovSkip(
        "Ingest/Function/Resource",
        "CKV_AWS_115",
        "concurrency is capped by the SQS event source's MaximumConcurrency (Rekognition TPS); "
        "reserved concurrency below it would throttle messages back to the queue",
    ),
    CheckovSkip(
        "Ingest/Function/Resource",
        "CKV_AWS_173",
        "the environment holds only the bucket and table names and numeric settings, no "
        "secret; Lambda encrypts it at rest with its AWS-managed key",
    ),
    *(
        CheckovSkip(
            f"{BUCKET_NOTIFICATIONS_HANDLER}/Resource",
            check,
            "CDK's own singleton that configures bucket notifications during deployment, "
            f"invoked synchronously by CloudFormation; its properties are not ours ({why})",
        )
        for check, why in (
            ("CKV_AWS_116", "a DLQ never applies to synchronous calls"),
            ("CKV_AWS_117", "it calls only the S3 API"),
            ("CKV_AWS_115", "it runs once per deployment"),
        )
    ),
)


def skip_checkov_findings(stack: Stack) -> list[CheckovSkip]:
    """Write each kept finding as ``Metadata.checkov.skip`` on its resource (idempotent).

    Args:
        stack: The imgpipe stack, after all its constructs are built.

    Returns:
        The skips applied.

    Raises:
        KeyError: A skip names a construct path that the stack does not have.
    """
    by_path: dict[str, list[CheckovSkip]] = {}
    for skip in CHECKOV_SKIPS:
        by_path.setdefault(skip.path, []).append(skip)
    for path, skips in by_path.items():
        resource = stack.node.try_find_child(path.split("/")[0])
        for part in path.split("/")[1:]:
            resource = resource.node.try_find_child(part) if resource is not None else None
        if not isinstance(resource, CfnResource):
            raise KeyError(f"checkov skip for a missing resource: {stack.node.path}/{path}")
        wanted = [{"id": skip.check, "comment": skip.comment} for skip in skips]
        existing = resource.get_metadata(METADATA_KEY) or {}
        merged = list(existing.get("skip", []))
        merged += [entry for entry in wanted if entry not in merged]
        resource.add_metadata(METADATA_KEY, {"skip": merged})
    return list(CHECKOV_SKIPS)
