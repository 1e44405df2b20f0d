"""The state machine ``Process -> Analyze -> Report`` and the failure notifications.

Each step is one EMR Serverless job run, started and awaited with Step Functions' optimized
``startJobRun.sync`` integration (aws-cdk-lib has no L2 task for it, hence ``CustomState``).
The jobs' command lines come from :func:`imgpipe.jobs.job_arguments`, the same definition the
jobs parse, and the run id is the execution's name: a run started as ``2024-06-01`` writes
``reports/2024-06-01/``.

Each start carries a ``ClientToken`` that EMR Serverless uses for idempotency: a repeated
``StartJobRun`` with the same token returns the job run of the first call instead of starting
another. The token is a SHA-256 (64 hex characters, the API's maximum length) of the
execution's id, the step and the execution's redrive count:

- a Retry of the state sends the same token, so a start that did reach EMR (its answer lost to
  a throttle or a 5xx) gets the job run it already started, never a second one;
- a redrive keeps the execution's id but increments ``$$.Execution.RedriveCount``, so the
  redriven step gets a new token and a new job run (the old token would hand back the old,
  failed run);
- each step has its own token, and a new execution has a new id.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from imgpipe.jobs import JOBS, job_arguments
from imgpipe.records import REPORTS_PREFIX
from stacks.intrinsics import EXECUTION_NAME, arguments_expression, client_token_expression
from stacks.processing import Processing
from stacks.settings import DeploySettings

# The optimized integration's Resource, after "arn:PARTITION:" (the stack's partition, so that
# the definition also works in aws-cn and aws-us-gov).
START_JOB_RUN_SYNC = "states:::emr-serverless:startJobRun.sync"
# The EventBridge rule that Step Functions manages to await EMR Serverless job runs (.sync).
SYNC_RULE_NAME = "StepFunctionsGetEventsForEMRServerlessJobRule"
# Service-side hiccups worth another attempt: EMR Serverless's throttling and 5xx errors
# (ThrottlingException, InternalServerException in its API reference). A failed Spark job
# (States.TaskFailed) is not retried: it is most often a code or data problem, and a rerun
# costs a full job's compute. Step Functions' page on this integration
# (docs.aws.amazon.com/step-functions/latest/dg/connect-emr-serverless.html) names no errors,
# and an unknown name never matches, so both spellings in use are listed: "EMRServerless."
# is what public workflows on this optimized integration match and report; "EmrServerless."
# is the documented ServiceName.ErrorName form of the AWS SDK integrations
# (supported-services-awssdk.html). A name the service never reports costs nothing.
TRANSIENT_EMR_ERRORS = ("ThrottlingException", "InternalServerException")
RETRYABLE_ERRORS = tuple(
    f"{prefix}.{error}"
    for prefix in ("EMRServerless", "EmrServerless")
    for error in TRANSIENT_EMR_ERRORS
)
STEPS = ("process", "analyze", "report")


class Orchestration(Construct):
    """The pipeline's state machine, its log group and the failure topic.

    Attributes:
        topic: Failed runs and alarms are published here (KMS-encrypted, TLS-only).
        topic_key: The topic's customer-managed KMS key.
        state_machine: The STANDARD state machine; start one execution per run.
        log_group: The state machine's execution log (level ALL, with execution data).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        bucket: s3.IBucket,
        processing: Processing,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic_key = self._build_topic_key()
        self.topic = self._build_topic(settings, self.topic_key)
        self.log_group = self._build_log_group(settings)
        self.state_machine = self._build_state_machine(settings, bucket, processing)
        self._grant_job_runs(processing)
        # Publishing to a KMS-encrypted topic needs the key, on top of sns:Publish.
        self.topic_key.grant(self.state_machine, "kms:Decrypt", "kms:GenerateDataKey")

    def _build_topic_key(self) -> kms.Key:
        # A customer-managed key, not alias/aws/sns: CloudWatch alarms cannot publish to a topic
        # under the AWS-managed key, whose key policy no one can extend to cloudwatch.amazonaws.com.
        key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the imgpipe notification topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        return key

    def _build_topic(self, settings: DeploySettings, key: kms.IKey) -> sns.Topic:
        topic = sns.Topic(
            self,
            "Notifications",
            display_name="imgpipe notifications",
            master_key=key,
            enforce_ssl=True,
        )
        # enforce_ssl writes a TopicPolicy, and a TopicPolicy replaces SNS's default policy: with
        # only its Deny, nothing would let CloudWatch publish, and no alarm would notify anyone.
        # Only this account's alarms may. The state machine needs nothing here: its role's
        # identity policy suffices within the account.
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": (
                            f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}"
                            ":alarm:*"
                        )
                    },
                },
            )
        )
        if settings.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        return topic

    def _build_log_group(self, settings: DeploySettings) -> logs.LogGroup:
        log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            # The vendedlogs prefix keeps the account's CloudWatch Logs resource policy small.
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-pipeline",
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Set on the L1 resource: RetentionDays is an enum of names, the setting is in days.
        cfn_log_group = log_group.node.default_child
        assert isinstance(cfn_log_group, logs.CfnLogGroup)
        cfn_log_group.retention_in_days = settings.log_retention_days
        return log_group

    def _build_state_machine(
        self, settings: DeploySettings, bucket: s3.IBucket, processing: Processing
    ) -> sfn.StateMachine:
        notify = self._build_failure_path()
        root = f"s3://{bucket.bucket_name}"
        jobs = [self._job_state(step, settings, root, processing) for step in STEPS]
        for step, state in zip(STEPS, jobs, strict=True):
            state.add_retry(
                errors=list(RETRYABLE_ERRORS),
                interval=Duration.seconds(30),
                backoff_rate=2.0,
                max_attempts=3,
                jitter_strategy=sfn.JitterType.FULL,
            )
            state.add_catch(self._failed_step(step).next(notify), result_path="$.error")
        chain = sfn.Chain.start(jobs[0])
        for state in jobs[1:]:
            chain = chain.next(state)
        definition = chain.next(self._succeeded(bucket))
        # Three jobs back to back, each capped by its own timeout, plus retries' waits.
        timeout = Duration.minutes(len(STEPS) * settings.job_timeout_minutes + 30)
        return sfn.StateMachine(
            self,
            "Pipeline",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                include_execution_data=True,
            ),
        )

    def _job_state(
        self, step: str, settings: DeploySettings, root: str, processing: Processing
    ) -> sfn.CustomState:
        """One ``startJobRun.sync`` Task state running job ``step``."""
        spec = JOBS[step]
        placeholder = "RUN-ID-PLACEHOLDER"  # never a real argument: replaced by the intrinsic
        arguments = job_arguments(
            step, root, placeholder if spec.needs_run_id else None, settings.pipeline
        )
        submit = processing.spark_submit(step)
        spark_submit: dict[str, Any] = {
            "EntryPoint": submit["entryPoint"],
            "SparkSubmitParameters": submit["sparkSubmitParameters"],
        }
        if spec.needs_run_id:
            spark_submit["EntryPointArguments.$"] = arguments_expression(arguments, placeholder)
        else:
            spark_submit["EntryPointArguments"] = arguments
        return sfn.CustomState(
            self,
            step.capitalize(),
            state_json={
                "Type": "Task",
                "Resource": f"arn:{Stack.of(self).partition}:{START_JOB_RUN_SYNC}",
                "Parameters": {
                    "ApplicationId": processing.application_id,
                    "ExecutionRoleArn": processing.job_role.role_arn,
                    "Name.$": f"States.Format('imgpipe-{step}-{{}}', {EXECUTION_NAME})",
                    "ClientToken.$": client_token_expression(step),
                    "JobDriver": {"SparkSubmit": spark_submit},
                    "ConfigurationOverrides": {
                        "MonitoringConfiguration": {
                            "S3MonitoringConfiguration": {"LogUri": processing.log_uri}
                        }
                    },
                    "ExecutionTimeoutMinutes": settings.job_timeout_minutes,
                },
                # EMR Serverless cancels the job at ExecutionTimeoutMinutes; this is a backstop
                # for a job stuck before it starts (e.g. waiting for capacity).
                "TimeoutSeconds": (settings.job_timeout_minutes + 30) * 60,
                "ResultPath": f"$.{step}_job",  # the job run as EMR reports it, for the record
            },
        )

    def _failed_step(self, step: str) -> sfn.Pass:
        """Records which step failed, for the notification."""
        return sfn.Pass(
            self,
            f"{step.capitalize()} failed",
            result=sfn.Result.from_string(step.capitalize()),
            result_path="$.failed_step",
        )

    def _build_failure_path(self) -> sfn.Chain:
        """Publish the failed step and its cause, then fail the execution with that error."""
        message = sfn.JsonPath.format(
            "imgpipe run {} failed in step {}. Error: {}. Cause: {}",
            sfn.JsonPath.execution_name,
            sfn.JsonPath.string_at("$.failed_step"),
            sfn.JsonPath.string_at("$.error.Error"),
            sfn.JsonPath.string_at("$.error.Cause"),
        )
        notify = tasks.SnsPublish(
            self,
            "Notify failure",
            topic=self.topic,
            subject="imgpipe run failed",
            message=sfn.TaskInput.from_text(message),
            result_path=sfn.JsonPath.DISCARD,
        )
        fail = sfn.Fail(self, "Run failed", error_path="$.error.Error", cause_path="$.error.Cause")
        return notify.next(fail)

    def _succeeded(self, bucket: s3.IBucket) -> sfn.Pass:
        """The execution's output: the run id and where its report is."""
        return sfn.Pass(
            self,
            "Report ready",
            parameters={
                "run_id": sfn.JsonPath.execution_name,
                "report_uri": sfn.JsonPath.format(
                    f"s3://{bucket.bucket_name}/{REPORTS_PREFIX}{{}}/index.html",
                    sfn.JsonPath.execution_name,
                ),
            },
        )

    def _grant_job_runs(self, processing: Processing) -> None:
        """What ``startJobRun.sync`` needs: start, poll and cancel runs, pass the job role."""
        stack = Stack.of(self)
        application_arn = (
            f"arn:{stack.partition}:emr-serverless:{stack.region}:{stack.account}"
            f":/applications/{processing.application_id}"
        )
        for statement in (
            iam.PolicyStatement(
                actions=["emr-serverless:StartJobRun"], resources=[application_arn]
            ),
            iam.PolicyStatement(
                actions=["emr-serverless:GetJobRun", "emr-serverless:CancelJobRun"],
                resources=[f"{application_arn}/jobruns/*"],
            ),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[processing.job_role.role_arn],
                conditions={
                    "StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}
                },
            ),
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[
                    f"arn:{stack.partition}:events:{stack.region}:{stack.account}"
                    f":rule/{SYNC_RULE_NAME}"
                ],
            ),
        ):
            self.state_machine.add_to_role_policy(statement)
