"""The deployment's typed settings, read once from ``cdk.json`` context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from imgpipe.config import PipelineConfig


@dataclass(frozen=True)
class DeploySettings:
    """Deployment tunables; ``pipeline`` is the same config the jobs and the Lambda read.

    Attributes:
        stack_prefix: Prefix of every stack name.
        report_retention_days: Reports older than this are expired.
        emr_log_retention_days: EMR job logs older than this are expired.
        access_log_retention_days: Server access logs older than this are expired.
        noncurrent_version_days: Overwritten object versions are kept this long.
    """

    stack_prefix: str = "Imgpipe"
    report_retention_days: int = 365
    emr_log_retention_days: int = 30
    access_log_retention_days: int = 90
    noncurrent_version_days: int = 30
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
