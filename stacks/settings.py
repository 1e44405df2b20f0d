"""The deployment's typed settings, read once from ``cdk.json`` context."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from imgpipe.config import PipelineConfig

_GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+")
_QUICKSIGHT_PRINCIPAL = re.compile(r"arn:aws[a-z-]*:quicksight:[a-z0-9-]+:\d{12}:(user|group)/.+")


@dataclass(frozen=True)
class DeploySettings:
    """Deployment tunables; ``pipeline`` is the same config the jobs and the Lambda read.

    Attributes:
        stack_prefix: Prefix of every stack name.
        report_retention_days: Reports older than this are expired.
        emr_log_retention_days: EMR job logs older than this are expired.
        access_log_retention_days: Server access logs older than this are expired.
        noncurrent_version_days: Overwritten object versions are kept this long.
        architecture: ``arm64`` (Graviton, ~35% cheaper per unit of work) or ``x86_64``, for
            both the Lambda and the EMR Serverless workers; the bundled wheels follow it.
        python_version: The Python of the Lambda runtime and EMR release (wheels target it).
        emr_release: EMR Serverless release label; its Spark minor must match local pyspark.
        emr_max_vcpu: Most vCPUs the EMR Serverless application may use at once.
        emr_max_memory_gb: Most memory (GB) the application may use at once.
        job_timeout_minutes: A Spark job running longer is cancelled.
        lambda_memory_mb: Memory (and so CPU) of the ingest Lambda.
        lambda_timeout_seconds: Timeout of one ingest invocation (one SQS batch).
        ingest_batch_size: SQS messages per Lambda invocation.
        ingest_max_concurrency: Most concurrent ingest Lambdas (caps Rekognition calls/s).
        max_receive_count: Deliveries of a message before it moves to the dead-letter queue.
        alarm_email: Where alarms and failed-run notifications are e-mailed ("" for none).
        log_retention_days: Retention of the Lambda and state machine log groups.
        github_repository: ``owner/name`` of the GitHub repository whose workflow deploys the
            stack: adds the OIDC deploy and diff roles (``stacks.github_oidc``); "" for none.
        github_oidc_provider_arn: The account's existing GitHub OIDC provider (an account has
            at most one per URL); "" creates it with the roles.
        quicksight_principal_arn: A QuickSight user or group ARN: adds the QuickSight data
            source, datasets and dashboard shared with it (``stacks.quicksight``); "" for none.
    """

    stack_prefix: str = "Imgpipe"
    report_retention_days: int = 365
    emr_log_retention_days: int = 30
    access_log_retention_days: int = 90
    noncurrent_version_days: int = 30
    architecture: str = "arm64"
    python_version: str = "3.11"
    emr_release: str = "emr-spark-8.0.0"
    emr_max_vcpu: int = 32
    emr_max_memory_gb: int = 128
    job_timeout_minutes: int = 120
    lambda_memory_mb: int = 1536
    lambda_timeout_seconds: int = 120
    ingest_batch_size: int = 10
    ingest_max_concurrency: int = 5
    max_receive_count: int = 5
    alarm_email: str = ""
    log_retention_days: int = 90
    github_repository: str = ""
    github_oidc_provider_arn: str = ""
    quicksight_principal_arn: str = ""
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> DeploySettings:
        """Read ``imgpipe`` (deployment) and ``imgpipe:pipeline`` (pipeline) context keys."""
        raw = dict(context.get("imgpipe", {}) or {})
        known = {f.name for f in fields(cls)} - {"pipeline"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown imgpipe context option(s): {', '.join(unknown)}")
        converted = {name: type(getattr(cls(), name))(value) for name, value in raw.items()}
        pipeline = PipelineConfig.from_mapping(context.get("imgpipe:pipeline", {}) or {})
        return cls(**converted, pipeline=pipeline)

    def __post_init__(self) -> None:
        if self.architecture not in {"arm64", "x86_64"}:
            raise ValueError(f"architecture must be arm64 or x86_64, not {self.architecture!r}")
        if self.ingest_max_concurrency < 2:
            raise ValueError("ingest_max_concurrency must be at least 2 (the SQS minimum)")
        if not 1 <= self.ingest_batch_size <= 10:
            raise ValueError("ingest_batch_size must be 1..10")
        if self.lambda_timeout_seconds > 900:
            raise ValueError("lambda_timeout_seconds must be at most 900")
        # The role trusts tokens naming this repository: a typo would trust nobody (or another).
        if self.github_repository and not _GITHUB_REPOSITORY.fullmatch(self.github_repository):
            raise ValueError(
                f"github_repository must be 'owner/name', not {self.github_repository!r}"
            )
        if self.github_oidc_provider_arn and not self.github_repository:
            raise ValueError("github_oidc_provider_arn is used only with github_repository")
        if self.quicksight_principal_arn and not _QUICKSIGHT_PRINCIPAL.fullmatch(
            self.quicksight_principal_arn
        ):
            raise ValueError(
                "quicksight_principal_arn must be a QuickSight user or group ARN "
                f"(arn:aws:quicksight:REGION:ACCOUNT:user/default/NAME), "
                f"not {self.quicksight_principal_arn!r}"
            )

    @property
    def pip_platform(self) -> str:
        """pip's ``--platform`` for wheels that run on the target architecture."""
        return "manylinux2014_aarch64" if self.architecture == "arm64" else "manylinux2014_x86_64"

    @property
    def python_executable(self) -> str:
        """The interpreter the Spark driver and executors run: the one the wheels target.

        EMR releases ship several Pythons side by side (``emr-spark-8.0.0``: 3.11, 3.12 and
        3.13), each at ``/usr/bin/pythonX.Y``.
        """
        return f"/usr/bin/python{self.python_version}"
