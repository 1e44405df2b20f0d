"""The optional GitHub OIDC roles: absent by default; when on, trusted narrowly, least privilege.

The stack is synthesized once for this module with ``github_repository`` set, and checked with
cdk-nag, cfn-lint and checkov like the default stack (test_compliance.py, test_checkov.py).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template

import stacks.imgpipe_stack
import stacks.nag_gate
from app import build_app
from stacks.settings import DeploySettings
from tests.checkovrig import findings as checkov_findings
from tests.checkovrig import run_checkov
from tests.nagrig import PACKS, acknowledgements, cfn_lint
from tests.nagrig import findings as nag_findings

REPOSITORY = "octo-org/imgpipe"
EXISTING_PROVIDER = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
ACCOUNT_REGION = "-<AWS::AccountId>-<AWS::Region>"


def context(cdk_context: dict[str, Any], **imgpipe: str) -> dict[str, Any]:
    enabled = copy.deepcopy(cdk_context)
    enabled["imgpipe"] = {**enabled["imgpipe"], "github_repository": REPOSITORY, **imgpipe}
    return enabled


@pytest.fixture(scope="module")
def app(cdk_context: dict[str, Any]) -> cdk.App:
    return build_app(context(cdk_context))


@pytest.fixture(scope="module")
def template(app: cdk.App) -> Template:
    return Template.from_stack(app.node.find_child("Imgpipe"))  # type: ignore[arg-type]


def resolved(template: Template, value: Any) -> str:
    """A Fn::Join/Ref/GetAtt value as text: ``<AWS::AccountId>``, ``<Logical.Arn>``..."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        return "".join(resolved(template, part) for part in value["Fn::Join"][1])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    raise AssertionError(f"unexpected value {value}")


def role(template: Template, description: str) -> tuple[str, dict[str, Any]]:
    roles = template.find_resources(
        "AWS::IAM::Role", {"Properties": {"Description": Match.string_like_regexp(description)}}
    )
    assert len(roles) == 1, roles
    ((logical_id, resource),) = roles.items()
    return logical_id, dict(resource)


def grants(template: Template, role_id: str) -> set[tuple[str, str]]:
    """(action, resource) pairs of every Allow in the role's policies."""
    pairs = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                for resource in resources if isinstance(resources, list) else [resources]:
                    pairs.add((action, resolved(template, resource)))
    return pairs


def test_default_settings_add_no_oidc_provider_or_github_role(imgpipe_template: Template) -> None:
    imgpipe_template.resource_count_is("AWS::IAM::OIDCProvider", 0)
    text = json.dumps(imgpipe_template.to_json())
    assert "AssumeRoleWithWebIdentity" not in text
    assert "GithubDeployRoleArn" not in text


def test_the_provider_is_github_with_the_sts_audience(template: Template) -> None:
    template.resource_count_is("AWS::IAM::OIDCProvider", 1)
    template.has_resource_properties(
        "AWS::IAM::OIDCProvider",
        {
            "Url": "https://token.actions.githubusercontent.com",
            "ClientIdList": ["sts.amazonaws.com"],
        },
    )


@pytest.mark.parametrize(
    ("description", "subjects"),
    [
        (
            "deploys",
            [f"repo:{REPOSITORY}:environment:production"],
        ),
        ("diff", [f"repo:{REPOSITORY}:pull_request"]),
    ],
)
def test_each_role_trusts_only_its_repository_claims(
    template: Template, description: str, subjects: list[str]
) -> None:
    _, resource = role(template, description)
    (statement,) = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    provider = next(iter(template.find_resources("AWS::IAM::OIDCProvider")))
    assert statement == {
        "Effect": "Allow",
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": {"Ref": provider}},
        "Condition": {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": subjects,
            }
        },
    }


def test_the_diff_role_may_only_assume_the_bootstrap_lookup_role(template: Template) -> None:
    role_id, _ = role(template, "diff")
    assert grants(template, role_id) == {
        (
            "sts:AssumeRole",
            f"arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-hnb659fds-lookup-role{ACCOUNT_REGION}",
        )
    }


def test_the_deploy_role_gets_the_bootstrap_roles_and_what_the_check_calls(
    template: Template,
) -> None:
    role_id, _ = role(template, "deploys")
    (bucket,) = [b for b in template.find_resources("AWS::S3::Bucket") if "Data" in b]
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine")
    queues = sorted(template.find_resources("AWS::SQS::Queue"))
    objects = f"<{bucket}.Arn>/"
    bootstrap = "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-hnb659fds-{}-role"
    assert grants(template, role_id) == {
        *(
            ("sts:AssumeRole", bootstrap.format(kind) + ACCOUNT_REGION)
            for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
        ),
        (
            "cloudformation:DescribeStacks",
            "arn:<AWS::Partition>:cloudformation:<AWS::Region>:<AWS::AccountId>:stack/Imgpipe/*",
        ),
        *(
            (action, f"{objects}{prefix}/_imgpipe-check/*")
            for action in ("s3:PutObject", "s3:GetObject", "s3:DeleteObject")
            for prefix in ("ingest", "metadata")
        ),
        ("s3:GetObject", f"{objects}quarantine/_imgpipe-check/*"),
        ("s3:GetObject", f"{objects}reports/*"),
        ("s3:ListBucket", f"<{bucket}.Arn>"),
        ("states:StartExecution", f"<{machine}>"),
        *(
            (
                action,
                "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:"
                f"<{machine}.Name>:*",
            )
            for action in ("states:DescribeExecution", "states:GetExecutionHistory")
        ),
        *(("sqs:GetQueueAttributes", f"<{queue}.Arn>") for queue in queues),
    }


def test_the_role_arns_are_stack_outputs(template: Template) -> None:
    outputs = template.find_outputs("*")
    assert {"GithubDeployRoleArn", "GithubDiffRoleArn"} <= set(outputs)


def test_an_existing_provider_is_used_instead_of_a_new_one(cdk_context: dict[str, Any]) -> None:
    app = build_app(context(cdk_context, github_oidc_provider_arn=EXISTING_PROVIDER))
    template = Template.from_stack(app.node.find_child("Imgpipe"))  # type: ignore[arg-type]
    template.resource_count_is("AWS::IAM::OIDCProvider", 0)
    _, resource = role(template, "deploys")
    (statement,) = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Federated": EXISTING_PROVIDER}


@pytest.mark.parametrize(
    "imgpipe",
    [
        {"github_repository": "imgpipe"},
        {"github_repository": "octo/imgpipe:ref:refs/heads/*"},
        {"github_oidc_provider_arn": EXISTING_PROVIDER},
    ],
)
def test_a_malformed_github_setting_is_refused(imgpipe: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="github_"):
        DeploySettings.from_context({"imgpipe": imgpipe})


@pytest.mark.parametrize("pack", PACKS, ids=lambda p: p.__name__)
def test_no_unacknowledged_nag_finding_with_the_roles(app: cdk.App, pack: type) -> None:
    assert nag_findings(app, pack) == []


def test_every_github_acknowledgement_matches_a_real_finding(
    app: cdk.App, cdk_context: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stacks.imgpipe_stack, "acknowledge_findings", lambda *a, **k: [])
    raw = {
        finding for pack in PACKS for finding in nag_findings(build_app(context(cdk_context)), pack)
    }
    github = [(p, r) for p, r, _ in acknowledgements(app) if "/GithubOidc/" in p]
    assert len(github) == 6
    for path, rule in github:
        assert any(r == rule and p.startswith(path) for r, p in raw), f"stale: {rule} on {path}"


def test_cfn_lint_passes_with_the_roles(app: cdk.App, tmp_path: Path) -> None:
    path = tmp_path / "Imgpipe.template.json"
    path.write_text(json.dumps(app.synth().get_stack_by_name("Imgpipe").template))
    assert cfn_lint(path) == ""


def test_checkov_passes_with_the_roles(app: cdk.App, tmp_path: Path) -> None:
    path = tmp_path / "Imgpipe.template.json"
    path.write_text(json.dumps(app.synth().get_stack_by_name("Imgpipe").template))
    report = run_checkov(path)
    assert report["summary"]["parsing_errors"] == 0
    assert checkov_findings(report, "failed") == []


def test_the_nag_gate_refuses_an_app_with_a_finding(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "Wide")
    iam.Role(stack, "Role", assumed_by=iam.AccountRootPrincipal()).add_to_policy(
        iam.PolicyStatement(actions=["s3:*"], resources=["*"])
    )
    monkeypatch.setattr(stacks.nag_gate, "build_app", lambda: app)
    assert stacks.nag_gate.main() == 1
    assert (
        "AwsSolutions-IAM5[Action::s3:*] Wide/Role/DefaultPolicy/Resource"
        in capsys.readouterr().err
    )


def test_the_nag_gate_synthesizes_a_clean_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = cdk.App(outdir=str(tmp_path))
    cdk.Stack(app, "Empty")
    monkeypatch.setattr(stacks.nag_gate, "build_app", lambda: app)
    assert stacks.nag_gate.main() == 0
    assert (tmp_path / "Empty.template.json").is_file()
