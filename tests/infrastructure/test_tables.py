"""DynamoDB tables match spec.TABLES and protect the data they hold."""

from __future__ import annotations

from typing import Any

from infra import spec
from tests.infrastructure.cfn_template import ref_id, resources_of


def _key_schema(partition: spec.KeyAttribute, sort: spec.KeyAttribute | None) -> list[dict]:
    schema = [{"AttributeName": partition.name, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort.name, "KeyType": "RANGE"})
    return schema


def _tables_by_name(template_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tables = resources_of(template_json, "AWS::DynamoDB::GlobalTable").values()
    return {t["Properties"]["TableName"]: t for t in tables}


def test_key_schemas_ttl_and_indexes_equal_the_spec(template_json: dict[str, Any]) -> None:
    # Given the synthesized tables, by physical name
    tables = _tables_by_name(template_json)
    names = spec.Names()
    assert sorted(tables) == sorted(names.table(t.logical_name) for t in spec.TABLES)
    for table_spec in spec.TABLES:
        properties = tables[names.table(table_spec.logical_name)]["Properties"]
        # Then keys, attribute types, TTL and GSIs are those of the spec
        assert properties["KeySchema"] == _key_schema(table_spec.partition_key, table_spec.sort_key)
        declared = {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]}
        keys = [table_spec.partition_key, table_spec.sort_key] + [
            k for i in table_spec.global_indexes for k in (i.partition_key, i.sort_key)
        ]
        assert declared == {k.name: k.type for k in keys if k is not None}
        if table_spec.ttl_attribute:
            assert properties["TimeToLiveSpecification"] == {
                "AttributeName": table_spec.ttl_attribute,
                "Enabled": True,
            }
        else:
            assert "TimeToLiveSpecification" not in properties
        indexes = {i["IndexName"]: i["KeySchema"] for i in properties.get("GlobalSecondaryIndexes", [])}
        assert indexes == {
            i.name: _key_schema(i.partition_key, i.sort_key) for i in table_spec.global_indexes
        }


def test_tables_are_on_demand_recoverable_encrypted_and_retained(
    template_json: dict[str, Any],
) -> None:
    (key_id,) = resources_of(template_json, "AWS::KMS::Key")
    for name, table in _tables_by_name(template_json).items():
        properties = table["Properties"]
        # Given a table holding member data or decisions
        # Then it scales on demand
        assert properties["BillingMode"] == "PAY_PER_REQUEST", name
        # and can be restored to any second of the last 35 days
        (replica,) = properties["Replicas"]
        assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], name
        # and is encrypted with Fidelio's key
        assert properties["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}, name
        assert ref_id(replica["SSESpecification"]["KMSMasterKeyId"]) == key_id, name
        # and outlives the stack
        assert table["DeletionPolicy"] == "Retain", name
        assert replica["DeletionProtectionEnabled"] is True, name


def test_the_decisions_by_member_index_projects_keys_only_in_the_stack_and_the_model(
    template_json: dict[str, Any],
) -> None:
    from functions.dal.tables import DecisionRecord

    # Given the synthesized decisions table
    properties = _tables_by_name(template_json)[spec.Names().table("decisions")]["Properties"]
    projections = {i["IndexName"]: i["Projection"] for i in properties["GlobalSecondaryIndexes"]}
    # Then by_member copies only keys: a decision write or status/outcome update is not written twice
    assert projections == {"by_member": {"ProjectionType": "KEYS_ONLY"}}
    # and the pynamodb index the privacy code queries declares the same projection
    meta = DecisionRecord.by_member.Meta
    assert meta.index_name == "by_member" and meta.projection.projection_type == "KEYS_ONLY"
