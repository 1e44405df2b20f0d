"""The bucket that holds everything (``ingest/``, ``metadata/``, ``quarantine/``...)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from imgpipe.records import REPORTS_PREFIX
from stacks.settings import DeploySettings

EMR_LOGS_PREFIX = "logs/emr/"


class Storage(Construct):
    """The data bucket and its server-access-log bucket.

    Encrypted at rest, TLS-only, no public access, versioned so that no upload is ever lost
    to an overwrite, and retained when the stack is deleted.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploySettings) -> None:
        super().__init__(scope, construct_id)
        self.log_bucket = self._build_log_bucket(settings)
        self.bucket = self._build_data_bucket(settings, self.log_bucket)

    def _build_log_bucket(self, settings: DeploySettings) -> s3.Bucket:
        return s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(settings.access_log_retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
        )

    def _build_data_bucket(self, settings: DeploySettings, log_bucket: s3.Bucket) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Data",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=log_bucket,
            server_access_logs_prefix="data-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-emr-logs",
                    prefix=EMR_LOGS_PREFIX,
                    expiration=Duration.days(settings.emr_log_retention_days),
                ),
                s3.LifecycleRule(
                    id="expire-old-reports",
                    prefix=REPORTS_PREFIX,
                    expiration=Duration.days(settings.report_retention_days),
                ),
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(settings.noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
        )
