"""Calls -> IAM requests (action, resource ARN, condition context), and AWS's verdict on them.

The verdict comes from NCC Group's principalmapper (``local_policy_simulation``): its
statement matching covers Action/NotAction, Resource/NotResource, Principal (AWS and
Service) and the condition operators with ``IfExists``/``ForAnyValue``. Chosen over moto's
``IAMPolicy`` (a condition that does not match an Allow makes moto answer DENIED, and it
ignores service principals) and over policyuniverse/iam-ape (they expand or summarise
policies but do not evaluate a request with its condition context). Written here is only
what neither covers: which policies apply to a request and how they combine (explicit Deny
wins; else an identity Allow for a role of the account, or a resource-policy Allow; KMS also
needs its key policy to admit the account or the role).

Known simplifications of principalmapper: resource patterns match case-insensitively, and a
resource-policy ``{"AWS": "*"}`` principal does not match a service caller (the stack's only
such statements are TLS-only Denies, which a TLS request never meets either way).
"""

from __future__ import annotations

import collections
import collections.abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.rehearsal.cfn import ACCOUNT, PARTITION, REGION, Stack

# principalmapper 1.1.5 (its latest) imports Mapping from collections, removed in Python
# 3.10; the ABCs it means are these.
collections.Mapping = collections.abc.Mapping  # type: ignore[attr-defined]
collections.MutableMapping = collections.abc.MutableMapping  # type: ignore[attr-defined]
from principalmapper.common import Node, Policy  # noqa: E402
from principalmapper.querying import local_policy_simulation as sim  # noqa: E402

RPR = sim.ResourcePolicyEvalResult


@dataclass(frozen=True, order=True)
class Call:
    """One API call: service, operation and its string parameters (nested names dotted)."""

    service: str
    operation: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, service: str, operation: str, **params: str) -> Call:
        return cls(service, operation, tuple(sorted(params.items())))

    def get(self, name: str, default: str = "") -> str:
        return dict(self.params).get(name, default)

    def describe(self) -> str:
        shown = ("Bucket", "Key", "Prefix", "CopySource", "TableName", "Resource")
        named = ", ".join(f"{k}={v}" for k, v in self.params if k in shown or ":" in k)
        return f"{self.service} {self.operation}({named})"


@dataclass(frozen=True, order=True)
class Request:
    """What IAM evaluates: an action on a resource with the request's condition context."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        keys = ", ".join(f"{k}={v!r}" for k, v in self.context)
        return f"{self.action} on {self.resource} [{keys}]"


def _context(**keys: str) -> tuple[tuple[str, str], ...]:
    # Every call is made over TLS: the TLS-only Deny statements must not match it.
    return tuple(sorted({"aws:SecureTransport": "true", **keys}.items()))


def s3_object(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
}
# Requests that can meet a missing key (the call is marked Missing="true": recorded from
# the answer, or declared): S3 answers them 404 only to a caller that may also list the
# bucket, and a GET/HEAD carries no s3:prefix, so a prefix-conditioned ListBucket does not
# count. The object-level action is needed all the same.
S3_PROBES = frozenset({"GetObject", "HeadObject"})
S3_LIST = frozenset({"ListObjectsV2", "ListObjects"})
SAME_NAME = {
    "dynamodb": "table/{TableName}",
    "logs": "log-group:{logGroupName}:log-stream:{logStreamName}",
    "sqs": "{QueueName}",
}


def requests_for(call: Call) -> list[Request]:
    """The IAM requests AWS evaluates for ``call`` (the mapping table, kept explicit)."""
    service, op = call.service, call.operation
    if service == "s3":
        bucket = call.get("Bucket")
        if op in S3_LIST:
            prefix = call.get("Prefix")
            context = _context(**{"s3:prefix": prefix}) if prefix else _context()
            return [Request("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}", context)]
        if op == "CopyObject":
            source = call.get("CopySource")
            return [
                Request("s3:PutObject", s3_object(bucket, call.get("Key")), _context()),
                Request("s3:GetObject", f"arn:{PARTITION}:s3:::{source}", _context()),
            ]
        action = S3_OBJECT_ACTIONS[op]
        if op in S3_PROBES and call.get("VersionId"):
            action = "s3:GetObjectVersion"
        found = [Request(action, s3_object(bucket, call.get("Key")), _context())]
        if op in S3_PROBES and call.get("Missing") == "true":
            found.append(Request("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}", _context()))
        return found
    if service == "rekognition" and op == "DetectLabels":
        found = [Request("rekognition:DetectLabels", "*", _context())]
        if call.get("Image.S3Object.Name"):
            # Rekognition reads the object with the caller's rights.
            image = Call.of(
                "s3",
                "GetObject",
                Bucket=call.get("Image.S3Object.Bucket"),
                Key=call.get("Image.S3Object.Name"),
                VersionId=call.get("Image.S3Object.Version"),
            )
            found.append(requests_for(image)[0])
        return found
    if service == "xray":
        return [Request(f"xray:{op}", "*", _context())]
    if service in SAME_NAME and not call.get("Resource"):
        arn = f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:" + SAME_NAME[service].format(
            **dict(call.params)
        )
        return [Request(f"{service}:{op}", arn, _context())]
    # Calls whose resource is given whole (SNS topic, KMS key, EMR application, role...).
    resource = call.get("Resource", "*")
    extra = {k: v for k, v in call.params if k.startswith(("aws:", "iam:", "kms:"))}
    return [Request(f"{service}:{op}", resource, _context(**extra))]


@dataclass(frozen=True)
class Principal:
    """Who calls: a role of the stack (identity policies) or an AWS service principal."""

    name: str
    arn: str = ""
    policies: tuple[Mapping[str, Any], ...] = ()
    service: str = ""

    def node(self) -> Node:
        attached = [Policy(self.arn, f"p{i}", dict(doc)) for i, doc in enumerate(self.policies)]
        return Node(self.arn, self.name, attached, None, {}, None, 0, False, False, None, False, {})


@dataclass
class Verdict:
    allowed: bool
    why: str
    used: list[int] = field(default_factory=list)  # indexes of identity statements that allow


def role_principal(stack: Stack, role_lid: str) -> Principal:
    """A role with every identity policy attached to it (inline, AWS::IAM::Policy)."""
    docs: list[Mapping[str, Any]] = []
    props = stack.properties(role_lid)
    docs += [p["PolicyDocument"] for p in props.get("Policies", [])]
    for lid in stack.logical_ids("AWS::IAM::Policy"):
        if {"Ref": role_lid} in stack.resources[lid]["Properties"].get("Roles", []):
            docs.append(stack.properties(lid)["PolicyDocument"])
    if props.get("ManagedPolicyArns"):
        raise NotImplementedError(f"{role_lid} has managed policies: resolve them here first")
    return Principal(role_lid, stack.arn(role_lid), tuple(docs))


def identity_statements(principal: Principal) -> list[dict[str, Any]]:
    return [statement for doc in principal.policies for statement in _listify(doc["Statement"])]


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_policy(stack: Stack, action: str, resource: str) -> Mapping[str, Any] | None:
    """The policy the resource of ``resource`` (an ARN) carries for ``action``, if any."""
    for lid in stack.logical_ids("AWS::S3::BucketPolicy"):
        props = stack.properties(lid)
        bucket = f"arn:{PARTITION}:s3:::{props['Bucket']}"
        if resource == bucket or resource.startswith(f"{bucket}/"):
            return dict(props["PolicyDocument"])
    for kind, field_name in (
        ("AWS::SQS::QueuePolicy", "Queues"),
        ("AWS::SNS::TopicPolicy", "Topics"),
    ):
        for lid in stack.logical_ids(kind):
            props = stack.properties(lid)
            targets = {
                _queue_arn(t) if kind.startswith("AWS::SQS") else t for t in props[field_name]
            }
            if resource in targets:
                return dict(props["PolicyDocument"])
    for lid in stack.logical_ids("AWS::KMS::Key"):
        if resource == stack.arn(lid):
            return dict(stack.properties(lid)["KeyPolicy"])
    for lid in stack.logical_ids("AWS::IAM::Role"):
        # A role's trust policy governs assuming it, nothing else (not iam:PassRole).
        if action == "sts:AssumeRole" and resource == stack.arn(lid):
            return dict(stack.properties(lid)["AssumeRolePolicyDocument"])
    return None


def _queue_arn(url: str) -> str:
    _, _, _, account, name = url.split("/")
    return f"arn:{PARTITION}:sqs:{REGION}:{account}:{name}"


def decide(stack: Stack, principal: Principal, request: Request) -> Verdict:
    """AWS's answer to ``principal`` making ``request``, with the reason."""
    context = sim.CaseInsensitiveDict(dict(request.context))
    policy = resource_policy(stack, request.action, request.resource)
    caller: Node | str = principal.node() if principal.arn else principal.service
    on_resource = (
        sim.resource_policy_authorization(
            caller, ACCOUNT, policy, request.action, request.resource, context
        )
        if policy is not None
        else RPR.NO_MATCH
    )
    if on_resource is RPR.DENY_MATCH:
        return Verdict(False, "explicit Deny in the resource's policy")
    if not principal.arn:
        if on_resource is RPR.SERVICE_MATCH:
            return Verdict(True, "resource policy allows the service")
        return Verdict(False, "no resource-policy statement allows the service principal")
    statements = identity_statements(principal)
    for statement in statements:
        if statement["Effect"] == "Deny" and _matches(statement, "Deny", request, context):
            return Verdict(False, "explicit Deny in an identity policy")
    used = [
        i
        for i, statement in enumerate(statements)
        if statement["Effect"] == "Allow" and _matches(statement, "Allow", request, context)
    ]
    if request.action.startswith("kms:") or request.action == "sts:AssumeRole":
        # Key and trust policies are required: the identity policy counts only where the key
        # policy delegates to the account (its root principal).
        if on_resource is RPR.NODE_MATCH or (on_resource is RPR.ROOT_MATCH and used):
            return Verdict(True, "key/trust policy with the identity policy", used)
        return Verdict(False, f"key/trust policy does not admit the caller ({on_resource.name})")
    if used or on_resource is RPR.NODE_MATCH:
        return Verdict(True, "allowed", used)
    return Verdict(False, "no identity-policy Allow matches (implicit deny)")


def _matches(statement: Mapping[str, Any], effect: str, request: Request, context: Any) -> bool:
    return bool(
        sim.policy_has_matching_statement(
            {"Statement": [dict(statement)]}, effect, request.action, request.resource, context
        )
    )


def denials(
    stack: Stack,
    principal: Principal,
    requests: Iterable[Request],
    because: Mapping[Request, Call] | None = None,
) -> list[str]:
    """One line per request AWS would refuse: principal, action, resource, context, reason,
    and the call that needs it (``because``)."""
    lines = []
    for request in sorted(set(requests)):
        verdict = decide(stack, principal, request)
        if not verdict.allowed:
            line = f"{principal.name or principal.service}: {request.describe()}: {verdict.why}"
            if because and request in because:
                line += f"; needed by {because[request].describe()}"
            lines.append(line)
    return lines
