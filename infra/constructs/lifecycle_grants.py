"""What the model lifecycle adds to the functions: decide and offers_api read the serving config
(SSM) and model versions from the registry prefix; the drift monitor reads the decision archive
and publishes PSI metrics and may start the retraining pipeline; the batch scorer updates
members' scores and puts a win-back sweep on the bus. Plus the schedule rules of
spec.FUNCTION_SCHEDULES. Every permission names its resource; each wildcard is a key prefix."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import constants, spec
from infra.constructs.acknowledgments import acknowledge, nag_resource

if TYPE_CHECKING:
    from infra.constructs.functions import FunctionResources

SERVING_FUNCTIONS = ("decide", "offers_api")
RETRAIN_REQUESTS_PREFIX = "lifecycle/retrain-requests/"  # functions/handlers/drift_monitor.py


class LifecycleGrants(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, names: spec.Names,
                 functions: dict[str, lambda_.Function], roles: dict[str, iam.Role],
                 resources: FunctionResources) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        bucket, key = resources.data_bucket, resources.key
        parameter_arn = stack.format_arn(service="ssm", resource="parameter",
                                         resource_name=names.serving_config_parameter.lstrip("/"))
        registry_objects = bucket.arn_for_objects(f"{spec.MODEL_REGISTRY_PREFIX}/*")
        for name in (*SERVING_FUNCTIONS, "drift_monitor"):
            function = functions[name]
            iam.Grant.add_to_principal(grantee=function, actions=["ssm:GetParameter"], resource_arns=[parameter_arn])
            iam.Grant.add_to_principal(grantee=function, actions=["s3:GetObject"], resource_arns=[registry_objects])
            key.grant_decrypt(function)  # SSE-KMS objects of the data bucket
            acknowledge(roles[name], f"AwsSolutions-IAM5[Resource::{nag_resource(self, registry_objects)}]",
                        "Model versions are named at training time (models/offers/<version>/): reads are "
                        "limited to the registry prefix of the data bucket.")

        drift = functions["drift_monitor"]
        archive_objects = bucket.arn_for_objects("decisions/*")
        requests_objects = bucket.arn_for_objects(f"{RETRAIN_REQUESTS_PREFIX}*")
        iam.Grant.add_to_principal(grantee=drift, actions=["s3:ListBucket"], resource_arns=[bucket.bucket_arn],
                                   conditions={"StringLike": {"s3:prefix": ["decisions/*"]}})
        iam.Grant.add_to_principal(grantee=drift, actions=["s3:GetObject"], resource_arns=[archive_objects])
        iam.Grant.add_to_principal(grantee=drift, actions=["s3:PutObject"], resource_arns=[requests_objects])
        # the outcomes of matured sends, for calibration (BatchGetItem on the decisions table only)
        iam.Grant.add_to_principal(grantee=drift, actions=["dynamodb:BatchGetItem"],
                                   resource_arns=[resources.tables["decisions"].table_arn])
        key.grant_encrypt(drift)
        # PutMetricData has no resource ARN: scoped by namespace instead.
        iam.Grant.add_to_principal(grantee=drift, actions=["cloudwatch:PutMetricData"], resource_arns=["*"],
                                   conditions={"StringEquals": {
                                       "cloudwatch:namespace": constants.POWERTOOLS_METRICS_NAMESPACE}})
        iam.Grant.add_to_principal(
            grantee=drift, actions=["sagemaker:StartPipelineExecution"],
            resource_arns=[stack.format_arn(service="sagemaker", resource="pipeline",
                                            resource_name=names.retraining_pipeline)])
        for resource, reason in (
            (archive_objects, "The archive is read day by day (decisions/date=YYYY-MM-DD/<hash>.jsonl): reads "
                              "are limited to that prefix of the data bucket."),
            (requests_objects, "A retrain request is one object per day and model: writes are limited to "
                               "lifecycle/retrain-requests/ in the data bucket."),
        ):
            acknowledge(roles["drift_monitor"], f"AwsSolutions-IAM5[Resource::{nag_resource(self, resource)}]",
                        reason)

        scorer = functions["score_members"]
        resources.tables["members"].grants.read_write_data(scorer)  # Scan, then UpdateItem on 3 attributes
        resources.bus.grants.actions(scorer, ["events:PutEvents"])  # the win-back sweep.requested

        self.rules: dict[str, events.Rule] = {}
        for name, expression in spec.FUNCTION_SCHEDULES:
            self.rules[name] = events.Rule(
                self, f"schedule-{name}", rule_name=f"{names.prefix}-{name.replace('_', '-')}",
                description=f"Runs {name} on schedule ({expression}, UTC)",
                schedule=events.Schedule.expression(expression),
                targets=[targets.LambdaFunction(functions[name], retry_attempts=2)],
            )
