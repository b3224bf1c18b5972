"""The retraining loop on SageMaker: model package group, pipeline (definition built offline by
infra/pipeline.py), its least-privilege execution role, and what starts it: a weekly schedule
and the drift alarm (MaxFeaturePSI above the threshold)."""

from __future__ import annotations

import jsii
from aws_cdk import ArnFormat, Duration, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct

from infra import constants, pipeline, spec
from infra.constructs.acknowledgments import acknowledge, nag_resource

ARCHIVE_NAME = "fidelio-pipeline-code.tar.gz"


@jsii.implements(events.IRuleTarget)
class _StartPipeline:
    """EventBridge target starting a SageMaker pipeline with its default parameters."""

    def __init__(self, pipeline_arn: str, role: iam.IRole) -> None:
        self._arn, self._role = pipeline_arn, role

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._arn, role=self._role)


class RetrainingPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: spec.Names,
        key: kms.IKey,
        data_bucket: s3.IBucket,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        if Token.is_unresolved(stack.region):
            raise pipeline.PipelineDefinitionError(
                "the retraining pipeline needs a concrete region (its container images differ by region)")
        self.pipeline_name = names.retraining_pipeline

        archive = pipeline.build_code_archive(
            constants.REPO_ROOT, constants.REPO_ROOT / "build" / "pipeline" / ARCHIVE_NAME)
        self.code = s3_assets.Asset(self, "Code", path=str(archive))

        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=names.model_package_group,
            model_package_group_description="Fidelio offer models (ONNX + model card) that passed the "
            "retraining pipeline's evaluation gate",
        )
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Fidelio retraining pipeline and its jobs: training data, registry, serving config",
        )
        self._grant_execution(stack, names, key, data_bucket)

        settings = pipeline.PipelineSettings(
            pipeline_name=self.pipeline_name,
            region=stack.region,
            model_package_group=names.model_package_group,
            serving_config_parameter=names.serving_config_parameter,
            model_registry_prefix=spec.MODEL_REGISTRY_PREFIX,
        )
        self.definition = pipeline.build_definition(settings)
        body = pipeline.bind(self.definition, {
            pipeline.PLACEHOLDER_BUCKET: data_bucket.bucket_name,
            pipeline.PLACEHOLDER_ROLE_ARN: self.role.role_arn,
            pipeline.PLACEHOLDER_KMS_KEY_ARN: key.key_arn,
            pipeline.PLACEHOLDER_CODE_URI: self.code.s3_object_url,
        })
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_display_name=self.pipeline_name,
            pipeline_description="prepare -> train -> evaluate vs champion -> gate -> register -> promote",
            role_arn=self.role.role_arn,
            # A dict, not PipelineDefinitionProperty: that class renders the key in the wrong case.
            pipeline_definition={"PipelineDefinitionBody": body},
        )
        self.pipeline.node.add_dependency(self.group)
        self.pipeline.node.add_dependency(self.role)
        self.pipeline_arn = stack.format_arn(
            service="sagemaker", resource="pipeline", resource_name=self.pipeline_name)

        self._triggers(names, alarm_topic)

    # -- the execution role -------------------------------------------------------------------

    def _grant_execution(self, stack: Stack, names: spec.Names, key: kms.IKey, data_bucket: s3.IBucket) -> None:
        role = self.role
        export_prefix = pipeline.TRAINING_EXPORT_PREFIX
        work_prefix = pipeline.WORK_PREFIX
        registry_prefix = spec.MODEL_REGISTRY_PREFIX

        def objects(prefix: str) -> str:
            return data_bucket.arn_for_objects(f"{prefix}/*")

        role.add_to_policy(iam.PolicyStatement(
            sid="ReadTrainingExportAndCode",
            actions=["s3:GetObject"],
            resources=[objects(export_prefix),
                       f"arn:{stack.partition}:s3:::{self.code.s3_bucket_name}/{self.code.s3_object_key}"],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadWriteRunArtifactsAndRegistry",
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[objects(work_prefix), objects(registry_prefix)],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ListOwnPrefixes",
            actions=["s3:ListBucket"],
            resources=[data_bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [
                f"{export_prefix}/*", f"{work_prefix}/*", f"{registry_prefix}/*", export_prefix,
            ]}},
        ))
        # Processing inputs are S3 prefixes: SageMaker lists the code archive's key before copying it.
        role.add_to_policy(iam.PolicyStatement(
            sid="ListCodeArchive",
            actions=["s3:ListBucket"],
            resources=[f"arn:{stack.partition}:s3:::{self.code.s3_bucket_name}"],
            conditions={"StringEquals": {"s3:prefix": [self.code.s3_object_key]}},
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="UseDataKey",
            actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            resources=[key.key_arn],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadWriteServingConfig",
            actions=["ssm:GetParameter", "ssm:PutParameter"],
            resources=[stack.format_arn(service="ssm", resource="parameter",
                                        resource_name=names.serving_config_parameter.lstrip("/"))],
        ))

        def sagemaker_arn(resource: str, name: str) -> str:
            return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

        # SageMaker Pipelines names each job "pipelines-<execution id>-<step>-<suffix>".
        jobs = [sagemaker_arn("processing-job", "pipelines-*"), sagemaker_arn("training-job", "pipelines-*")]
        role.add_to_policy(iam.PolicyStatement(
            sid="RunPipelineJobs",
            actions=[
                "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
                "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
                "sagemaker:AddTags",
            ],
            resources=jobs,
        ))
        group_arn = sagemaker_arn("model-package-group", names.model_package_group)
        packages_arn = sagemaker_arn("model-package", f"{names.model_package_group}/*")
        role.add_to_policy(iam.PolicyStatement(
            sid="RegisterModelPackages",
            actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage",
                     "sagemaker:DescribeModelPackageGroup", "sagemaker:AddTags"],
            resources=[group_arn, packages_arn],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="PassRoleToOwnJobs",
            actions=["iam:PassRole"],
            resources=[role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ))
        image = pipeline.sklearn_image_uri(stack.region)
        image_account, repository = image.split(".", 1)[0], image.split("/", 1)[1].split(":", 1)[0]
        role.add_to_policy(iam.PolicyStatement(
            sid="PullScikitLearnImage",
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[stack.format_arn(service="ecr", account=image_account, resource="repository",
                                        resource_name=repository)],
        ))
        log_groups = [
            stack.format_arn(service="logs", resource="log-group", resource_name=f"/aws/sagemaker/{kind}:*",
                             arn_format=ArnFormat.COLON_RESOURCE_NAME)
            for kind in ("ProcessingJobs", "TrainingJobs")
        ]
        role.add_to_policy(iam.PolicyStatement(
            sid="WriteJobLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=log_groups,
        ))
        wildcards = {
            objects(export_prefix): "the training export: date-partitioned Parquet parts the Prepare step reads",
            objects(work_prefix): "this pipeline's own run artifacts (prepared splits, model.tar.gz, evaluation.json)",
            objects(registry_prefix): "the model registry decide reads: one folder per model version",
            jobs[0]: "processing jobs SageMaker Pipelines names pipelines-<execution id>-<step>-*",
            jobs[1]: "training jobs SageMaker Pipelines names pipelines-<execution id>-<step>-*",
            packages_arn: "versions inside Fidelio's one model package group (numbered by SageMaker)",
            **{group: "the log streams of SageMaker's own job log group (one stream per job instance)"
               for group in log_groups},
        }
        for resource, what in wildcards.items():
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{nag_resource(self, resource)}]",
                f"The wildcard stays inside one name prefix: {what}. Names are generated per run, "
                "so they cannot be listed in advance.",
            )

    # -- what starts it -----------------------------------------------------------------------

    def _triggers(self, names: spec.Names, alarm_topic: sns.ITopic) -> None:
        events_role = iam.Role(
            self,
            "StartRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description="EventBridge starts the retraining pipeline (weekly, or on the drift alarm)",
        )
        events_role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:StartPipelineExecution"], resources=[self.pipeline_arn]))
        target = _StartPipeline(self.pipeline_arn, events_role)

        self.schedule = events.Rule(
            self,
            "Weekly",
            rule_name=f"{names.prefix}-retraining-weekly",
            description="Retrain the offer model every week on the latest training export",
            schedule=events.Schedule.expression(spec.RETRAINING_SCHEDULE),
            targets=[target],
        )

        namespace, metric_name = spec.DRIFT_METRIC
        self.drift_alarm = cloudwatch.Alarm(
            self,
            "DriftAlarm",
            alarm_name=f"{names.prefix}-feature-drift",
            alarm_description=f"A feature's PSI between recent serving rows and the model card's baseline "
            f"exceeded {spec.DRIFT_THRESHOLD}: the retraining pipeline starts; check its gate's verdict.",
            metric=cloudwatch.Metric(namespace=namespace, metric_name=metric_name,
                                     period=Duration.days(1), statistic=cloudwatch.Stats.MAXIMUM),
            threshold=spec.DRIFT_THRESHOLD,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.drift_alarm.add_alarm_action(actions.SnsAction(alarm_topic))
        self.on_drift = events.Rule(
            self,
            "OnDrift",
            rule_name=f"{names.prefix}-retraining-on-drift",
            description="Retrain when the drift alarm goes to ALARM",
            event_pattern=events.EventPattern(
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                resources=[self.drift_alarm.alarm_arn],
                detail={"state": {"value": ["ALARM"]}},
            ),
            targets=[target],
        )
