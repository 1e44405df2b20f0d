"""Every cdk-nag finding the stack keeps on purpose, each with the reason it is kept.

One place, so a reviewer sees every exception to the AwsSolutions and Serverless rule packs at
once. Findings that were cheap to fix were fixed where the resource is built (encryption,
TLS-only policies, log retention, tracing); what is left here is either impossible to scope
further or a deliberate design choice. cdk-nag 3 acknowledges each finding by its full id
(``AwsSolutions-IAM5[Resource::...]``), so a newly added wildcard is a new, loud finding.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Acknowledgment, CfnElement, Stack, Validations
from constructs import IConstruct

from imgpipe.records import (
    IMAGES_TABLE_PREFIX,
    INGEST_PREFIX,
    METADATA_PREFIX,
    PROCESSED_PREFIX,
    QUARANTINE_PREFIX,
    REPORTS_PREFIX,
)
from stacks.github_oidc import CHECK_FOLDER, GithubOidc
from stacks.ingest import Ingest
from stacks.orchestration import Orchestration
from stacks.processing import Processing
from stacks.quicksight import QuickSightDashboard
from stacks.storage import ATHENA_RESULTS_PREFIX, EMR_LOGS_PREFIX, Storage

# The singleton Lambda that CDK adds to the stack to configure bucket notifications.
BUCKET_NOTIFICATIONS_HANDLER = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
# Its log group, which the stack creates explicitly (stacks.imgpipe_stack).
BUCKET_NOTIFICATIONS_HANDLER_LOGS = "BucketNotificationsHandlerLogs"
INGEST_PREFIXES = (INGEST_PREFIX, METADATA_PREFIX, QUARANTINE_PREFIX)
JOB_PREFIXES = (*INGEST_PREFIXES, PROCESSED_PREFIX, REPORTS_PREFIX, EMR_LOGS_PREFIX)


@dataclass(frozen=True)
class Acknowledged:
    """One acknowledged finding: where, which rule (with its finding id), and why."""

    path: str
    rule: str
    reason: str


def _logical_id(element: IConstruct) -> str:
    assert isinstance(element, CfnElement)
    return str(Stack.of(element).resolve(element.logical_id))


def _prefix_reason(prefix: str) -> str:
    return (
        f"Object keys under {prefix} are created at run time (uploads, records, outputs); "
        f"the grant is limited to that one prefix of the pipeline's bucket."
    )


class _Acknowledger:
    def __init__(self) -> None:
        self.done: list[Acknowledged] = []

    def __call__(self, construct: IConstruct, rule: str, reason: str) -> None:
        Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))
        self.done.append(Acknowledged(construct.node.path, rule, reason))

    def object_prefixes(self, role: IConstruct, bucket_arn: str, prefixes: tuple[str, ...]) -> None:
        for prefix in prefixes:
            rule = f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}*]"
            self(role, rule, _prefix_reason(prefix))


def acknowledge_findings(
    stack: Stack,
    *,
    storage: Storage,
    ingest: Ingest,
    processing: Processing,
    orchestration: Orchestration,
    github: GithubOidc | None = None,
    quicksight: QuickSightDashboard | None = None,
) -> list[Acknowledged]:
    """Acknowledge the findings the stack keeps on purpose; return what was acknowledged.

    Call once, at the end of the stack's constructor, after every construct exists.
    """
    ack = _Acknowledger()
    bucket_arn = f"<{_logical_id(storage.bucket.node.default_child)}.Arn>"  # type: ignore[arg-type]
    _acknowledge_ingest(ack, ingest, bucket_arn)
    _acknowledge_processing(ack, processing, bucket_arn)
    _acknowledge_orchestration(ack, processing, orchestration)
    _acknowledge_cdk_internals(ack, stack)
    if github is not None:
        _acknowledge_github_oidc(ack, github, bucket_arn, orchestration)
    if quicksight is not None:
        _acknowledge_quicksight(ack, quicksight, bucket_arn)
    return ack.done


def _acknowledge_ingest(ack: _Acknowledger, ingest: Ingest, bucket_arn: str) -> None:
    role = ingest.function.role
    assert role is not None
    ack.object_prefixes(role, bucket_arn, INGEST_PREFIXES)
    ack(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "rekognition:DetectLabels and xray:PutTraceSegments/PutTelemetryRecords support no "
        "resource-level permissions: their only valid resource is '*'.",
    )
    runtime_reason = (
        "The Lambda runs the Python minor of the EMR Serverless release (settings."
        "python_version), so one set of wheels built for it serves both; it moves with the "
        "EMR release, not ahead of it."
    )
    ack(ingest.function, "AwsSolutions-L1", runtime_reason)
    ack(ingest.function, "Serverless-LambdaLatestVersion", runtime_reason)
    ack(
        ingest.function,
        "Serverless-LambdaDLQ",
        "The function is invoked only by its SQS event source, never asynchronously: a failed "
        "batch returns to the queue, whose redrive policy moves it to the dead-letter queue.",
    )
    ack(
        _event_source_mapping(ingest),
        "Serverless-LambdaEventSourceMappingDestination",
        "On-failure destinations exist for stream and Kafka sources only; for an SQS source, "
        "failed messages go to the queue's dead-letter queue (redrive policy).",
    )
    ack(
        ingest.dead_letter_queue,
        "Serverless-SQSRedrivePolicy",
        "This queue is the dead-letter queue: its messages are inspected and redriven by an "
        "operator, and a dead-letter queue of its own would only hide them further.",
    )


def _event_source_mapping(ingest: Ingest) -> IConstruct:
    """The SQS event source mapping CDK created under the function."""
    mappings = [
        child
        for child in ingest.function.node.children
        if child.node.id.startswith("SqsEventSource:")
    ]
    assert len(mappings) == 1, "expected exactly one SQS event source on the ingest function"
    return mappings[0]


def _acknowledge_processing(ack: _Acknowledger, processing: Processing, bucket_arn: str) -> None:
    ack.object_prefixes(processing.job_role, bucket_arn, JOB_PREFIXES)


def _acknowledge_orchestration(
    ack: _Acknowledger, processing: Processing, orchestration: Orchestration
) -> None:
    role = orchestration.state_machine.role
    application = f"<{_logical_id(processing.application)}.ApplicationId>"
    ack(
        role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:emr-serverless:<AWS::Region>:"
        f"<AWS::AccountId>:/applications/{application}/jobruns/*]",
        "Job run ids are created by StartJobRun at run time; GetJobRun/CancelJobRun are "
        "limited to the job runs of this one application.",
    )
    ack(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "The X-Ray actions (tracing) and CloudWatch Logs vended-log delivery actions "
        "(logs:CreateLogDelivery...) that Step Functions logging needs support no "
        "resource-level permissions.",
    )


def _acknowledge_cdk_internals(ack: _Acknowledger, stack: Stack) -> None:
    handler = stack.node.try_find_child(BUCKET_NOTIFICATIONS_HANDLER)
    if handler is not None:
        ack(
            handler.node.find_child("Role"),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "CDK's BucketNotificationsHandler is an AWS-managed pattern: a deploy-time custom "
            "resource whose role CDK builds with the basic execution policy (logs only).",
        )


def _acknowledge_github_oidc(
    ack: _Acknowledger, github: GithubOidc, bucket_arn: str, orchestration: Orchestration
) -> None:
    role = github.deploy_role
    for prefix in (INGEST_PREFIX, METADATA_PREFIX, QUARANTINE_PREFIX):
        ack(
            role,
            f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}{CHECK_FOLDER}*]",
            f"The smoke test (imgpipe aws check) names its sample at run time; the grant is "
            f"limited to the check's own folder {prefix}{CHECK_FOLDER}, never the user's data.",
        )
    ack(
        role,
        f"AwsSolutions-IAM5[Resource::{bucket_arn}/{REPORTS_PREFIX}*]",
        "The smoke test reads the report of the run it started, whose run id (its folder "
        "under reports/) is created at run time; read only, reports only.",
    )
    ack(
        role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudformation:<AWS::Region>:"
        f"<AWS::AccountId>:stack/{Stack.of(role).stack_name}/*]",
        "A stack ARN ends in an id that CloudFormation assigns at creation; DescribeStacks is "
        "limited to this one stack name (the check reads its outputs).",
    )
    machine = f"<{_logical_id(orchestration.state_machine.node.default_child)}.Name>"  # type: ignore[arg-type]
    ack(
        role,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:"
        f"<AWS::AccountId>:execution:{machine}:*]",
        "Execution names are created by StartExecution at run time; DescribeExecution and "
        "GetExecutionHistory are limited to the executions of this one state machine.",
    )


def _acknowledge_quicksight(
    ack: _Acknowledger, quicksight: QuickSightDashboard, bucket_arn: str
) -> None:
    ack(
        quicksight.role,
        f"AwsSolutions-IAM5[Resource::{bucket_arn}/{IMAGES_TABLE_PREFIX}*]",
        "Athena reads the image table's Parquet files, whose names the process job creates at "
        "run time; read only, limited to the table's own prefix.",
    )
    ack(
        quicksight.role,
        f"AwsSolutions-IAM5[Resource::{bucket_arn}/{QUARANTINE_PREFIX}*]",
        "Athena reads the quarantine table's records, one file per rejected input named after "
        "it at run time; read only, limited to the quarantine prefix.",
    )
    ack(
        quicksight.role,
        f"AwsSolutions-IAM5[Resource::{bucket_arn}/{ATHENA_RESULTS_PREFIX}*]",
        "Athena writes each query's results under a new query id in the workgroup's enforced "
        "results location; the grant is limited to that one prefix.",
    )
