"""The ingest Lambda: SQS batches of S3 event notifications -> :mod:`imgpipe.cloud_ingest`.

A thin adapter. Powertools' :class:`BatchProcessor` runs :func:`record_handler` per SQS
message and reports only the failed ones (partial batch responses, so the event source
mapping needs ``ReportBatchItemFailures``): a failed message returns to the queue and, after
the queue's ``maxReceiveCount``, goes to the dead-letter queue.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from imgpipe.cloud_ingest import CloudIngester, IngestEnvironment, ObjectResult

logger = Logger()
# The stack sets POWERTOOLS_METRICS_NAMESPACE; the default keeps a bare run publishing too.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "imgpipe"))
tracer = Tracer()
# Even when every message fails, answer with batchItemFailures rather than an error: SQS
# then retries exactly those messages, and the invocation's metrics are still published.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@functools.cache
def ingester() -> CloudIngester:
    """The ingester, built on first use from the environment (once per container).

    Lazy so that moto (in tests) starts before any boto3 client exists; tests may replace
    this function to inject clients.
    """
    return CloudIngester.from_environment(IngestEnvironment.from_env())


def count(result: ObjectResult) -> None:
    """Log one object's fate and add it to the invocation's metrics."""
    outcome = result.outcome
    if outcome is None:
        metrics.add_metric(name="Skipped", unit=MetricUnit.Count, value=1)
        return
    if outcome.reused:
        metrics.add_metric(name="Unchanged", unit=MetricUnit.Count, value=1)
    elif outcome.accepted:
        metrics.add_metric(name="Accepted", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="Quarantined", unit=MetricUnit.Count, value=1)
    if result.labeled_by == "cache":
        metrics.add_metric(name="LabelCacheHits", unit=MetricUnit.Count, value=1)
    elif result.labeled_by == "labeler":
        metrics.add_metric(name="RekognitionCalls", unit=MetricUnit.Count, value=1)
    logger.info(
        "ingested",
        key=result.key,
        accepted=outcome.accepted,
        reason=outcome.reason,
        reused=outcome.reused,
        labeled_by=result.labeled_by,
    )


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    """One SQS message: an S3 event notification (raises to mark the message failed)."""
    ingester().ingest_notification(record.body, on_result=count)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Process an SQS batch; returns the ``batchItemFailures`` of the failed messages."""
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # Always published (also as 0), so an alarm on it has data to evaluate.
    failed = len(response.get("batchItemFailures", []))
    metrics.add_metric(name="FailedMessages", unit=MetricUnit.Count, value=failed)
    return response
