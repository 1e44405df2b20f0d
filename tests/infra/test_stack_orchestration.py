"""The state machine, its role and the notification topic, asserted on the template."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Match, Template

from app import build_app
from tests.cfntemplate import (
    data_bucket_id,
    parse_items,
    parse_states_array,
    state_machine_definition,
)

JOB_STATES = ("Process", "Analyze", "Report")
# EMR Serverless's throttling and 5xx errors, as public workflows on the optimized integration
# match them ("EMRServerless."), and in the AWS SDK integrations' documented form.
SERVICE_ERRORS = {
    f"{prefix}.{error}"
    for prefix in ("EMRServerless", "EmrServerless")
    for error in ("ThrottlingException", "InternalServerException")
}


def evaluate_client_token(expression: str, context: dict[str, Any]) -> str:
    """What Step Functions makes of ``States.Hash(States.Format('...', ...), 'SHA-256')``.

    ``States.Format`` puts each argument's JSON value (a string as is, a number as its digits)
    in place of a ``{}``; ``States.Hash`` gives the digest in lower-case hex.
    """
    match = re.fullmatch(
        r"States\.Hash\(States\.Format\('((?:[^'\\]|\\.)*)', (.*)\), 'SHA-256'\)", expression
    )
    assert match, f"not a SHA-256 of a States.Format: {expression}"
    (template,) = parse_items(f"'{match.group(1)}'", {})
    arguments = parse_items(match.group(2), context)
    text = template.split("{}")
    formatted = text[0] + "".join(
        (a if isinstance(a, str) else json.dumps(a)) + rest
        for a, rest in zip(arguments, text[1:], strict=True)
    )
    return hashlib.sha256(formatted.encode()).hexdigest()


@pytest.fixture(scope="module")
def template(imgpipe_template: Template) -> Template:
    return imgpipe_template


@pytest.fixture(scope="module")
def definition(template: Template) -> dict[str, Any]:
    return state_machine_definition(template.to_json())


def test_runs_process_then_analyze_then_report_then_returns_the_report(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    assert definition["StartAt"] == "Process"
    assert states["Process"]["Next"] == "Analyze"
    assert states["Analyze"]["Next"] == "Report"
    assert states["Report"]["Next"] == "Report ready"
    assert states["Report ready"]["End"] is True


def test_each_job_is_an_awaited_emr_serverless_run(
    definition: dict[str, Any], template: Template
) -> None:
    application = next(iter(template.find_resources("AWS::EMRServerless::Application")))
    for name in JOB_STATES:
        state = definition["States"][name]
        params = state["Parameters"]
        assert state["Resource"] == (
            "arn:@Ref:AWS::Partition@:states:::emr-serverless:startJobRun.sync"
        )
        assert params["ApplicationId"] == f"@GetAtt:{application}.ApplicationId@"
        assert params["ExecutionRoleArn"].startswith("@GetAtt:ProcessingJobRole")
        assert params["ExecutionTimeoutMinutes"] == 120
        assert params["ConfigurationOverrides"]["MonitoringConfiguration"][
            "S3MonitoringConfiguration"
        ]["LogUri"].endswith("/logs/emr/")
        assert "$$.Execution.Name" in params["Name.$"]


def test_no_arn_in_the_definition_names_the_aws_partition_literally(template: Template) -> None:
    # aws-cn and aws-us-gov have other partitions: every ARN must take the stack's.
    (machine,) = template.find_resources("AWS::StepFunctions::StateMachine").values()
    definition = machine["Properties"]["DefinitionString"]
    _, parts = definition["Fn::Join"]
    literals = [part for part in parts if isinstance(part, str)]
    assert not [text for text in literals if "arn:aws:" in text]
    assert {"Ref": "AWS::Partition"} in parts


def test_client_tokens_are_stable_across_retries_and_new_on_redrive(
    definition: dict[str, Any],
) -> None:
    assert "States.UUID" not in json.dumps(definition)
    run: dict[str, Any] = {
        "$$.Execution.Id": "arn:aws:states:eu-west-1:123456789012:execution:Pipeline:2024-06-01",
        "$$.Execution.RedriveCount": 0,
    }
    tokens = {}
    for name in JOB_STATES:
        expression = definition["States"][name]["Parameters"]["ClientToken.$"]
        for path in ("$$.Execution.Id", "$$.Execution.RedriveCount"):
            assert path in expression
        first_attempt = evaluate_client_token(expression, run)
        retried = evaluate_client_token(expression, dict(run))  # a Retry: same context
        redriven = evaluate_client_token(expression, {**run, "$$.Execution.RedriveCount": 1})
        other_run = evaluate_client_token(
            expression, {**run, "$$.Execution.Id": run["$$.Execution.Id"] + "-b"}
        )
        assert first_attempt == retried
        assert redriven != first_attempt and other_run != first_attempt
        assert re.fullmatch(r"[0-9a-f]{64}", first_attempt)  # StartJobRun allows 1..64 chars
        tokens[name] = first_attempt
    assert len(set(tokens.values())) == len(JOB_STATES)


def test_client_token_is_the_sha256_of_execution_step_and_redrive_count() -> None:
    from stacks.intrinsics import client_token_expression

    context = {
        "$$.Execution.Id": "arn:aws:states:r:1:execution:m:n",
        "$$.Execution.RedriveCount": 2,
    }
    expected = hashlib.sha256(b"arn:aws:states:r:1:execution:m:n/process/2").hexdigest()
    assert evaluate_client_token(client_token_expression("process"), context) == expected


def test_jobs_retry_service_errors_with_jittered_backoff_but_not_failed_spark_jobs(
    definition: dict[str, Any],
) -> None:
    for name in JOB_STATES:
        (retry,) = definition["States"][name]["Retry"]
        assert set(retry["ErrorEquals"]) == SERVICE_ERRORS
        assert retry == {
            "ErrorEquals": retry["ErrorEquals"],
            "IntervalSeconds": 30,
            "BackoffRate": 2,
            "MaxAttempts": 3,
            "JitterStrategy": "FULL",
        }


def test_a_failure_in_any_job_notifies_with_the_step_name_then_fails(
    definition: dict[str, Any],
) -> None:
    states = definition["States"]
    for name in JOB_STATES:
        (catch,) = states[name]["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        assert catch["ResultPath"] == "$.error"
        recorder = states[catch["Next"]]
        assert recorder["Result"] == name
        assert recorder["ResultPath"] == "$.failed_step"
        assert recorder["Next"] == "Notify failure"
    notify = states["Notify failure"]
    assert notify["Resource"].endswith(":states:::sns:publish")
    message = notify["Parameters"]["Message.$"]
    for path in ("$.failed_step", "$.error.Error", "$.error.Cause", "$$.Execution.Name"):
        assert path in message
    assert notify["ResultPath"] is None  # keep $.error for the Fail state
    fail = states[notify["Next"]]
    assert fail == {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}


def test_success_output_names_the_run_and_its_report(
    definition: dict[str, Any], template: Template
) -> None:
    params = definition["States"]["Report ready"]["Parameters"]
    assert params["run_id.$"] == "$$.Execution.Name"
    bucket = data_bucket_id(template)
    assert params["report_uri.$"] == (
        f"States.Format('s3://@Ref:{bucket}@/reports/{{}}/index.html', $$.Execution.Name)"
    )


def test_state_machine_is_standard_traced_and_logs_everything(template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": True},
        },
    )
    template.has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": Match.string_like_regexp("^/aws/vendedlogs/states/"),
            "RetentionInDays": 90,
        },
    )


def _role_statements(template: Template) -> list[dict[str, Any]]:
    policies = template.find_resources(
        "AWS::IAM::Policy",
        {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("OrchestrationPipelineRole")}]}},
    )
    assert len(policies) == 1
    (policy,) = policies.values()
    return list(policy["Properties"]["PolicyDocument"]["Statement"])


def _statement(statements: list[dict[str, Any]], action: str) -> dict[str, Any]:
    (found,) = [
        s
        for s in statements
        if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    return found


def test_role_may_run_jobs_only_on_its_application_and_pass_only_the_job_role(
    template: Template,
) -> None:
    statements = _role_statements(template)
    start = json.dumps(_statement(statements, "emr-serverless:StartJobRun")["Resource"])
    assert "ProcessingApplication" in start and "jobruns" not in start and "*" not in start
    poll = _statement(statements, "emr-serverless:GetJobRun")
    assert set(poll["Action"]) == {"emr-serverless:GetJobRun", "emr-serverless:CancelJobRun"}
    assert json.dumps(poll["Resource"]).endswith('"/jobruns/*"]]}')
    pass_role = _statement(statements, "iam:PassRole")
    assert pass_role["Resource"]["Fn::GetAtt"][0].startswith("ProcessingJobRole")
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}
    }
    events = _statement(statements, "events:PutRule")
    assert set(events["Action"]) == {"events:PutTargets", "events:PutRule", "events:DescribeRule"}
    assert json.dumps(events["Resource"]).endswith(
        ':rule/StepFunctionsGetEventsForEMRServerlessJobRule"]]}'
    )


def test_role_may_publish_only_to_the_topic_with_its_key(template: Template) -> None:
    statements = _role_statements(template)
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    assert _statement(statements, "sns:Publish")["Resource"] == {"Ref": topic}
    key = _statement(statements, "kms:GenerateDataKey")
    assert key["Resource"]["Fn::GetAtt"][0].startswith("OrchestrationTopicKey")


def test_topic_is_encrypted_with_a_rotated_key_and_refuses_plain_http(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [Match.any_value(), "Arn"]}}
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "sns:Publish",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


def test_cloudwatch_alarms_of_this_account_may_publish_to_the_topic(template: Template) -> None:
    # The TopicPolicy replaces SNS's default policy: without this Allow no alarm can notify.
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    (policy,) = template.find_resources("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic}]
    allows = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"
    ]
    assert len(allows) == 1
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = allow["Condition"]["ArnLike"]["aws:SourceArn"]
    assert source_arn == {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":cloudwatch:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":alarm:*",
            ],
        ]
    }


def test_cloudwatch_alarms_may_use_the_topic_key(template: Template) -> None:
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            }
                        )
                    ]
                )
            }
        },
    )


def test_no_subscription_without_an_alarm_email(template: Template) -> None:
    template.resource_count_is("AWS::SNS::Subscription", 0)


def test_alarm_email_is_subscribed_to_the_topic(cdk_context: dict[str, Any]) -> None:
    settings = {**cdk_context["imgpipe"], "alarm_email": "ops@example.com"}
    context = {**cdk_context, "imgpipe": settings}
    stack = build_app(context).node.find_child("Imgpipe")
    Template.from_stack(stack).has_resource_properties(  # type: ignore[arg-type]
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


@pytest.mark.parametrize(
    "arguments",
    [["--root", "s3://b"], ["it's", "{braces}", "back\\slash", "$.not-a-path"]],
)
def test_job_arguments_survive_the_intrinsic_array_unchanged(arguments: list[str]) -> None:
    from stacks.intrinsics import arguments_expression

    expression = arguments_expression([*arguments, "RUN"], "RUN")
    assert parse_states_array(expression, {"$$.Execution.Name": "run-7"}) == [*arguments, "run-7"]
