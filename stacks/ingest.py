"""The ingest path: S3 ``ingest/`` events -> SQS (+ DLQ) -> the ingest Lambda -> records.

The Lambda validates, describes and labels each uploaded object and writes exactly one record
under ``metadata/`` or ``quarantine/``. Its role reads ``ingest/`` and its own records and
writes only those two record prefixes: it can neither rewrite an upload nor delete anything.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from imgpipe.deployment import ENV_BUCKET, ENV_LABEL_CACHE_TABLE
from imgpipe.records import INGEST_PREFIX, METADATA_PREFIX, QUARANTINE_PREFIX
from stacks.bundling import lambda_code
from stacks.settings import DeploySettings

HANDLER = "lambda_src.ingest_handler.lambda_handler"
# AWS guidance for SQS event sources: visibility timeout at least 6x the function timeout, so
# a message is not redelivered while retries of a throttled batch are still running.
VISIBILITY_TIMEOUT_FACTOR = 6
DLQ_RETENTION = Duration.days(14)  # the SQS maximum: time to inspect and redrive failures
CACHE_KEY = "checksum"
CACHE_TTL_ATTRIBUTE = "expires_at"


def retention_days(days: int) -> logs.RetentionDays:
    """The CloudWatch retention enum member for ``days`` (which must be a value AWS allows)."""
    allowed = {
        1: logs.RetentionDays.ONE_DAY,
        3: logs.RetentionDays.THREE_DAYS,
        5: logs.RetentionDays.FIVE_DAYS,
        7: logs.RetentionDays.ONE_WEEK,
        14: logs.RetentionDays.TWO_WEEKS,
        30: logs.RetentionDays.ONE_MONTH,
        60: logs.RetentionDays.TWO_MONTHS,
        90: logs.RetentionDays.THREE_MONTHS,
        120: logs.RetentionDays.FOUR_MONTHS,
        150: logs.RetentionDays.FIVE_MONTHS,
        180: logs.RetentionDays.SIX_MONTHS,
        365: logs.RetentionDays.ONE_YEAR,
        400: logs.RetentionDays.THIRTEEN_MONTHS,
        545: logs.RetentionDays.EIGHTEEN_MONTHS,
        731: logs.RetentionDays.TWO_YEARS,
        1827: logs.RetentionDays.FIVE_YEARS,
        3653: logs.RetentionDays.TEN_YEARS,
    }
    if days not in allowed:
        raise ValueError(f"log retention must be one of {sorted(allowed)} days, not {days}")
    return allowed[days]


class Ingest(Construct):
    """Queue, dead-letter queue, label cache and the ingest Lambda, wired to the bucket.

    Attributes:
        queue: Receives the bucket's ``ObjectCreated`` events under ``ingest/``.
        dead_letter_queue: Messages that failed ``max_receive_count`` times.
        label_cache: Labels by content checksum, so the same bytes are never labeled twice.
        function: The ingest Lambda.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = self._build_dead_letter_queue()
        self.queue = self._build_queue(settings, self.dead_letter_queue)
        self._notify_on_upload(bucket, self.queue)
        self.label_cache = self._build_label_cache()
        log_group = self._build_log_group(settings)
        role = self._build_function_role(bucket, self.label_cache, log_group)
        self.function = self._build_function(settings, bucket, role, log_group)
        self._consume_queue(settings, self.function, self.queue)

    def _build_dead_letter_queue(self) -> sqs.Queue:
        return sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )

    def _build_queue(self, settings: DeploySettings, dead_letters: sqs.Queue) -> sqs.Queue:
        # SQS-managed encryption rather than a KMS key: S3 can send to it without a key policy.
        return sqs.Queue(
            self,
            "Events",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(
                VISIBILITY_TIMEOUT_FACTOR * settings.lambda_timeout_seconds
            ),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letters, max_receive_count=settings.max_receive_count
            ),
        )

    def _notify_on_upload(self, bucket: s3.IBucket, queue: sqs.Queue) -> None:
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(queue),
            s3.NotificationKeyFilter(prefix=INGEST_PREFIX),
        )

    def _build_label_cache(self) -> dynamodb.Table:
        # A cache: losing it costs relabeling, never data, so it goes with the stack.
        return dynamodb.Table(
            self,
            "LabelCache",
            partition_key=dynamodb.Attribute(name=CACHE_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=CACHE_TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _build_log_group(self, settings: DeploySettings) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            "FunctionLogs",
            retention=retention_days(settings.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _build_function_role(
        self, bucket: s3.IBucket, cache: dynamodb.Table, log_group: logs.LogGroup
    ) -> iam.Role:
        """Least privilege, statement by statement (no broad ``grant_*`` helpers)."""
        role = iam.Role(
            self, "FunctionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
        )
        records = [
            bucket.arn_for_objects(f"{METADATA_PREFIX}*"),
            bucket.arn_for_objects(f"{QUARANTINE_PREFIX}*"),
        ]
        statements = [
            # Reads are pinned to the version HEAD saw by its ETag (If-Match), never by version
            # id, so GetObjectVersion is not needed (the access rehearsal records no such call).
            # Rekognition's S3Object reads with these same (the caller's) rights.
            iam.PolicyStatement(
                sid="ReadUploads",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{INGEST_PREFIX}*")],
            ),
            # A redelivered event reuses the record written before (same checksum) instead
            # of labeling again, so the function reads its own records back.
            iam.PolicyStatement(sid="ReadRecords", actions=["s3:GetObject"], resources=records),
            # Without ListBucket, S3 answers a GET or HEAD of a missing key with 403 instead of
            # 404, and "no record yet" would look like a failure. An s3:prefix condition cannot
            # help: object requests carry no prefix, so the statement would never match them.
            iam.PolicyStatement(
                sid="TellMissingFromForbidden",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
            ),
            iam.PolicyStatement(sid="WriteRecords", actions=["s3:PutObject"], resources=records),
            # DetectLabels has no resource-level permissions: AWS requires "*".
            iam.PolicyStatement(
                sid="DetectLabels", actions=["rekognition:DetectLabels"], resources=["*"]
            ),
            iam.PolicyStatement(
                sid="LabelCache",
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                resources=[cache.table_arn],
            ),
            iam.PolicyStatement(
                sid="WriteLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        return role

    def _build_function(
        self,
        settings: DeploySettings,
        bucket: s3.IBucket,
        role: iam.Role,
        log_group: logs.LogGroup,
    ) -> lambda_.Function:
        environment = {
            **settings.pipeline.to_env(),
            ENV_BUCKET: bucket.bucket_name,
            ENV_LABEL_CACHE_TABLE: self.label_cache.table_name,
        }
        architecture = (
            lambda_.Architecture.ARM_64
            if settings.architecture == "arm64"
            else lambda_.Architecture.X86_64
        )
        return lambda_.Function(
            self,
            "Function",
            description="imgpipe ingest: validate, describe and label uploads",
            runtime=lambda_.Runtime.PYTHON_3_11,
            architecture=architecture,
            handler=HANDLER,
            code=lambda_code(settings),
            memory_size=settings.lambda_memory_mb,
            timeout=Duration.seconds(settings.lambda_timeout_seconds),
            environment=environment,
            tracing=lambda_.Tracing.ACTIVE,  # adds the X-Ray write statement to the role
            role=role,
            log_group=log_group,
        )

    def _consume_queue(
        self, settings: DeploySettings, function: lambda_.Function, queue: sqs.Queue
    ) -> None:
        # Maximum concurrency caps concurrent invocations, hence Rekognition calls per second
        # (the account's TPS quota); partial batch failures keep good records from being retried.
        function.add_event_source(
            event_sources.SqsEventSource(
                queue,
                batch_size=settings.ingest_batch_size,
                report_batch_item_failures=True,
                max_concurrency=settings.ingest_max_concurrency,
            )
        )
