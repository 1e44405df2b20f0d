"""Names that both the stack and the running code use, defined once; both sides import them.

A name spelled on each side drifts without an error: a renamed output, variable or metric
leaves each side consistent with itself and the two disconnected (a dashboard graphing
nothing, an operator command that cannot find the bucket). The bucket prefixes live with the
record layout in :mod:`imgpipe.records`, the pipeline settings' ``IMGPIPE_<NAME>`` variables
with :class:`imgpipe.config.PipelineConfig`.
"""

from __future__ import annotations

from enum import StrEnum

# The ingest Lambda's environment, besides PipelineConfig's variables.
ENV_BUCKET = "IMGPIPE_BUCKET"
ENV_LABEL_CACHE_TABLE = "IMGPIPE_LABEL_CACHE_TABLE"

# The stack's outputs, by name: ``imgpipe aws`` finds everything through them. The bucket and
# state machine are required; the rest only sharpen ``imgpipe aws check``'s failure messages.
OUTPUT_BUCKET = "BucketName"
OUTPUT_STATE_MACHINE = "StateMachineArn"
OUTPUT_INGEST_QUEUE = "IngestQueueUrl"
OUTPUT_DEAD_LETTER_QUEUE = "DeadLetterQueueUrl"
OUTPUT_INGEST_FUNCTION = "IngestFunctionName"
OUTPUT_INGEST_LOG_GROUP = "IngestLogGroupName"

# The ingest Lambda's Powertools service (its logs, traces and metrics carry it) and the
# CloudWatch namespace of its metrics. Powertools adds the service to every metric as the one
# dimension ``service``: a graph or alarm finds a metric only by namespace, name and exactly
# these dimensions.
SERVICE_NAME = "imgpipe-ingest"
METRIC_NAMESPACE = "imgpipe"
METRIC_DIMENSIONS = {"service": SERVICE_NAME}


class IngestMetric(StrEnum):
    """The ingest Lambda's custom metrics (counts per invocation)."""

    SKIPPED = "Skipped"  # the event named nothing to ingest (not under ingest/, object gone)
    UNCHANGED = "Unchanged"  # the record written before for the same bytes was kept
    ACCEPTED = "Accepted"
    QUARANTINED = "Quarantined"
    LABEL_CACHE_HITS = "LabelCacheHits"
    REKOGNITION_CALLS = "RekognitionCalls"  # DetectLabels calls: what the account pays for
    # SQS messages returned to the queue for a retry; published every invocation, also as 0.
    FAILED_MESSAGES = "FailedMessages"


# ``imgpipe aws check`` puts its sample, and the Lambda its records, under this folder of the
# record prefixes, so the check's objects never mix with the user's and its roles can be
# limited to them.
CHECK_FOLDER = "_imgpipe-check/"
