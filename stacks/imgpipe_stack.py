"""The imgpipe stack: one construct per concern, wired by typed constructor arguments.

One stack rather than several: the bucket's event notification, the queue and the jobs' roles
reference each other, and across stacks those references would form a dependency cycle.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from stacks.acknowledgements import acknowledge_findings
from stacks.catalog import Catalog
from stacks.checkov_skips import skip_checkov_findings
from stacks.ingest import Ingest
from stacks.observability import Observability
from stacks.orchestration import Orchestration
from stacks.processing import Processing
from stacks.settings import DeploySettings
from stacks.storage import Storage

# Output names the operator commands (`imgpipe aws ...`) look up.
OUTPUT_BUCKET = "BucketName"
OUTPUT_STATE_MACHINE = "StateMachineArn"
OUTPUT_INGEST_QUEUE = "IngestQueueUrl"
OUTPUT_DEAD_LETTER_QUEUE = "DeadLetterQueueUrl"
PROJECT_TAG = ("project", "imgpipe")


class ImgpipeStack(Stack):
    """Storage, ingest, processing, orchestration, observability and catalog."""

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: DeploySettings, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        # On every taggable resource: cost allocation and "what is this?" in the console.
        Tags.of(self).add(*PROJECT_TAG)
        storage = Storage(self, "Storage", settings=settings)
        ingest = Ingest(self, "Ingest", settings=settings, bucket=storage.bucket)
        processing = Processing(self, "Processing", settings=settings, bucket=storage.bucket)
        orchestration = Orchestration(
            self, "Orchestration", settings=settings, bucket=storage.bucket, processing=processing
        )
        Observability(
            self, "Observability", settings=settings, ingest=ingest, orchestration=orchestration
        )
        Catalog(self, "Catalog", settings=settings, bucket=storage.bucket)

        CfnOutput(self, OUTPUT_BUCKET, value=storage.bucket.bucket_name)
        CfnOutput(self, OUTPUT_STATE_MACHINE, value=orchestration.state_machine.state_machine_arn)
        CfnOutput(self, OUTPUT_INGEST_QUEUE, value=ingest.queue.queue_url)
        CfnOutput(self, OUTPUT_DEAD_LETTER_QUEUE, value=ingest.dead_letter_queue.queue_url)
        acknowledge_findings(
            self, storage=storage, ingest=ingest, processing=processing, orchestration=orchestration
        )
        skip_checkov_findings(self)
