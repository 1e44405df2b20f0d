"""The synthesized template with its intrinsics resolved into concrete names and ARNs.

Policies reference resources through ``Ref``/``Fn::GetAtt``/``Fn::Join``/``Fn::Sub``; the
rehearsal needs the ARNs a deployment would have. Every resource gets its logical id as its
physical name, except those the moto rig creates under fixed names (the bucket, the table).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"
STACK = "Imgpipe"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}
_SUB = re.compile(r"\$\{([^}]+)\}")


@dataclass(frozen=True)
class Stack:
    """The template's resources, with fixed names for some of them.

    Attributes:
        resources: ``Resources`` of the CloudFormation JSON.
        names: Physical names by logical id (the rest are named by their logical id).
    """

    resources: Mapping[str, Any]
    names: Mapping[str, str]

    def logical_ids(self, kind: str, prefix: str = "") -> list[str]:
        return [
            lid
            for lid, res in self.resources.items()
            if res["Type"] == kind and lid.startswith(prefix)
        ]

    def one(self, kind: str, prefix: str = "") -> str:
        (found,) = self.logical_ids(kind, prefix)
        return found

    def name(self, lid: str) -> str:
        return self.names.get(lid, lid)

    def ref(self, lid: str) -> str:
        """What ``Ref`` returns for each resource type the policies name."""
        if lid in PSEUDO:
            return PSEUDO[lid]
        kind, name = self.resources[lid]["Type"], self.name(lid)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if kind in ("AWS::SNS::Topic", "AWS::StepFunctions::StateMachine"):
            return self.arn(lid)
        return name

    def arn(self, lid: str) -> str:
        kind, name = self.resources[lid]["Type"], self.name(lid)
        region = f"{PARTITION}:{{}}:{REGION}:{ACCOUNT}"
        arns = {
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::SQS::Queue": f"arn:{region.format('sqs')}:{name}",
            "AWS::SNS::Topic": f"arn:{region.format('sns')}:{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::DynamoDB::Table": f"arn:{region.format('dynamodb')}:table/{name}",
            "AWS::Logs::LogGroup": f"arn:{region.format('logs')}:log-group:{name}:*",
            "AWS::KMS::Key": f"arn:{region.format('kms')}:key/{name}",
            "AWS::Lambda::Function": f"arn:{region.format('lambda')}:function:{name}",
            "AWS::StepFunctions::StateMachine": (
                f"arn:{region.format('states')}:stateMachine:{name}"
            ),
            "AWS::CloudWatch::Alarm": f"arn:{region.format('cloudwatch')}:alarm:{name}",
            "AWS::EMRServerless::Application": (
                f"arn:{region.format('emr-serverless')}:/applications/{name}"
            ),
        }
        return arns[kind]

    def get_att(self, lid: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn(lid)
        if attribute == "ApplicationId":
            return self.name(lid)
        if attribute == "QueueName":
            return self.name(lid)
        raise KeyError(f"no rule for Fn::GetAtt {lid}.{attribute}")

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its concrete result."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                lid, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(lid, attribute)
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self.resolve(p)) for p in parts)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return _SUB.sub(lambda m: self._sub(m.group(1), variables), text)
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub(self, name: str, variables: Mapping[str, Any]) -> str:
        if name in variables:
            return str(self.resolve(variables[name]))
        if "." in name:
            lid, attribute = name.split(".", 1)
            return self.get_att(lid, attribute)
        return self.ref(name)

    def properties(self, lid: str) -> dict[str, Any]:
        return dict(self.resolve(self.resources[lid].get("Properties", {})))
