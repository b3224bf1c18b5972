"""Reading a synthesized CloudFormation template the way the tests ask about it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def logical_id_of(template: dict[str, Any], resource_type: str, **properties: Any) -> str:
    """The one resource of `resource_type` whose properties include `properties`."""
    matches = [
        logical_id
        for logical_id, resource in resources_of(template, resource_type).items()
        if all(resource["Properties"].get(k) == v for k, v in properties.items())
    ]
    assert len(matches) == 1, f"{resource_type} with {properties}: found {matches}"
    return matches[0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def ref_id(value: Any) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` points to."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def iam_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner logical id, statement) of every identity policy, inline role policy and
    resource policy (queues, topics, buckets, keys) in the template."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        documents = [
            properties.get(key)
            for key in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument")
            if isinstance(properties.get(key), dict)
        ]
        documents += [p["PolicyDocument"] for p in properties.get("Policies", [])]
        for document in documents:
            for statement in document.get("Statement", []):
                yield logical_id, statement


def identity_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Statements of the IAM policies attached to roles: what Fidelio's code may do."""
    for logical_id, policy in resources_of(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield logical_id, statement


def role_of_function(template: dict[str, Any], function_id: str) -> str:
    role = ref_id(template["Resources"][function_id]["Properties"]["Role"])
    assert role is not None
    return role


def statements_of_role(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    statements = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        roles = [ref_id(r) for r in policy["Properties"].get("Roles", [])]
        if role_id in roles:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def allowed(statements: list[dict[str, Any]], action: str, resource_id: str | None = None) -> bool:
    """Whether an Allow statement grants `action` (exactly) on a resource referring to
    `resource_id` (any resource when None)."""
    for statement in statements:
        if statement.get("Effect") != "Allow" or action not in as_list(statement["Action"]):
            continue
        if resource_id is None:
            return True
        for resource in as_list(statement["Resource"]):
            if resource_id in repr(resource):
                return True
    return False
