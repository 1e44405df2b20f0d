"""What the deployment does beyond the code: runtime, Spark and service-to-service calls.

Everything here is derived from the synthesized template (the state machine's ASL, the
function's logging and tracing settings, the event source mapping, the alarms' actions, the
bucket notifications) or from the jobs' declared Spark storage access
(:attr:`imgpipe.jobs.JobSpec.storage_access`).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from typing import Any

from imgpipe.jobs import JOBS
from stacks.orchestration import SYNC_RULE_NAME
from tests.rehearsal.access import Call
from tests.rehearsal.cfn import ACCOUNT, PARTITION, Stack

EMR_SERVICE = "emr-serverless.amazonaws.com"
LOG_STREAM = "2024/06/01/[$LATEST]0123456789abcdef"
JOB_RUN = "00f0123456789abc"


def _s3_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def lambda_runtime(stack: Stack, function_lid: str) -> list[Call]:
    """What Lambda does with the function's role: logs, traces, and polling its queue."""
    props = stack.properties(function_lid)
    group = props["LoggingConfig"]["LogGroup"]
    calls = [
        Call.of("logs", op, logGroupName=group, logStreamName=LOG_STREAM)
        for op in ("CreateLogStream", "PutLogEvents")
    ]
    if props.get("TracingConfig", {}).get("Mode") == "Active":
        calls += [Call.of("xray", op) for op in ("PutTraceSegments", "PutTelemetryRecords")]
    for lid in stack.logical_ids("AWS::Lambda::EventSourceMapping"):
        mapping = stack.properties(lid)
        if mapping["FunctionName"] == stack.ref(function_lid):
            queue = mapping["EventSourceArn"].rsplit(":", 1)[1]
            calls += [
                Call.of("sqs", op, QueueName=queue)
                for op in (
                    "ReceiveMessage",
                    "DeleteMessage",
                    "ChangeMessageVisibility",
                    "GetQueueAttributes",
                )
            ]
    return calls


def definition(stack: Stack, machine_lid: str) -> dict[str, Any]:
    return dict(json.loads(stack.properties(machine_lid)["DefinitionString"]))


def task_states(stack: Stack, machine_lid: str) -> Iterator[dict[str, Any]]:
    for state in definition(stack, machine_lid)["States"].values():
        if state["Type"] == "Task":
            yield state


def job_of(state: dict[str, Any]) -> str:
    """Which job a ``startJobRun.sync`` state runs (its entry script's name)."""
    for name in JOBS:
        if f"'imgpipe-{name}-" in state["Parameters"].get("Name.$", ""):
            return name
    raise ValueError(f"no job is named in the state {state}")


def application_arn(application_id: str) -> str:
    return f"arn:{PARTITION}:emr-serverless:us-east-1:{ACCOUNT}:/applications/{application_id}"


def state_machine_calls(stack: Stack, machine_lid: str) -> list[Call]:
    """The state machine role's calls: its Task states' integrations, logging and tracing."""
    props = stack.properties(machine_lid)
    calls: list[Call] = []
    for state in task_states(stack, machine_lid):
        resource, params = state["Resource"], state["Parameters"]
        if resource.endswith(":emr-serverless:startJobRun.sync"):
            app = application_arn(params["ApplicationId"])
            calls += [
                Call.of("emr-serverless", "StartJobRun", Resource=app),
                Call.of("emr-serverless", "GetJobRun", Resource=f"{app}/jobruns/{JOB_RUN}"),
                Call.of("emr-serverless", "CancelJobRun", Resource=f"{app}/jobruns/{JOB_RUN}"),
                Call.of(
                    "iam",
                    "PassRole",
                    Resource=params["ExecutionRoleArn"],
                    **{"iam:PassedToService": EMR_SERVICE},
                ),
            ]
            rule = f"arn:{PARTITION}:events:us-east-1:{ACCOUNT}:rule/{SYNC_RULE_NAME}"
            calls += [
                Call.of("events", op, Resource=rule)
                for op in ("PutTargets", "PutRule", "DescribeRule")
            ]
        elif resource.endswith(":sns:publish"):
            topic = params["TopicArn"]
            calls.append(Call.of("sns", "Publish", Resource=topic))
            calls += [
                Call.of("kms", op, Resource=key)
                for key in topic_keys(stack, topic)
                for op in ("GenerateDataKey", "Decrypt")
            ]
        else:
            raise NotImplementedError(f"no rehearsal for the integration {resource}")
    if props.get("LoggingConfiguration"):
        # Step Functions sets up the execution log's vended delivery with these ("*" only).
        calls += [
            Call.of("logs", op, Resource="*")
            for op in (
                "CreateLogDelivery",
                "GetLogDelivery",
                "UpdateLogDelivery",
                "DeleteLogDelivery",
                "ListLogDeliveries",
                "PutResourcePolicy",
                "DescribeResourcePolicies",
                "DescribeLogGroups",
            )
        ]
    if props.get("TracingConfiguration", {}).get("Enabled"):
        calls += [
            Call.of("xray", op)
            for op in (
                "PutTraceSegments",
                "PutTelemetryRecords",
                "GetSamplingRules",
                "GetSamplingTargets",
            )
        ]
    return calls


def topic_keys(stack: Stack, topic_arn: str) -> list[str]:
    return [
        stack.properties(lid)["KmsMasterKeyId"]
        for lid in stack.logical_ids("AWS::SNS::Topic")
        if stack.arn(lid) == topic_arn and "KmsMasterKeyId" in stack.properties(lid)
    ]


def job_runtime(stack: Stack, machine_lid: str, job: str, bucket: str) -> list[Call]:
    """The job role's calls outside the job's code: its code and logs, and Spark's storage."""
    calls: list[Call] = []
    for state in task_states(stack, machine_lid):
        if (
            not state["Resource"].endswith(":emr-serverless:startJobRun.sync")
            or job_of(state) != job
        ):
            continue
        submit = state["Parameters"]["JobDriver"]["SparkSubmit"]
        words = shlex.split(submit["SparkSubmitParameters"])
        urls = [submit["EntryPoint"], words[words.index("--py-files") + 1]]
        urls += [w.split("=", 1)[1].split("#")[0] for w in words if w.startswith("spark.archives=")]
        for url in urls:
            code_bucket, key = _s3_url(url)
            # Deployed with the stack: these keys exist whenever a job starts.
            calls.append(Call.of("s3", "GetObject", Bucket=code_bucket, Key=key, KeyExists="true"))
        log_uri = state["Parameters"]["ConfigurationOverrides"]["MonitoringConfiguration"][
            "S3MonitoringConfiguration"
        ]["LogUri"]
        log_bucket, prefix = _s3_url(log_uri)
        driver_log = f"{prefix}applications/app/jobs/{JOB_RUN}/SPARK_DRIVER/stdout.gz"
        calls.append(Call.of("s3", "PutObject", Bucket=log_bucket, Key=driver_log))
    for declared in JOBS[job].storage_access:
        if declared.operation == "ListObjectsV2":
            calls.append(Call.of("s3", "ListObjectsV2", Bucket=bucket, Prefix=declared.key))
        elif declared.operation == "CopyObject":
            source = f"{bucket}/{declared.key.rsplit('/', 1)[0]}/_source-part.parquet"
            calls.append(
                Call.of("s3", "CopyObject", Bucket=bucket, Key=declared.key, CopySource=source)
            )
        else:
            missing = {"Missing": "true"} if declared.missing else {}
            calls.append(
                Call.of("s3", declared.operation, Bucket=bucket, Key=declared.key, **missing)
            )
    return calls


def service_edges(stack: Stack, machine_lid: str) -> dict[str, list[Call]]:
    """Calls AWS services make on the stack's resources, by service principal."""
    edges: dict[str, list[Call]] = {}
    for lid in stack.logical_ids("Custom::S3BucketNotifications"):
        props = stack.properties(lid)
        source = f"arn:{PARTITION}:s3:::{props['BucketName']}"
        for config in props["NotificationConfiguration"].get("QueueConfigurations", []):
            edges.setdefault("s3.amazonaws.com", []).append(
                Call.of(
                    "sqs",
                    "SendMessage",
                    Resource=config["QueueArn"],
                    **{"aws:SourceArn": source, "aws:SourceAccount": ACCOUNT},
                )
            )
    for lid in stack.logical_ids("AWS::CloudWatch::Alarm"):
        props = stack.properties(lid)
        for topic in props.get("AlarmActions", []) + props.get("OKActions", []):
            context = {"aws:SourceArn": stack.arn(lid), "aws:SourceAccount": ACCOUNT}
            found = edges.setdefault("cloudwatch.amazonaws.com", [])
            found.append(Call.of("sns", "Publish", Resource=topic, **context))
            found += [
                Call.of("kms", op, Resource=key, **context)
                for key in topic_keys(stack, topic)
                for op in ("GenerateDataKey", "Decrypt")
            ]
    for state in task_states(stack, machine_lid):
        if state["Resource"].endswith(":emr-serverless:startJobRun.sync"):
            params = state["Parameters"]
            context = {
                "aws:SourceArn": application_arn(params["ApplicationId"]),
                "aws:SourceAccount": ACCOUNT,
            }
            edges.setdefault(EMR_SERVICE, []).append(
                Call.of("sts", "AssumeRole", Resource=params["ExecutionRoleArn"], **context)
            )
    return edges
