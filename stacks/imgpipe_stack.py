"""The imgpipe stack: one construct per concern, wired by typed constructor arguments.

One stack rather than several: the bucket's event notification, the queue and the jobs' roles
reference each other, and across stacks those references would form a dependency cycle.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, CfnResource, RemovalPolicy, Stack, Tags
from aws_cdk import aws_logs as logs
from constructs import Construct

from imgpipe.deployment import (
    OUTPUT_BUCKET,
    OUTPUT_DEAD_LETTER_QUEUE,
    OUTPUT_INGEST_FUNCTION,
    OUTPUT_INGEST_LOG_GROUP,
    OUTPUT_INGEST_QUEUE,
    OUTPUT_STATE_MACHINE,
)
from stacks.acknowledgements import (
    BUCKET_NOTIFICATIONS_HANDLER,
    BUCKET_NOTIFICATIONS_HANDLER_LOGS,
    acknowledge_findings,
)
from stacks.catalog import Catalog
from stacks.checkov_skips import skip_checkov_findings
from stacks.github_oidc import GithubOidc
from stacks.ingest import Ingest, retention_days
from stacks.observability import Observability
from stacks.orchestration import Orchestration
from stacks.processing import Processing
from stacks.quicksight import QuickSightDashboard
from stacks.settings import DeploySettings
from stacks.storage import Storage

PROJECT_TAG = ("project", "imgpipe")


class ImgpipeStack(Stack):
    """Storage, ingest, processing, orchestration, observability and catalog."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        # On every taggable resource: cost allocation and "what is this?" in the console.
        Tags.of(self).add(*PROJECT_TAG)
        storage = Storage(self, "Storage", settings=settings)
        ingest = Ingest(self, "Ingest", settings=settings, bucket=storage.bucket)
        processing = Processing(self, "Processing", settings=settings, bucket=storage.bucket)
        orchestration = Orchestration(
            self, "Orchestration", settings=settings, bucket=storage.bucket, processing=processing
        )
        Observability(
            self, "Observability", settings=settings, ingest=ingest, orchestration=orchestration
        )
        catalog = Catalog(self, "Catalog", settings=settings, bucket=storage.bucket)
        quicksight = None
        if settings.quicksight_principal_arn:
            quicksight = QuickSightDashboard(
                self, "QuickSight", settings=settings, bucket=storage.bucket, catalog=catalog
            )
        github = None
        if settings.github_repository:
            github = GithubOidc(
                self,
                "GithubOidc",
                settings=settings,
                bucket=storage.bucket,
                state_machine=orchestration.state_machine,
                queues=(ingest.queue, ingest.dead_letter_queue),
            )
        retain_bucket_notifications_handler_logs(self, settings)

        CfnOutput(self, OUTPUT_BUCKET, value=storage.bucket.bucket_name)
        CfnOutput(self, OUTPUT_STATE_MACHINE, value=orchestration.state_machine.state_machine_arn)
        CfnOutput(self, OUTPUT_INGEST_QUEUE, value=ingest.queue.queue_url)
        CfnOutput(self, OUTPUT_DEAD_LETTER_QUEUE, value=ingest.dead_letter_queue.queue_url)
        # For `imgpipe aws check`'s hint when nothing ingests: where the Lambda's errors are.
        CfnOutput(self, OUTPUT_INGEST_FUNCTION, value=ingest.function.function_name)
        CfnOutput(self, OUTPUT_INGEST_LOG_GROUP, value=ingest.function.log_group.log_group_name)
        acknowledge_findings(
            self,
            storage=storage,
            ingest=ingest,
            processing=processing,
            orchestration=orchestration,
            github=github,
            quicksight=quicksight,
        )
        skip_checkov_findings(self)


def retain_bucket_notifications_handler_logs(
    stack: Stack, settings: DeploySettings
) -> logs.LogGroup | None:
    """Give CDK's singleton bucket-notifications Lambda an explicit log group with retention.

    ``bucket.add_event_notification`` adds a deploy-time Lambda whose log group Lambda would
    otherwise create on its first run, with no retention. This log group takes the name Lambda
    writes to (``/aws/lambda/<function name>``, by reference to the function), the configured
    retention and the removal policy of the other log groups. Every bucket-notifications custom
    resource depends on it, so it exists before the handler first runs and, on deletion, is
    removed only after the handler's last run.

    Call after every construct that adds a bucket notification.

    Returns:
        The log group, or ``None`` when the stack has no bucket notifications.
    """
    handler = stack.node.try_find_child(BUCKET_NOTIFICATIONS_HANDLER)
    if handler is None:
        return None
    function = handler.node.find_child("Resource")
    assert isinstance(function, CfnResource)
    assert function.cfn_resource_type == "AWS::Lambda::Function", function.cfn_resource_type
    log_group = logs.LogGroup(
        stack,
        BUCKET_NOTIFICATIONS_HANDLER_LOGS,
        log_group_name=f"/aws/lambda/{function.ref}",
        retention=retention_days(settings.log_retention_days),
        removal_policy=RemovalPolicy.DESTROY,
    )
    for construct in stack.node.find_all():
        if (
            isinstance(construct, CfnResource)
            and construct.cfn_resource_type == "Custom::S3BucketNotifications"
        ):
            construct.node.add_dependency(log_group)
    return log_group
