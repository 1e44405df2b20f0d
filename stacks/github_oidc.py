"""Roles that GitHub Actions assumes with its OIDC token: deploy from ``main``, diff on PRs.

Optional (``github_repository`` in the ``imgpipe`` context). The deploy role trusts only the
repository's ``production`` environment and its ``main`` branch; it deploys through the CDK
bootstrap roles (which do the actual CloudFormation and asset work) and may do what the smoke
test ``imgpipe aws check`` does, under the check's own prefixes. The diff role, for pull
requests, may only assume the bootstrap lookup role, which reads the deployed template.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from imgpipe.deployment import CHECK_FOLDER
from imgpipe.records import INGEST_PREFIX, METADATA_PREFIX, QUARANTINE_PREFIX, REPORTS_PREFIX
from stacks.settings import DeploySettings

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
DEPLOY_ENVIRONMENT = "production"
# The qualifier of `cdk bootstrap`'s default template; its roles are named after it.
CDK_QUALIFIER = "hnb659fds"
BOOTSTRAP_ROLES = ("deploy", "file-publishing", "image-publishing", "lookup")
OUTPUT_DEPLOY_ROLE = "GithubDeployRoleArn"
OUTPUT_DIFF_ROLE = "GithubDiffRoleArn"
# Deploy and smoke test (a Spark run included) fit in two hours; the default is one.
DEPLOY_SESSION = Duration.hours(2)


def subjects(repository: str) -> dict[str, list[str]]:
    """The ``sub`` claims each role trusts, by role (GitHub's default claim format)."""
    return {
        # Only the protected environment: a job that names it gets the "environment" claim
        # (never a "ref" one), so trusting "ref:refs/heads/main" too would only let jobs on
        # main that skip the environment, and its required reviewers, deploy. The environment's
        # deployment branches are limited to main in the repository's settings (README).
        "deploy": [f"repo:{repository}:environment:{DEPLOY_ENVIRONMENT}"],
        "diff": [f"repo:{repository}:pull_request"],
    }


class GithubOidc(Construct):
    """The GitHub OIDC provider (created or imported) and the deploy and diff roles.

    Attributes:
        provider: The account's OIDC provider for GitHub Actions tokens.
        deploy_role: Assumed by the deploy job (environment ``production`` only).
        diff_role: Assumed by the ``cdk diff`` job of pull requests from the repository.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        bucket: s3.IBucket,
        state_machine: sfn.StateMachine,
        queues: tuple[sqs.IQueue, ...],
    ) -> None:
        super().__init__(scope, construct_id)
        self.provider = self._provider(settings)
        claims = subjects(settings.github_repository)
        self.deploy_role = self._role("DeployRole", claims["deploy"], "deploys imgpipe from main")
        self.diff_role = self._role("DiffRole", claims["diff"], "runs cdk diff on pull requests")
        self.deploy_role.add_to_policy(self._assume_bootstrap_roles(BOOTSTRAP_ROLES))
        self.diff_role.add_to_policy(self._assume_bootstrap_roles(("lookup",)))
        self._grant_check(bucket, state_machine, queues)
        CfnOutput(self, "DeployRoleArn", value=self.deploy_role.role_arn).override_logical_id(
            OUTPUT_DEPLOY_ROLE
        )
        CfnOutput(self, "DiffRoleArn", value=self.diff_role.role_arn).override_logical_id(
            OUTPUT_DIFF_ROLE
        )

    def _provider(self, settings: DeploySettings) -> iam.IOidcProvider:
        if settings.github_oidc_provider_arn:
            return iam.OidcProviderNative.from_oidc_provider_arn(
                self, "Provider", settings.github_oidc_provider_arn
            )
        # The native AWS::IAM::OIDCProvider: no custom-resource Lambda, and IAM validates
        # GitHub's certificate itself, so no thumbprint to pin and rotate.
        return iam.OidcProviderNative(
            self, "Provider", url=GITHUB_OIDC_URL, client_ids=[STS_AUDIENCE]
        )

    def _role(self, construct_id: str, sub: list[str], purpose: str) -> iam.Role:
        principal = iam.WebIdentityPrincipal(
            self.provider.oidc_provider_arn,
            conditions={
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": sub,
                }
            },
        )
        return iam.Role(
            self,
            construct_id,
            assumed_by=principal,
            description=f"GitHub Actions (OIDC) {purpose}",
            max_session_duration=DEPLOY_SESSION,
        )

    def _assume_bootstrap_roles(self, kinds: tuple[str, ...]) -> iam.PolicyStatement:
        stack = Stack.of(self)
        return iam.PolicyStatement(
            actions=["sts:AssumeRole"],
            resources=[
                f"arn:{stack.partition}:iam::{stack.account}:role/"
                f"cdk-{CDK_QUALIFIER}-{kind}-role-{stack.account}-{stack.region}"
                for kind in kinds
            ],
        )

    def _grant_check(
        self, bucket: s3.IBucket, state_machine: sfn.StateMachine, queues: tuple[sqs.IQueue, ...]
    ) -> None:
        """What ``imgpipe aws check`` calls, and nothing of the user's data beyond reports."""
        stack = Stack.of(self)
        role = self.deploy_role
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudformation:DescribeStacks"],
                resources=[
                    stack.format_arn(
                        service="cloudformation",
                        resource="stack",
                        resource_name=f"{stack.stack_name}/*",
                    )
                ],
            )
        )
        check_objects = [
            bucket.arn_for_objects(f"{prefix}{CHECK_FOLDER}*")
            for prefix in (INGEST_PREFIX, METADATA_PREFIX)
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                resources=check_objects,
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    bucket.arn_for_objects(f"{QUARANTINE_PREFIX}{CHECK_FOLDER}*"),
                    bucket.arn_for_objects(f"{REPORTS_PREFIX}*"),
                ],
            )
        )
        # Without ListBucket, S3 answers a GET of a record not yet written with 403, not 404,
        # and the check could not tell "not ingested yet" from "denied".
        role.add_to_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:GetExecutionHistory"],
                resources=[
                    stack.format_arn(
                        service="states",
                        resource="execution",
                        resource_name=f"{state_machine.state_machine_name}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["sqs:GetQueueAttributes"], resources=[q.queue_arn for q in queues]
            )
        )
