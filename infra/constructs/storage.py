"""The data bucket (event/decision/outcome archive, training data) and its access-log bucket."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import constants
from infra.constructs.acknowledgments import acknowledge


class DataStorage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        # S3 server access logging can only deliver to SSE-S3 buckets, not SSE-KMS ones.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(constants.ACCESS_LOGS_EXPIRY_DAYS),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This bucket is the destination of the data bucket's server access logs; "
            "logging its own access would need a third bucket and so on without end.",
        )
        self.data = s3.Bucket(
            self,
            "Data",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,  # one KMS call per bucket key, not per object
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="data-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="archive-to-infrequent-access",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(constants.DATA_TRANSITION_TO_IA_DAYS),
                        )
                    ],
                    noncurrent_version_expiration=Duration.days(constants.DATA_NONCURRENT_EXPIRY_DAYS),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                # GDPR exports hold a member's personal data: kept long enough to be handed over,
                # then gone (old versions too), whatever happens to the request afterwards.
                s3.LifecycleRule(
                    id="expire-privacy-exports",
                    prefix="privacy/exports/",
                    expiration=Duration.days(constants.PRIVACY_EXPORT_EXPIRY_DAYS),
                    noncurrent_version_expiration=Duration.days(1),
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
