"""The local AWS stand-in: a moto server on 127.0.0.1 with the same resources the CDK app
defines, created from the same description (infra/spec.py)."""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import Any

import boto3

from infra import spec

REGION = "eu-west-1"
ACCOUNT = "123456789012"
SENDER = "rewards@fidelio.example"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_SESSION_TOKEN": "testing"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalStack:
    """Names, URLs and ARNs of the resources created on one moto server."""

    endpoint: str
    names: spec.Names = field(default_factory=spec.Names)
    queue_urls: dict[str, str] = field(default_factory=dict)
    queue_arns: dict[str, str] = field(default_factory=dict)
    dlq_urls: dict[str, str] = field(default_factory=dict)
    data_bucket: str = "fidelio-data-local"
    scheduler_role_arn: str = f"arn:aws:iam::{ACCOUNT}:role/fidelio-scheduler"
    ses_events_topic_arn: str = ""
    # Secrets Manager secret holding the link signing keys (as the CDK stack's secret does).
    link_signing_secret: str = ""

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def function_env(self, function: str) -> dict[str, str]:
        """The environment a function gets (what the CDK stack sets in AWS)."""
        fn = next(f for f in spec.FUNCTIONS if f.logical_name == function)
        env = {
            **DUMMY_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
            "FIDELIO_REGION": REGION, "FIDELIO_ENDPOINT_URL": self.endpoint,
            "FIDELIO_BUS_NAME": self.names.bus,
            "FIDELIO_DECIDE_QUEUE_URL": self.queue_urls["decide"],
            "FIDELIO_DISPATCH_QUEUE_URL": self.queue_urls["dispatch"],
            "FIDELIO_DISPATCH_QUEUE_ARN": self.queue_arns["dispatch"],
            "FIDELIO_DLQ_URL": self.dlq_urls[fn.queue] if fn.queue else "",
            "FIDELIO_SCHEDULE_GROUP": self.names.schedule_group,
            "FIDELIO_SCHEDULER_ROLE_ARN": self.scheduler_role_arn,
            "FIDELIO_SES_CONFIGURATION_SET": self.names.ses_configuration_set,
            "FIDELIO_SENDER_EMAIL": SENDER,
            "FIDELIO_DATA_BUCKET": self.data_bucket,
            "FIDELIO_SERVING_CONFIG_PARAMETER": self.names.serving_config_parameter,
            "FIDELIO_LINK_SIGNING_SECRET": self.link_signing_secret,
            "POWERTOOLS_SERVICE_NAME": "fidelio",
            "POWERTOOLS_METRICS_NAMESPACE": "Fidelio",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_DEV": "false",
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }
        for table in spec.TABLES:
            env[f"FIDELIO_{table.logical_name.upper()}_TABLE"] = self.names.table(table.logical_name)
        return env

    def to_json(self) -> str:
        return json.dumps({"endpoint": self.endpoint, "prefix": self.names.prefix,
                           "queue_urls": self.queue_urls, "queue_arns": self.queue_arns,
                           "dlq_urls": self.dlq_urls, "data_bucket": self.data_bucket,
                           "ses_events_topic_arn": self.ses_events_topic_arn,
                           "link_signing_secret": self.link_signing_secret})

    @classmethod
    def from_json(cls, text: str) -> LocalStack:
        data = json.loads(text)
        return cls(endpoint=data["endpoint"], names=spec.Names(prefix=data["prefix"]),
                   queue_urls=data["queue_urls"], queue_arns=data["queue_arns"],
                   dlq_urls=data["dlq_urls"], data_bucket=data["data_bucket"],
                   ses_events_topic_arn=data.get("ses_events_topic_arn", ""),
                   link_signing_secret=data.get("link_signing_secret", ""))


def _create_table(dynamodb: Any, name: str, table: spec.TableSpec) -> None:
    attributes = {table.partition_key.name: table.partition_key.type}
    keys = [{"AttributeName": table.partition_key.name, "KeyType": "HASH"}]
    if table.sort_key:
        attributes[table.sort_key.name] = table.sort_key.type
        keys.append({"AttributeName": table.sort_key.name, "KeyType": "RANGE"})
    indexes = []
    for index in table.global_indexes:
        index_keys = [{"AttributeName": index.partition_key.name, "KeyType": "HASH"}]
        attributes[index.partition_key.name] = index.partition_key.type
        if index.sort_key:
            attributes[index.sort_key.name] = index.sort_key.type
            index_keys.append({"AttributeName": index.sort_key.name, "KeyType": "RANGE"})
        indexes.append({"IndexName": index.name, "KeySchema": index_keys, "Projection": {"ProjectionType": index.projection}})
    kwargs: dict[str, Any] = {
        "TableName": name, "KeySchema": keys, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": v} for k, v in attributes.items()],
    }
    if indexes:
        kwargs["GlobalSecondaryIndexes"] = indexes
    dynamodb.create_table(**kwargs)
    if table.ttl_attribute:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": table.ttl_attribute})


def create_resources(endpoint: str, names: spec.Names | None = None) -> LocalStack:
    """Create every resource of the stack on the moto server at `endpoint`."""
    stack = LocalStack(endpoint=endpoint, names=names or spec.Names())
    n = stack.names
    stack.data_bucket = f"{n.prefix}-data-local"
    dynamodb, sqs, events = stack.client("dynamodb"), stack.client("sqs"), stack.client("events")
    for table in spec.TABLES:
        _create_table(dynamodb, n.table(table.logical_name), table)
    for queue in spec.QUEUES:
        dlq_url = sqs.create_queue(QueueName=n.dlq(queue.logical_name),
                                   Attributes={"MessageRetentionPeriod": str(14 * 86400)})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName=n.queue(queue.logical_name), Attributes={
            "VisibilityTimeout": str(queue.visibility_timeout_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": str(queue.max_receive_count)}),
        })["QueueUrl"]
        stack.queue_urls[queue.logical_name] = url
        stack.dlq_urls[queue.logical_name] = dlq_url
        stack.queue_arns[queue.logical_name] = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.create_event_bus(Name=n.bus)
    for queue in spec.QUEUES:
        if not queue.detail_types:
            continue
        events.put_rule(Name=n.rule(queue.logical_name), EventBusName=n.bus,
                        EventPattern=json.dumps(spec.rule_pattern(queue)), State="ENABLED")
        events.put_targets(Rule=n.rule(queue.logical_name), EventBusName=n.bus,
                           Targets=[{"Id": queue.logical_name, "Arn": stack.queue_arns[queue.logical_name]}])
    ses = stack.client("sesv2")
    if SENDER not in {i["IdentityName"] for i in ses.list_email_identities().get("EmailIdentities", [])}:
        ses.create_email_identity(EmailIdentity=SENDER)
        stack.client("ses").verify_email_identity(EmailAddress=SENDER)
    ses.create_configuration_set(ConfigurationSetName=n.ses_configuration_set)
    sns = stack.client("sns")
    stack.ses_events_topic_arn = sns.create_topic(Name=n.ses_events_topic)["TopicArn"]
    sns.subscribe(TopicArn=stack.ses_events_topic_arn, Protocol="sqs",
                  Endpoint=stack.queue_arns["feedback"], Attributes={"RawMessageDelivery": "true"})
    stack.client("scheduler").create_schedule_group(Name=n.schedule_group)
    # A fresh random key per stand-in, in the same "kid:secret" format a rotated secret holds.
    stack.link_signing_secret = stack.client("secretsmanager").create_secret(
        Name=f"{n.prefix}-link-signing-keys", SecretString=f"local:{secrets.token_urlsafe(32)}")["ARN"]
    stack.client("s3").create_bucket(Bucket=stack.data_bucket,
                                     CreateBucketConfiguration={"LocationConstraint": REGION})
    return stack
