"""One CloudWatch dashboard for an operator: traffic, outcomes, failures, models, drift.

Metric names are the ones the handlers emit through functions/observability.py (Powertools,
namespace "Fidelio", dimension service=fidelio); the drift monitor publishes MaxFeaturePSI
without dimensions; decide counts Decisions by Variant with a metric of its own.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra import constants, spec
from infra.constructs.queues import WorkQueues

SERVICE_DIMENSION = {"service": "fidelio"}  # functions/observability.py: Metrics(service="fidelio")
CHANNELS = ("email", "push", "sms")  # functions.domain.events.Channel; dispatch counts Sent_<channel>
PERIOD = Duration.minutes(5)


def _count(metric_name: str, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=constants.POWERTOOLS_METRICS_NAMESPACE, metric_name=metric_name,
        dimensions_map=SERVICE_DIMENSION, statistic=cloudwatch.Stats.SUM, period=PERIOD, label=label,
    )


class OperationsDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: spec.Names,
        queues: WorkQueues,
        alarms: list[cloudwatch.IAlarm],
        drift_alarm: cloudwatch.Alarm,
    ) -> None:
        super().__init__(scope, construct_id)
        namespace = constants.POWERTOOLS_METRICS_NAMESPACE
        width = 12
        decisions = cloudwatch.GraphWidget(
            title="Decisions", width=width,
            left=[_count("Decisions", "decisions"), _count("DuplicateDecisions", "duplicates (replays)")],
        )
        sends = cloudwatch.GraphWidget(
            title="Sends by channel", width=width, stacked=True,
            left=[_count(f"Sent_{channel}", channel) for channel in CHANNELS]
            + [_count("SendsSuppressedAtSendTime", "suppressed at send time"), _count("SendsFailed", "failed"),
               _count("SendsWithheld", "withheld (holdout)")],
        )
        conversions = cloudwatch.GraphWidget(
            title="Engagement and conversions", width=width,
            left=[_count("Conversions", "conversions (offer redeemed)"), _count("Feedback_Click", "email clicks"),
                  _count("Feedback_Open", "email opens")],
        )
        unsubscribes = cloudwatch.GraphWidget(
            title="Unsubscribes and complaints", width=width,
            left=[_count("OneClickUnsubscribes", "one-click unsubscribes"),
                  _count("Feedback_Subscription", "unsubscribes via the mailbox"),
                  _count("Feedback_Complaint", "complaints"), _count("Feedback_Bounce", "bounces")],
        )
        dead_letters = cloudwatch.GraphWidget(
            title="Dead-letter queues (messages waiting)", width=width,
            left=[work_queue.dlq.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic=cloudwatch.Stats.MAXIMUM, label=names.dlq(work_queue.spec.logical_name))
                for work_queue in queues],
        )
        variants = cloudwatch.GraphWidget(
            title="Model variant traffic (decisions)", width=width, stacked=True,
            left=[cloudwatch.MathExpression(
                expression=f"SEARCH('Namespace=\"{namespace}\" MetricName=\"Decisions\" Variant', 'Sum', "
                           f"{int(PERIOD.to_seconds())})",
                label="", period=PERIOD)],
        )
        drift_namespace, drift_metric = spec.DRIFT_METRIC
        drift = cloudwatch.GraphWidget(
            title="Feature drift (max PSI over features)", width=width,
            left=[cloudwatch.Metric(namespace=drift_namespace, metric_name=drift_metric,
                                    statistic=cloudwatch.Stats.MAXIMUM, period=Duration.hours(1), label="max PSI")],
            left_annotations=[cloudwatch.HorizontalAnnotation(
                value=spec.DRIFT_THRESHOLD, label="retraining threshold", color=cloudwatch.Color.RED)],
        )
        # Published by the drift monitor per ModelVersion: all versions at once, by search.
        calibration = cloudwatch.GraphWidget(
            title="Calibration (realized ÷ predicted redemptions, by model version)", width=width,
            left=[cloudwatch.MathExpression(
                expression=f"SEARCH('{{{drift_namespace},ModelVersion}} MetricName=\"CalibrationRatio\"', "
                           "'Maximum', 86400)",
                label="", period=Duration.days(1))],
            left_annotations=[cloudwatch.HorizontalAnnotation(value=1.0, label="calibrated")],
        )
        alarm_status = cloudwatch.AlarmStatusWidget(
            title="Alarms", width=width, alarms=[*alarms, drift_alarm],
        )
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{names.prefix}-operations",
            default_interval=Duration.days(1),
            widgets=[[decisions, sends], [conversions, unsubscribes], [dead_letters, variants],
                     [drift, calibration], [alarm_status]],
        )
