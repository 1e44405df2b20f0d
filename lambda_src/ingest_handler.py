"""The ingest Lambda: SQS batches of S3 event notifications -> :mod:`imgpipe.cloud_ingest`.

A thin adapter. Powertools' :class:`BatchProcessor` runs :func:`record_handler` per SQS
message and reports only the failed ones (partial batch responses, so the event source
mapping needs ``ReportBatchItemFailures``): a failed message returns to the queue and, after
the queue's ``maxReceiveCount``, goes to the dead-letter queue.
"""

from __future__ import annotations

import functools
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
from imgpipe.deployment import METRIC_NAMESPACE, SERVICE_NAME, IngestMetric

# Named here rather than by POWERTOOLS_* variables from the stack: the stack's dashboard and
# alarms find the metrics by this namespace and service, so both sides import them.
logger = Logger(service=SERVICE_NAME)
metrics = Metrics(namespace=METRIC_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
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


def add_count(metric: IngestMetric, value: int = 1) -> None:
    """Add ``value`` to one of the invocation's count metrics."""
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)


def count(result: ObjectResult) -> None:
    """Log one object's fate and add it to the invocation's metrics."""
    outcome = result.outcome
    if outcome is None:
        add_count(IngestMetric.SKIPPED)
        return
    if outcome.reused:
        add_count(IngestMetric.UNCHANGED)
    elif outcome.accepted:
        add_count(IngestMetric.ACCEPTED)
    else:
        add_count(IngestMetric.QUARANTINED)
    if result.labeled_by == "cache":
        add_count(IngestMetric.LABEL_CACHE_HITS)
    elif result.labeled_by == "labeler":
        add_count(IngestMetric.REKOGNITION_CALLS)
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
    add_count(IngestMetric.FAILED_MESSAGES, failed)
    return response
