"""Alarms and the dashboard, asserted on the synthesized template."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Template


@pytest.fixture(scope="module")
def template(imgpipe_template: Template) -> Template:
    return imgpipe_template


def _logical_id(template: Template, kind: str, fragment: str) -> str:
    (found,) = [i for i in template.find_resources(kind) if fragment in i]
    return found


def _alarms_on(template: Template, namespace: str, metric: str) -> list[dict[str, Any]]:
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    return [
        a["Properties"]
        for a in alarms.values()
        if a["Properties"]["Namespace"] == namespace and a["Properties"]["MetricName"] == metric
    ]


def _fires_on_first_occurrence(alarm: dict[str, Any], topic: str) -> None:
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": topic}]


@pytest.mark.parametrize(
    ("namespace", "metric", "dimension", "target"),
    [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", "IngestDeadLetters"),
        ("AWS/Lambda", "Errors", "FunctionName", "IngestFunction"),
        ("AWS/Lambda", "Throttles", "FunctionName", "IngestFunction"),
        ("AWS/States", "ExecutionsFailed", "StateMachineArn", "OrchestrationPipeline"),
        ("AWS/States", "ExecutionsTimedOut", "StateMachineArn", "OrchestrationPipeline"),
    ],
)
def test_alarm_notifies_the_topic_on_the_first_occurrence(
    template: Template, namespace: str, metric: str, dimension: str, target: str
) -> None:
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    (alarm,) = _alarms_on(template, namespace, metric)
    _fires_on_first_occurrence(alarm, topic)
    (dim,) = alarm["Dimensions"]
    assert dim["Name"] == dimension
    assert target in json.dumps(dim["Value"])


def test_failed_messages_alarm_notifies_the_topic_and_says_where_to_look(
    template: Template,
) -> None:
    topic = next(iter(template.find_resources("AWS::SNS::Topic")))
    (alarm,) = _alarms_on(template, "imgpipe", "FailedMessages")
    _fires_on_first_occurrence(alarm, topic)
    # Powertools publishes every metric with the one dimension service=<service name>.
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "imgpipe-ingest"}]
    assert alarm["Statistic"] == "Sum"
    description = alarm["AlarmDescription"]
    assert "log group" in description and "dead-letter queue" in description


def test_dead_letter_alarm_watches_the_dead_letter_queue_not_the_ingest_queue(
    template: Template,
) -> None:
    dead_letters = _logical_id(template, "AWS::SQS::Queue", "DeadLetters")
    (alarm,) = _alarms_on(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dead_letters, "QueueName"]}
    assert alarm["Statistic"] == "Maximum"


def test_dashboard_shows_queues_lambda_runs_labeling_and_outcomes(
    template: Template,
) -> None:
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
        "Duration",
        "ConcurrentExecutions",
        "Errors",
        "Throttles",
        "ExecutionTime",
        "ExecutionsFailed",
        "ExecutionsSucceeded",
        # The ingest Lambda's own metrics: what labeling costs and what becomes of uploads.
        "RekognitionCalls",
        "LabelCacheHits",
        "Accepted",
        "Quarantined",
    ):
        assert metric in body, metric
    assert dashboard["Properties"]["DashboardName"] == "Imgpipe-imgpipe"
