"""PLACEHOLDER being replaced (issue 2): the EMR Serverless application and job role."""

from __future__ import annotations

from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.settings import DeploySettings


class Processing(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self.job_role = iam.Role(
            self, "JobRole", assumed_by=iam.ServicePrincipal("emr-serverless.amazonaws.com")
        )
        self.application_id = "placeholder"

    def spark_submit(self, job: str) -> dict[str, Any]:
        return {"entryPoint": f"s3://placeholder/{job}.py", "sparkSubmitParameters": ""}
