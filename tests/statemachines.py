"""State machine definitions for moto: one that succeeds with a report, one that fails a step."""

from __future__ import annotations

BUCKET = "imgpipe-ops-bucket"  # the bucket SUCCEEDS names in its report_uri
# Like the real state machine's contract: input {"run_id"}, output carries report_uri.
SUCCEEDS = {
    "StartAt": "Report",
    "States": {
        "Report": {
            "Type": "Pass",
            "Parameters": {
                "run_id.$": "$.run_id",
                "report_uri.$": f"States.Format('s3://{BUCKET}/reports/{{}}/index.html', $.run_id)",
            },
            "End": True,
        }
    },
}
# The real state machine's failure shape: a task fails, its Catch records the step, a
# notification would go out, and a Fail state ends the run with the task's error and cause.
FAILS = {
    "StartAt": "Process",
    "States": {
        "Process": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:123456789012:gone", "Message": "x"},
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Notify"}],
            "End": True,
        },
        "Notify": {"Type": "Pass", "Result": "Process", "ResultPath": "$.step", "Next": "Stop"},
        "Stop": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
    },
}
