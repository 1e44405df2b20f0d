"""Reading a synthesized CloudFormation template: references as text, roles' statements, ASL."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aws_cdk import CfnElement, Stack
from aws_cdk.assertions import Match, Template


def render(value: Any) -> str:
    """A CloudFormation value as readable text: ``${Logical.Attr}`` for references."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        (function, argument), *_ = value.items()
        if function == "Fn::Join":
            return str(argument[0]).join(render(part) for part in argument[1])
        if function == "Fn::GetAtt":
            return "${" + ".".join(argument) + "}"
        if function == "Ref":
            return "${" + argument + "}"
        if function == "Fn::Sub":
            return render(argument if isinstance(argument, str) else argument[0])
    return json.dumps(value)


def logical_id(stack: Stack, path: str) -> str:
    """The logical id of the CloudFormation resource at construct path ``path``."""
    node = stack
    for name in path.split("/"):
        node = node.node.find_child(name)  # type: ignore[assignment]
    element = node if isinstance(node, CfnElement) else node.node.default_child
    return stack.get_logical_id(element)  # type: ignore[arg-type]


def role_statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    """Every statement granted to a role, inline or through attached policies."""
    statements: list[dict[str, Any]] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    role = template.find_resources("AWS::IAM::Role")[role_id]
    for inline in role["Properties"].get("Policies", []):
        statements += inline["PolicyDocument"]["Statement"]
    assert not role["Properties"].get("ManagedPolicyArns"), "no managed policies expected"
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _placeholder(value: Any) -> str:
    """A JSON- and intrinsic-safe stand-in for a CloudFormation expression in the definition."""
    if "Ref" in value:
        return f"@Ref:{value['Ref']}@"
    if "Fn::GetAtt" in value:
        return f"@GetAtt:{'.'.join(value['Fn::GetAtt'])}@"
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", r"@Ref:\1@", value["Fn::Sub"])
    raise AssertionError(f"unexpected expression in the definition: {value}")


def state_machine_definition(template: Mapping[str, Any]) -> dict[str, Any]:
    """The ASL of the template's one state machine, with Refs/GetAtts as ``@Ref:Id@`` text."""
    machines = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    assert len(machines) == 1
    definition = machines[0]["Properties"]["DefinitionString"]
    if isinstance(definition, str):
        return dict(json.loads(definition))
    separator, parts = definition["Fn::Join"]
    text = separator.join(p if isinstance(p, str) else _placeholder(p) for p in parts)
    return dict(json.loads(text))


_INTRINSIC_ITEM = re.compile(r"\s*(?:'((?:[^'\\]|\\.)*)'|(\$\$?[\w.]*))\s*(?:,|$)")


def parse_states_array(expression: str, context: dict[str, str]) -> list[str]:
    """Evaluate ``States.Array('lit', $$.Path, ...)``: literals unescaped, paths from context."""
    match = re.fullmatch(r"States\.Array\((.*)\)", expression, flags=re.DOTALL)
    assert match, f"not a States.Array expression: {expression}"
    return [str(value) for value in parse_items(match.group(1), context)]


def parse_items(body: str, context: dict[str, Any]) -> list[Any]:
    """Comma-separated intrinsic arguments: literals unescaped, ``$$`` paths from context."""
    values, position = [], 0
    while position < len(body):
        item = _INTRINSIC_ITEM.match(body, position)
        assert item and item.end() > position, f"cannot parse {body[position:]!r}"
        literal, path = item.groups()
        values.append(re.sub(r"\\(.)", r"\1", literal) if literal is not None else context[path])
        position = item.end()
    return values


def data_bucket_id(template: Template) -> str:
    """The logical id of the data bucket (the one that logs its access)."""
    buckets = template.find_resources(
        "AWS::S3::Bucket", {"Properties": {"LoggingConfiguration": Match.any_value()}}
    )
    assert len(buckets) == 1
    return next(iter(buckets))
