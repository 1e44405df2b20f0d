"""Every Lambda function of the synthesized stack logs to a log group with a retention.

A function's logs go to its ``LoggingConfig.LogGroup`` when set, else to
``/aws/lambda/<function name>``, which Lambda creates on the first run with no retention
unless the template creates it first. The walk covers every ``AWS::Lambda::Function``, CDK's
own singletons included, so a new function without a retained log group fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Template

from stacks.acknowledgements import BUCKET_NOTIFICATIONS_HANDLER
from stacks.settings import DeploySettings
from tests.cfntemplate import render


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def log_group_names(logical_id: str, group: dict[str, Any]) -> set[str]:
    """What a reference to this log group may look like (``Ref`` returns its name)."""
    names = {f"${{{logical_id}}}"}
    if "LogGroupName" in group.get("Properties", {}):
        names.add(render(group["Properties"]["LogGroupName"]))
    return names


def destinations(logical_id: str, function: dict[str, Any]) -> set[str]:
    """The log group names the function writes to, as rendered expressions."""
    props = function.get("Properties", {})
    configured = props.get("LoggingConfig", {}).get("LogGroup")
    if configured is not None:
        return {render(configured)}
    names = {f"/aws/lambda/${{{logical_id}}}"}  # Ref of a function is its name
    if "FunctionName" in props:
        names.add(f"/aws/lambda/{render(props['FunctionName'])}")
    return names


@pytest.fixture(scope="module")
def template(imgpipe_template: Template) -> dict[str, Any]:
    return dict(imgpipe_template.to_json())


@pytest.fixture(scope="module")
def handler_id(template: dict[str, Any]) -> str:
    """The logical id of CDK's singleton bucket-notifications Lambda."""
    (logical_id,) = (
        logical_id
        for logical_id in of_type(template, "AWS::Lambda::Function")
        if logical_id.startswith(BUCKET_NOTIFICATIONS_HANDLER)
    )
    return logical_id


def retained_group_of(template: dict[str, Any], function_id: str) -> tuple[str, dict[str, Any]]:
    function = template["Resources"][function_id]
    wanted = destinations(function_id, function)
    matches = [
        (logical_id, group)
        for logical_id, group in of_type(template, "AWS::Logs::LogGroup").items()
        if log_group_names(logical_id, group) & wanted
    ]
    assert len(matches) == 1, f"{function_id}: no (or several) log groups named {wanted}"
    return matches[0]


def test_every_lambda_function_logs_to_a_group_with_retention(
    template: dict[str, Any],
) -> None:
    functions = of_type(template, "AWS::Lambda::Function")
    assert len(functions) >= 2  # the ingest function and CDK's notifications handler
    for function_id in functions:
        group_id, group = retained_group_of(template, function_id)
        assert group["Properties"].get("RetentionInDays", 0) > 0, (function_id, group_id)


def test_bucket_notifications_handler_has_its_default_log_group_with_retention(
    template: dict[str, Any], handler_id: str, cdk_context: dict[str, Any]
) -> None:
    _, group = retained_group_of(template, handler_id)
    # Named by reference to the function, not a hard-coded name.
    assert group["Properties"]["LogGroupName"] == {
        "Fn::Join": ["", ["/aws/lambda/", {"Ref": handler_id}]]
    }
    settings = DeploySettings.from_context(cdk_context)
    assert group["Properties"]["RetentionInDays"] == settings.log_retention_days
    # Like the other log groups: removed with the stack.
    assert group["DeletionPolicy"] == "Delete"
    assert group["UpdateReplacePolicy"] == "Delete"


def test_bucket_notifications_wait_for_the_handler_log_group(
    template: dict[str, Any], handler_id: str
) -> None:
    # The custom resource is the handler's only caller: the group exists before its first run
    # and is deleted only after its last one (the custom resource's own deletion).
    group_id, _ = retained_group_of(template, handler_id)
    notifications = of_type(template, "Custom::S3BucketNotifications")
    assert notifications
    for logical_id, resource in notifications.items():
        assert group_id in resource.get("DependsOn", []), logical_id
