"""Alarms that page someone and a dashboard to look at when they do.

Every alarm publishes to the orchestration's topic, which also carries failed-run messages, so
one e-mail subscription (``alarm_email``) hears about everything that needs a person.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from constructs import Construct

from imgpipe.deployment import METRIC_DIMENSIONS, METRIC_NAMESPACE, IngestMetric
from stacks.ingest import Ingest
from stacks.orchestration import Orchestration
from stacks.settings import DeploySettings

PERIOD = Duration.minutes(5)


def ingest_metric(metric: IngestMetric, statistic: str = "Sum") -> cloudwatch.Metric:
    """One of the ingest Lambda's own metrics, as its Powertools ``Metrics`` publishes it."""
    return cloudwatch.Metric(
        namespace=METRIC_NAMESPACE,
        metric_name=metric.value,
        dimensions_map=dict(METRIC_DIMENSIONS),
        period=PERIOD,
        statistic=statistic,
    )


class Observability(Construct):
    """Alarms on the ingest path and the state machine, and the pipeline's dashboard.

    Attributes:
        alarms: Every alarm by a short name (``dead_letters``, ``lambda_errors``, ...).
        dashboard: The ``<stack prefix>-imgpipe`` dashboard.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        ingest: Ingest,
        orchestration: Orchestration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms = {
            **self._build_ingest_alarms(ingest),
            **self._build_run_alarms(orchestration),
        }
        alarm_action = actions.SnsAction(orchestration.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(alarm_action)
        self.dashboard = self._build_dashboard(settings, ingest, orchestration)

    def _alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, description: str
    ) -> cloudwatch.Alarm:
        """An alarm that fires as soon as ``metric`` is above zero in one period."""
        return cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            # No data means nothing happened (no uploads, no runs): that is healthy.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )

    def _build_ingest_alarms(self, ingest: Ingest) -> dict[str, cloudwatch.Alarm]:
        function = ingest.function
        return {
            "dead_letters": self._alarm(
                "DeadLetters",
                ingest.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                "Uploads whose ingest failed on every delivery are waiting in the dead-letter "
                "queue: inspect them, fix the cause, then redrive them to the ingest queue.",
            ),
            "lambda_errors": self._alarm(
                "IngestErrors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                "The ingest Lambda failed (whole invocations; per-image failures are "
                "quarantined instead). See its log group.",
            ),
            "lambda_throttles": self._alarm(
                "IngestThrottles",
                function.metric_throttles(period=PERIOD, statistic="Sum"),
                "The ingest Lambda was throttled: the account's concurrency is exhausted.",
            ),
            "failed_messages": self._alarm(
                "IngestFailedMessages",
                ingest_metric(IngestMetric.FAILED_MESSAGES),
                "Ingest messages failed and went back to the queue: a transient error "
                "(Rekognition throttling, S3 or DynamoDB faults) or a bug. Search the ingest "
                "Lambda's log group for the exception; SQS retries each message, and one that "
                "keeps failing ends in the dead-letter queue.",
            ),
        }

    def _build_run_alarms(self, orchestration: Orchestration) -> dict[str, cloudwatch.Alarm]:
        machine = orchestration.state_machine
        return {
            "runs_failed": self._alarm(
                "RunsFailed",
                machine.metric_failed(period=PERIOD, statistic="Sum"),
                "A pipeline run failed; the notification names the failed step.",
            ),
            "runs_timed_out": self._alarm(
                "RunsTimedOut",
                machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                "A pipeline run exceeded the state machine's timeout.",
            ),
        }

    def _build_dashboard(
        self, settings: DeploySettings, ingest: Ingest, orchestration: Orchestration
    ) -> cloudwatch.Dashboard:
        queue, dead_letters = ingest.queue, ingest.dead_letter_queue
        function, machine = ingest.function, orchestration.state_machine
        dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{settings.stack_prefix}-imgpipe"
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=24, height=3
            )
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingest queue",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD),
                    dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD),
                ],
                right=[queue.metric_approximate_age_of_oldest_message(period=PERIOD)],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Ingest Lambda",
                left=[
                    function.metric_invocations(period=PERIOD),
                    function.metric_errors(period=PERIOD),
                    function.metric_throttles(period=PERIOD),
                ],
                right=[function.metric("ConcurrentExecutions", period=PERIOD, statistic="Maximum")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Ingest duration",
                left=[
                    function.metric_duration(period=PERIOD, statistic="p50"),
                    function.metric_duration(period=PERIOD, statistic="p99"),
                ],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingested images",
                left=[
                    ingest_metric(IngestMetric.ACCEPTED),
                    ingest_metric(IngestMetric.QUARANTINED),
                ],
                width=12,
            ),
            # Rekognition calls are what ingest costs; cache hits are the calls saved.
            cloudwatch.GraphWidget(
                title="Labeling",
                left=[
                    ingest_metric(IngestMetric.REKOGNITION_CALLS),
                    ingest_metric(IngestMetric.LABEL_CACHE_HITS),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Pipeline runs",
                left=[
                    machine.metric_started(period=PERIOD),
                    machine.metric_succeeded(period=PERIOD),
                    machine.metric_failed(period=PERIOD),
                    machine.metric_timed_out(period=PERIOD),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Run time",
                left=[machine.metric_time(period=PERIOD, statistic="Maximum")],
                width=12,
            ),
        )
        return dashboard
