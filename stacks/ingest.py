"""PLACEHOLDER being replaced (issue 2): the ingest path (queue, DLQ, Lambda)."""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.settings import DeploySettings


class Ingest(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, bucket: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(self, "DeadLetters", enforce_ssl=True)
        self.queue = sqs.Queue(self, "Events", enforce_ssl=True)
