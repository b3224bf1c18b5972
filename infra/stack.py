"""FidelioStack: the whole engine in one stack (bus -> queues -> functions -> SES/SNS)."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from infra import constants, spec
from infra.constructs.alarms import OperationalAlarms
from infra.constructs.dashboard import OperationsDashboard
from infra.constructs.encryption import DataKey
from infra.constructs.event_bus import EventBackbone
from infra.constructs.functions import FunctionResources, Functions, LambdaAssets
from infra.constructs.messaging import EmailFeedback
from infra.constructs.ml_pipeline import RetrainingPipeline
from infra.constructs.queues import WorkQueues
from infra.constructs.scheduling import SendScheduling
from infra.constructs.storage import DataStorage
from infra.constructs.tables import Tables


class FidelioStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets: LambdaAssets,
        names: spec.Names | None = None,
        sender_email: str = constants.DEFAULT_SENDER_EMAIL,
        unsubscribe_base_url: str = constants.DEFAULT_UNSUBSCRIBE_BASE_URL,
        log_level: str = constants.DEFAULT_LOG_LEVEL,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = names or spec.Names()
        Tags.of(self).add("project", spec.PROJECT_TAG)

        key = DataKey(self, "Encryption", alias=f"alias/{names.prefix}").key
        self.queues = WorkQueues(self, "Queues", names=names, key=key)
        self.tables = Tables(self, "Tables", names=names, key=key)
        self.events = EventBackbone(self, "Events", names=names, queues=self.queues)
        self.storage = DataStorage(self, "Storage", key=key)
        self.email = EmailFeedback(
            self, "Email", names=names, key=key, feedback_queue=self.queues["feedback"].queue
        )
        self.scheduling = SendScheduling(
            self, "Scheduling", names=names, key=key, dispatch_queue=self.queues["dispatch"].queue
        )
        self.functions = Functions(
            self,
            "Functions",
            names=names,
            assets=assets,
            resources=FunctionResources(
                key=key,
                tables=dict(self.tables.items()),
                queues=self.queues,
                bus=self.events.bus,
                data_bucket=self.storage.data,
                scheduling=self.scheduling,
                configuration_set=self.email.configuration_set,
                sender_email=sender_email,
                unsubscribe_base_url=unsubscribe_base_url,
                log_level=log_level,
            ),
        )
        self.alarms = OperationalAlarms(
            self,
            "Alarms",
            names=names,
            key=key,
            queues=self.queues,
            functions=self.functions.functions,
        )
        self.retraining = RetrainingPipeline(
            self,
            "Retraining",
            names=names,
            key=key,
            data_bucket=self.storage.data,
            alarm_topic=self.alarms.topic,
        )
        self.dashboard = OperationsDashboard(
            self,
            "Dashboard",
            names=names,
            queues=self.queues,
            alarms=list(self.alarms.alarms),
            drift_alarm=self.retraining.drift_alarm,
        )
        self._outputs(names)

    def _outputs(self, names: spec.Names) -> None:
        CfnOutput(self, "BusName", value=self.events.bus.event_bus_name)
        for work_queue in self.queues:
            logical = work_queue.spec.logical_name
            CfnOutput(self, f"{logical.capitalize()}QueueUrl", value=work_queue.queue.queue_url)
            CfnOutput(self, f"{logical.capitalize()}DlqUrl", value=work_queue.dlq.queue_url)
        for logical, table in self.tables.items():
            CfnOutput(self, f"{logical.capitalize()}TableName", value=table.table_name)
        CfnOutput(self, "DataBucketName", value=self.storage.data.bucket_name)
        CfnOutput(
            self,
            "SesConfigurationSetName",
            value=self.email.configuration_set.configuration_set_name,
        )
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)
        CfnOutput(self, "RetrainingPipelineName", value=self.retraining.pipeline_name)
        CfnOutput(self, "ModelPackageGroupName", value=self.retraining.group.model_package_group_name)
        # The in-app offers API: callers sign with SigV4 (service "lambda") and need
        # lambda:InvokeFunctionUrl and lambda:InvokeFunction on the function.
        CfnOutput(self, "OffersApiUrl", value=self.functions.offers_api_url.url)
        CfnOutput(
            self, "OffersApiFunctionArn", value=self.functions.functions["offers_api"].function_arn
        )
        # Public unsubscribe / preference pages (the link token authenticates the member).
        CfnOutput(self, "PreferencesUrl", value=self.functions.preferences_url.url)
