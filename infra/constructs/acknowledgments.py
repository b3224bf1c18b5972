"""The one way Fidelio acknowledges a cdk-nag finding: on the narrowest construct, with a
reason a reviewer can check (cdk-nag 3 reads acknowledgments from construct metadata)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    if len(reason) < 40:
        raise ValueError(f"acknowledgment of {rule_id} needs a real reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def nag_resource(scope: IConstruct, value: str) -> str:
    """`value` (an ARN, maybe with tokens) as cdk-nag prints it inside a finding id:
    `Ref` -> `<Id>`, `Fn::GetAtt` -> `<Id.Attr>`, `Fn::Join` concatenated."""
    return _flatten(Stack.of(scope).resolve(value))


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"<{argument}>"
        if function == "Fn::GetAtt":
            return f"<{argument[0]}.{argument[1]}>"
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(_flatten(part) for part in parts)
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding id")
