"""SES sending setup: the configuration set whose events flow back to Fidelio's feedback queue."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ses as ses
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import spec

# What SES publishes: outcomes (delivery, open, click...) are the labels the models learn
# from, and bounces/complaints/subscription changes feed suppression. Not SEND: one record
# per email (an SNS publish, an SQS message and a feedback invocation share) that feedback
# drops, since dispatch announces the send itself (functions/domain/ses_events.py). Rendering
# failures and delivery delays are rare and show in feedback's "skipped" log lines.
SES_EVENTS: tuple[ses.EmailSendingEvent, ...] = (
    ses.EmailSendingEvent.DELIVERY,
    ses.EmailSendingEvent.BOUNCE,
    ses.EmailSendingEvent.COMPLAINT,
    ses.EmailSendingEvent.REJECT,
    ses.EmailSendingEvent.OPEN,
    ses.EmailSendingEvent.CLICK,
    ses.EmailSendingEvent.RENDERING_FAILURE,
    ses.EmailSendingEvent.DELIVERY_DELAY,
    ses.EmailSendingEvent.SUBSCRIPTION,
)


class EmailFeedback(Construct):
    """SES configuration set -> encrypted SNS topic -> feedback queue (raw delivery)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: spec.Names,
        key: kms.IKey,
        feedback_queue: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "SesEvents",
            topic_name=names.ses_events_topic,
            display_name="Fidelio SES events",
            master_key=key,
            enforce_ssl=True,
        )
        self._subscribe(feedback_queue, key, names)
        self.configuration_set = ses.ConfigurationSet(
            self,
            "ConfigurationSet",
            configuration_set_name=names.ses_configuration_set,
            reputation_metrics=True,
            sending_enabled=True,
            tls_policy=ses.ConfigurationSetTlsPolicy.REQUIRE,
            suppression_reasons=ses.SuppressionReasons.BOUNCES_AND_COMPLAINTS,
        )
        self.configuration_set.add_event_destination(
            "ToFeedbackTopic",
            configuration_set_event_destination_name="to-feedback",
            destination=ses.EventDestination.sns_topic(self.topic),
            events=list(SES_EVENTS),
        )

    def _subscribe(self, queue: sqs.IQueue, key: kms.IKey, names: spec.Names) -> None:
        """topic -> queue, raw delivery (the queue receives SES's JSON record itself).

        Written out instead of `SqsSubscription`: that helper puts a `Ref` to the topic into
        the key policy, and since the topic is encrypted with the same key, CloudFormation
        would see a cycle (key -> topic -> key). The topic ARN is built from its name instead.
        """
        topic_arn = Stack.of(self).format_arn(service="sns", resource=names.ses_events_topic)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowSesEventsTopicToWriteToEncryptedQueue",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
                conditions={"ArnEquals": {"aws:SourceArn": topic_arn}},
            )
        )
        added = queue.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.topic.topic_arn}},
            )
        )
        subscription = sns.Subscription(
            self,
            "ToFeedbackQueue",
            topic=self.topic,
            protocol=sns.SubscriptionProtocol.SQS,
            endpoint=queue.queue_arn,
            raw_message_delivery=True,
        )
        if added.policy_dependable is not None:
            subscription.node.add_dependency(added.policy_dependable)  # SNS checks on subscribe
