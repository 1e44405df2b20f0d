"""PLACEHOLDER being replaced (issue 2): Glue database/tables and the Athena workgroup."""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.settings import DeploySettings


class Catalog(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
