"""PLACEHOLDER being replaced (issue 2): the state machine process -> analyze -> report."""

from __future__ import annotations

from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.processing import Processing
from stacks.settings import DeploySettings


class Orchestration(Construct):
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
        self.topic = sns.Topic(self, "Failures")
        self.state_machine = sfn.StateMachine(
            self,
            "Pipeline",
            definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(self, "Start")),
        )
