"""The bucket that holds everything, laid out by prefix.

==================  =======================================  ===============================
prefix              written by                               read by
==================  =======================================  ===============================
``ingest/``         users (uploads; never rewritten)         ingest Lambda, process job
``metadata/``       ingest Lambda (one record per image)     process job
``quarantine/``     ingest Lambda (one per rejected object)  analyze job
``processed/``      process job (thumbnails, Parquet table)  analyze job, Athena
``reports/``        analyze and report jobs                  users
``logs/emr/``       EMR Serverless (job logs, expired)       operators
``athena-results/`` the Athena workgroup (query results)     Athena users
==================  =======================================  ===============================

Only ``ingest/`` triggers the pipeline, and nothing the pipeline writes goes there (no loop).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from imgpipe.records import REPORTS_PREFIX
from stacks.settings import DeploySettings

EMR_LOGS_PREFIX = "logs/emr/"
ATHENA_RESULTS_PREFIX = "athena-results/"
ATHENA_RESULTS_DAYS = 7


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
                    # Query results are throw-away: the queries can be run again.
                    id="expire-athena-results",
                    prefix=ATHENA_RESULTS_PREFIX,
                    expiration=Duration.days(ATHENA_RESULTS_DAYS),
                ),
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(settings.noncurrent_version_days),
                    # A deletion (the aws check's own sample, a report expired above) leaves a
                    # delete marker; once its old versions have expired it hides nothing, so
                    # it goes too instead of piling up in the version listing.
                    expired_object_delete_marker=True,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
        )
