"""Access rehearsal: every deployed role can do what its code does, under AWS's rules.

Each component's real code runs on moto while a botocore hook records its calls
(:mod:`tests.rehearsal.record`); what cannot run here (Spark's storage access, Lambda's and
Step Functions' runtime calls, service-to-service edges) is derived from the template or
declared beside the jobs (:mod:`tests.rehearsal.deployed`). Each call is mapped to the IAM
requests AWS evaluates and judged against the synthesized policies (:mod:`tests.rehearsal.access`).
cdk-nag, cfn-lint and checkov read the template; this catches what only a first deployed run
would: a 403 where the code expected a 404, a topic that refuses its alarms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest

from imgpipe import records
from stacks.storage import EMR_LOGS_PREFIX
from tests.rehearsal import access, deployed, record
from tests.rehearsal.access import Call, Principal, Request
from tests.rehearsal.cfn import Stack

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

JOBS = ("process", "analyze", "report")
# Actions AWS authorises only on "*": a statement granting them is exempt from the wildcard check.
STAR_ONLY = ("rekognition:DetectLabels", "xray:", "logs:")


@dataclass
class Rehearsal:
    stack: Stack
    principals: dict[str, Principal]  # by component: ingest, process, ..., state-machine, services
    requests: dict[str, list[Request]]
    calls: dict[str, list[Call]]

    def denials(self, component: str) -> list[str]:
        # The first call (in recorded order) that needs each request, to name in the message.
        because: dict[Request, Call] = {}
        for call in self.calls[component]:
            for request in access.requests_for(call):
                because.setdefault(request, call)
        return access.denials(
            self.stack, self.principals[component], self.requests[component], because
        )


def _role_of(stack: Stack, arn: str) -> str:
    (lid,) = [lid for lid in stack.logical_ids("AWS::IAM::Role") if stack.arn(lid) == arn]
    return lid


def _requests(calls: list[Call]) -> list[Request]:
    return sorted({r for call in calls for r in access.requests_for(call)})


@pytest.fixture(scope="module")
def rehearsal(imgpipe_template: Template) -> Iterator[Rehearsal]:
    resources = imgpipe_template.to_json()["Resources"]
    bare = Stack(resources, {})
    names = {
        bare.one("AWS::S3::Bucket", "StorageData"): record.BUCKET,
        bare.one("AWS::DynamoDB::Table"): record.TABLE,
    }
    stack = Stack(resources, names)
    (function,) = [
        lid
        for lid in stack.logical_ids("AWS::Lambda::Function")
        if resources[lid]["Properties"].get("Handler") == "lambda_src.ingest_handler.lambda_handler"
    ]
    machine = stack.one("AWS::StepFunctions::StateMachine")
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorded = record.record_all(monkeypatch)
    calls = {"ingest": recorded["ingest"] + deployed.lambda_runtime(stack, function)}
    for job in JOBS:
        calls[job] = recorded[job] + deployed.job_runtime(stack, machine, job, record.BUCKET)
    calls["state-machine"] = deployed.state_machine_calls(stack, machine)
    principals = {
        "ingest": access.role_principal(stack, _role_of(stack, stack.properties(function)["Role"])),
        "state-machine": access.role_principal(
            stack, _role_of(stack, stack.properties(machine)["RoleArn"])
        ),
    }
    execution_roles = {
        state["Parameters"]["ExecutionRoleArn"]
        for state in deployed.task_states(stack, machine)
        if "ExecutionRoleArn" in state["Parameters"]
    }
    (job_role_arn,) = execution_roles
    for job in JOBS:
        principals[job] = access.role_principal(stack, _role_of(stack, job_role_arn))
    for service, edge_calls in deployed.service_edges(stack, machine).items():
        principals[service] = Principal(name=service, service=service)
        calls[service] = edge_calls
    requests = {name: _requests(c) for name, c in calls.items()}
    yield Rehearsal(stack, principals, requests, calls)


COMPONENTS = (
    "ingest",
    *JOBS,
    "state-machine",
    "s3.amazonaws.com",
    "cloudwatch.amazonaws.com",
    "emr-serverless.amazonaws.com",
)


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_call_of_the_deployed_component_is_allowed(
    rehearsal: Rehearsal, component: str
) -> None:
    assert rehearsal.requests[component], f"nothing recorded or declared for {component}"
    denied = rehearsal.denials(component)
    assert not denied, f"{len(denied)} requests AWS would refuse:\n" + "\n".join(denied)


ROLES = ("ingest", "process", "state-machine")  # process stands for the shared job role


def unused_statements(rehearsal: Rehearsal, principal: Principal) -> list[str]:
    """The Allow statements of ``principal`` that no request of any of its components matches."""
    users = [c for c, p in rehearsal.principals.items() if p.arn and p.arn == principal.arn]
    used: set[int] = set()
    for user in users:
        for request in rehearsal.requests[user]:
            used.update(access.decide(rehearsal.stack, principal, request).used)
    return [
        f"{principal.name}: {s.get('Sid', '')} {s['Action']} on {s.get('Resource')}"
        for i, s in enumerate(access.identity_statements(principal))
        if s["Effect"] == "Allow" and i not in used
    ]


@pytest.mark.parametrize("component", ROLES)
def test_every_allow_statement_of_a_role_is_used_by_some_call(
    rehearsal: Rehearsal, component: str
) -> None:
    unused = unused_statements(rehearsal, rehearsal.principals[component])
    assert not unused, "Allow statements no call needs:\n" + "\n".join(unused)


def test_a_statement_no_call_needs_is_reported(rehearsal: Rehearsal) -> None:
    ingest = rehearsal.principals["ingest"]
    extra = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/reports/*"}
    widened = replace(ingest, policies=(*ingest.policies, {"Statement": [extra]}))
    rehearsal = replace(rehearsal, principals={**rehearsal.principals, "ingest": widened})
    assert unused_statements(rehearsal, widened) == [
        f"{ingest.name}:  s3:GetObject on arn:aws:s3:::b/reports/*"
    ]


@pytest.mark.parametrize("component", ROLES)
def test_no_role_allows_an_action_wildcard(rehearsal: Rehearsal, component: str) -> None:
    principal = rehearsal.principals[component]
    broad = [
        f"{principal.name}: {action}"
        for s in access.identity_statements(principal)
        if s["Effect"] == "Allow"
        for action in access._listify(s.get("Action", "*"))
        if "*" in action and not action.startswith(STAR_ONLY)
    ]
    assert not broad, broad


def test_the_calls_per_principal_are_written_out(
    rehearsal: Rehearsal, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The list of what each principal does (``-s`` prints it; the file keeps it)."""
    lines: list[str] = []
    for component in COMPONENTS:
        principal = rehearsal.principals[component]
        lines.append(f"## {component} ({principal.name})")
        lines += sorted(
            {f"  {r.action} {_pattern(r.resource)}" for r in rehearsal.requests[component]}
        )
    lines.append("## granted to a role but never requested (statement used by other actions)")
    for component in ROLES:
        lines += [f"  {line}" for line in _never_requested(rehearsal, component)]
    text = "\n".join(lines) + "\n"
    out = tmp_path_factory.mktemp("rehearsal") / "access_rehearsal.txt"
    out.write_text(text)
    print(f"\n{text}(written to {out})")
    assert "s3:ListBucket" in text and "sns:Publish" in text


KNOWN_PREFIXES = sorted(
    (*(v for k, v in vars(records).items() if k.endswith("_PREFIX")), EMR_LOGS_PREFIX),
    key=len,
    reverse=True,
)


def _pattern(resource: str) -> str:
    """A resource with the variable part of an object key (below a known prefix) as ``*``."""
    if ":s3:::" in resource and "/" in resource:
        bucket, key = resource.split("/", 1)
        for prefix in KNOWN_PREFIXES:
            if key.startswith(prefix):
                return f"{bucket}/{prefix}*"
    return resource


def _never_requested(rehearsal: Rehearsal, component: str) -> list[str]:
    """Actions a role's Allow statements name that none of its requests uses."""
    principal = rehearsal.principals[component]
    users = [c for c, p in rehearsal.principals.items() if p.arn == principal.arn]
    requested = {r.action for user in users for r in rehearsal.requests[user]}
    granted = {
        action
        for s in access.identity_statements(principal)
        if s["Effect"] == "Allow"
        for action in access._listify(s["Action"])
    }
    return [f"{principal.name}: {action}" for action in sorted(granted - requested)]


# The evaluator's rules, on small policies whose verdicts AWS documents.
BUCKET_ARN = "arn:aws:s3:::b"
TLS = (("aws:SecureTransport", "true"),)


def _judge(
    policy: dict[str, Any], request: Request, resources: dict[str, Any] | None = None
) -> bool:
    role = Principal("R", "arn:aws:iam::123456789012:role/R", (policy,))
    return access.decide(Stack(resources or {}, {}), role, request).allowed


def _allow(action: str, resource: str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return {"Statement": [statement]}


def test_a_prefix_conditioned_list_does_not_turn_a_missing_key_into_404() -> None:
    prefixed = _allow("s3:ListBucket", BUCKET_ARN, StringLike={"s3:prefix": ["m/*"]})
    probe = access.requests_for(
        Call.of("s3", "GetObject", Bucket="b", Key="m/missing.json", Missing="true")
    )
    assert [r.action for r in probe] == ["s3:GetObject", "s3:ListBucket"]
    assert not _judge(prefixed, probe[1])
    assert _judge(_allow("s3:ListBucket", BUCKET_ARN), probe[1])
    listing = access.requests_for(Call.of("s3", "ListObjectsV2", Bucket="b", Prefix="m/"))
    assert _judge(prefixed, listing[0])
    # A GET of a key that is there needs no ListBucket at all.
    found = access.requests_for(Call.of("s3", "GetObject", Bucket="b", Key="m/there.json"))
    assert [r.action for r in found] == ["s3:GetObject"]


def test_a_versioned_get_needs_get_object_version() -> None:
    (request,) = access.requests_for(
        Call.of("s3", "GetObject", Bucket="b", Key="k", VersionId="v1")
    )
    assert request.action == "s3:GetObjectVersion"
    assert not _judge(_allow("s3:GetObject", f"{BUCKET_ARN}/*"), request)


def test_an_explicit_deny_wins_and_tls_only_denies_only_plain_http() -> None:
    deny = {
        "Effect": "Deny",
        "Action": "s3:*",
        "Resource": f"{BUCKET_ARN}/*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    policy = {"Statement": [*_allow("s3:GetObject", f"{BUCKET_ARN}/*")["Statement"], deny]}
    assert _judge(policy, Request("s3:GetObject", f"{BUCKET_ARN}/k", TLS))
    plain = (("aws:SecureTransport", "false"),)
    assert not _judge(policy, Request("s3:GetObject", f"{BUCKET_ARN}/k", plain))


def test_a_topic_policy_holding_only_a_deny_refuses_cloudwatch() -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:T"
    resources: dict[str, Any] = {
        "T": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "P": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [topic],
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "sns:Publish",
                            "Resource": topic,
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ]
                },
            },
        },
    }
    cloudwatch = Principal("cloudwatch.amazonaws.com", service="cloudwatch.amazonaws.com")
    (publish,) = access.requests_for(Call.of("sns", "Publish", Resource=topic))
    assert not access.decide(Stack(resources, {}), cloudwatch, publish).allowed
    statements = resources["P"]["Properties"]["PolicyDocument"]["Statement"]
    statements.append(
        {
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
        }
    )
    assert access.decide(Stack(resources, {}), cloudwatch, publish).allowed


def test_the_recorded_ingest_covers_each_code_path(rehearsal: Rehearsal) -> None:
    actions = {(r.action, r.resource.rsplit("/", 1)[-1]) for r in rehearsal.requests["ingest"]}
    assert ("s3:GetObject", "gone.jpg") in actions  # HEAD of a deleted key
    assert ("rekognition:DetectLabels", "*") in actions
    assert ("s3:PutObject", "junk.txt.json") in actions  # the quarantine record
    tables = {r.action for r in rehearsal.requests["ingest"] if ":dynamodb:" in r.resource}
    assert {"dynamodb:GetItem", "dynamodb:PutItem"} <= tables
    # One Rekognition call for three images: the redelivery reused its record, the copy
    # took its labels from the cache, and the deleted object was skipped after its HEAD.
    detect = [c for c in rehearsal.calls["ingest"] if c.operation == "DetectLabels"]
    assert [c.get("Image.S3Object.Name") for c in detect] == ["ingest/alice/cat.jpg"]


def test_a_trust_policy_admits_only_the_named_source() -> None:
    app = "arn:aws:emr-serverless:us-east-1:123456789012:/applications/ours"
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "emr-serverless.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": "123456789012"},
                    "ArnLike": {"aws:SourceArn": app},
                },
            }
        ]
    }
    stack = Stack(
        {"J": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}}}, {}
    )
    emr = Principal("emr", service="emr-serverless.amazonaws.com")

    def assume(source: str) -> bool:
        call = Call.of(
            "sts",
            "AssumeRole",
            Resource=stack.arn("J"),
            **{"aws:SourceArn": source, "aws:SourceAccount": "123456789012"},
        )
        (request,) = access.requests_for(call)
        return access.decide(stack, emr, request).allowed

    assert assume(app)
    assert not assume(app.replace("ours", "theirs"))
