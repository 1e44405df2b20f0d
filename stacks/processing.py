"""Spark on EMR Serverless: the application, the job role and the jobs' code.

The project code (``--py-files``) and its third-party dependencies (``spark.archives``) are
built locally at synth time (see :mod:`stacks.bundling`) and uploaded as CDK assets; each
job's entry script ``spark_jobs/<module>.py`` is an asset of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_emrserverless as emrserverless
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from imgpipe.jobs import JOBS
from imgpipe.records import (
    INGEST_PREFIX,
    METADATA_PREFIX,
    PROCESSED_PREFIX,
    QUARANTINE_PREFIX,
    REPORTS_PREFIX,
)
from stacks.bundling import PROJECT_ROOT, build_code_zip, build_emr_archive
from stacks.settings import DeploySettings
from stacks.storage import EMR_LOGS_PREFIX

IDLE_TIMEOUT_MINUTES = 15
DEPS_ALIAS = "deps"  # spark.archives unpacks the archive into ./deps on driver and executors
DRIVER_CORES = 2
EXECUTOR_CORES = 4

READ_PREFIXES = (
    INGEST_PREFIX,
    METADATA_PREFIX,
    QUARANTINE_PREFIX,
    PROCESSED_PREFIX,
    REPORTS_PREFIX,
)
WRITE_PREFIXES = (PROCESSED_PREFIX, REPORTS_PREFIX, EMR_LOGS_PREFIX)
# Overwriting the Parquet table deletes the previous files; nothing else is ever deleted.
DELETE_PREFIXES = (PROCESSED_PREFIX,)


class Processing(Construct):
    """The EMR Serverless Spark application and what its jobs run with.

    Attributes:
        application: The EMR Serverless application (auto-start, auto-stop, capped capacity).
        application_id: Its id (a token), for ``StartJobRun``.
        job_role: The execution role jobs run as (``executionRoleArn``).
        log_uri: Where job logs go (``s3://BUCKET/logs/emr/``).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self.log_uri = f"s3://{bucket.bucket_name}/{EMR_LOGS_PREFIX}"
        self.application = self._build_application(settings)
        self.application_id: str = self.application.attr_application_id
        self.job_role = self._build_job_role(bucket)
        self._code = self._upload("Code", build_code_zip())
        self._dependencies = self._upload("Dependencies", build_emr_archive(settings))
        self._entry_points: dict[str, s3_assets.Asset] = {}

    def spark_submit(self, job: str) -> dict[str, Any]:
        """The ``jobDriver.sparkSubmit`` of ``job`` (a key of :data:`imgpipe.jobs.JOBS`).

        The caller adds ``entryPointArguments`` (from :func:`imgpipe.jobs.job_arguments`).
        """
        entry_point = self._entry_point(job)
        return {
            "entryPoint": entry_point.s3_object_url,
            "sparkSubmitParameters": " ".join(self._spark_parameters()),
        }

    def _build_application(self, settings: DeploySettings) -> emrserverless.CfnApplication:
        # No pre-initialised capacity: it bills while idle, and a run a day does not need it.
        return emrserverless.CfnApplication(
            self,
            "Application",
            name=f"{settings.stack_prefix.lower()}-spark",
            type="SPARK",
            release_label=settings.emr_release,
            architecture="ARM64" if settings.architecture == "arm64" else "X86_64",
            auto_start_configuration=emrserverless.CfnApplication.AutoStartConfigurationProperty(
                enabled=True
            ),
            auto_stop_configuration=emrserverless.CfnApplication.AutoStopConfigurationProperty(
                enabled=True, idle_timeout_minutes=IDLE_TIMEOUT_MINUTES
            ),
            maximum_capacity=emrserverless.CfnApplication.MaximumAllowedResourcesProperty(
                cpu=f"{settings.emr_max_vcpu} vCPU", memory=f"{settings.emr_max_memory_gb} GB"
            ),
            # Jobs log here even when a caller sets no monitoring override.
            monitoring_configuration=emrserverless.CfnApplication.MonitoringConfigurationProperty(
                s3_monitoring_configuration=emrserverless.CfnApplication.S3MonitoringConfigurationProperty(
                    log_uri=self.log_uri
                )
            ),
        )

    def _build_job_role(self, bucket: s3.IBucket) -> iam.Role:
        """Reads the pipeline's prefixes; writes processed/, reports/, logs/emr/ only."""
        stack = Stack.of(self)
        # Only EMR Serverless jobs of this account's application may assume the role.
        principal = iam.ServicePrincipal(
            "emr-serverless.amazonaws.com",
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": self.application.attr_arn},
            },
        )
        role = iam.Role(self, "JobRole", assumed_by=principal)

        def objects(prefixes: tuple[str, ...]) -> list[str]:
            return [bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]

        statements = [
            # Hadoop's file system probes a folder's own key ("metadata", no slash) before
            # listing it, and a 403 there fails the job: the folder keys are readable too. No
            # such object exists, so this reads nothing more than the prefixes below.
            iam.PolicyStatement(
                sid="ReadPipelineData",
                actions=["s3:GetObject"],
                resources=objects(READ_PREFIXES)
                + [bucket.arn_for_objects(prefix.rstrip("/")) for prefix in READ_PREFIXES],
            ),
            iam.PolicyStatement(
                sid="WriteResults",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=objects(WRITE_PREFIXES),
            ),
            iam.PolicyStatement(
                sid="OverwriteImageTable",
                actions=["s3:DeleteObject"],
                resources=objects(DELETE_PREFIXES),
            ),
            # Without ListBucket, S3 answers a GET or HEAD of a missing key with 403 instead of
            # 404: the process job's first read (its input manifest, absent before the first
            # success) and EMRFS's probes of output paths not yet written would fail with
            # AccessDenied. An s3:prefix condition cannot help: object requests carry no
            # prefix, so a conditioned statement never matches them. This one statement also
            # covers Spark's directory listings; it lists names, never reads an object.
            iam.PolicyStatement(
                sid="TellMissingFromForbidden",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
        return role

    def _upload(self, construct_id: str, path: Path) -> s3_assets.Asset:
        """An asset the job role may read: exactly its object, not the whole assets bucket."""
        asset = s3_assets.Asset(self, construct_id, path=str(path))
        self.job_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[asset.bucket.arn_for_objects(asset.s3_object_key)],
            )
        )
        return asset

    def _entry_point(self, job: str) -> s3_assets.Asset:
        # Uploaded on first use, so that only the jobs the state machine runs are deployed.
        if job not in JOBS:
            raise ValueError(f"unknown job {job!r}; choose one of {', '.join(JOBS)}")
        if job not in self._entry_points:
            script = PROJECT_ROOT / "spark_jobs" / f"{JOBS[job].module}.py"
            if not script.is_file():
                raise FileNotFoundError(f"job {job!r} has no entry script at {script}")
            self._entry_points[job] = self._upload(f"{job.title()}EntryPoint", script)
        return self._entry_points[job]

    def _spark_parameters(self) -> list[str]:
        settings = self._settings
        # Executors fill what the application's cap leaves after the driver.
        max_executors = max(1, (settings.emr_max_vcpu - DRIVER_CORES) // EXECUTOR_CORES)
        confs = {
            "spark.archives": f"{self._dependencies.s3_object_url}#{DEPS_ALIAS}",
            "spark.emr-serverless.driverEnv.PYTHONPATH": f"./{DEPS_ALIAS}",
            "spark.executorEnv.PYTHONPATH": f"./{DEPS_ALIAS}",
            # The archive's compiled wheels are built for one Python (settings.python_version);
            # unpinned, the release may start another, and numpy from the archive fails to
            # import. Properties as in AWS's EMR Serverless guide, "Using different Python
            # versions" (docs.aws.amazon.com/emr/latest/EMR-Serverless-UserGuide/using-python.html).
            "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": settings.python_executable,
            "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": settings.python_executable,
            "spark.executorEnv.PYSPARK_PYTHON": settings.python_executable,
            "spark.driver.cores": str(DRIVER_CORES),
            "spark.driver.memory": "4g",
            "spark.executor.cores": str(EXECUTOR_CORES),
            "spark.executor.memory": "8g",
            # Image decoding runs in Python workers, outside the JVM heap: give them room.
            "spark.executor.memoryOverhead": "4g",
            "spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.maxExecutors": str(max_executors),
            # Many small JSON records per split would leave most cores idle on decoding.
            "spark.sql.files.maxPartitionBytes": "32m",
            # No Glue Data Catalog (EMR Serverless's default metastore): the jobs use paths.
            "spark.sql.catalogImplementation": "in-memory",
            # An Arrow batch of the process job is seconds of decoding at 64 images; the
            # default of 10,000 records would hold a task's results until its last image.
            "spark.sql.execution.arrow.maxRecordsPerBatch": "64",
        }
        return ["--py-files", self._code.s3_object_url] + [
            part for name, value in confs.items() for part in ("--conf", f"{name}={value}")
        ]
