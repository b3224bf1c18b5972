"""DynamoDB tables from spec.TABLES: on-demand, PITR, CMK encryption, TTL and GSIs."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import spec

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def _attribute(key: spec.KeyAttribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


class Tables(Construct):
    """Member profiles, decisions, the send/consent ledger, offers and idempotency records.

    Retained on stack deletion: they hold member data and the decision log that GDPR
    requests and off-policy evaluation read.
    """

    def __init__(self, scope: Construct, construct_id: str, *, names: spec.Names, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._tables: dict[str, dynamodb.TableV2] = {}
        for table_spec in spec.TABLES:
            self._tables[table_spec.logical_name] = dynamodb.TableV2(
                self,
                table_spec.logical_name,
                table_name=names.table(table_spec.logical_name),
                partition_key=_attribute(table_spec.partition_key),
                sort_key=_attribute(table_spec.sort_key) if table_spec.sort_key else None,
                billing=dynamodb.Billing.on_demand(),
                encryption=dynamodb.TableEncryptionV2.customer_managed_key(key),
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                time_to_live_attribute=table_spec.ttl_attribute,
                global_secondary_indexes=[
                    dynamodb.GlobalSecondaryIndexPropsV2(
                        index_name=index.name,
                        partition_key=_attribute(index.partition_key),
                        sort_key=_attribute(index.sort_key) if index.sort_key else None,
                        projection_type=dynamodb.ProjectionType(index.projection),
                    )
                    for index in table_spec.global_indexes
                ]
                or None,
                deletion_protection=True,
                removal_policy=RemovalPolicy.RETAIN,
            )

    def __getitem__(self, logical_name: str) -> dynamodb.TableV2:
        return self._tables[logical_name]

    def items(self):
        return self._tables.items()
