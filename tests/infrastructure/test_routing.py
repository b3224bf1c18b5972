"""Events reach the right queue: one rule per routed queue, with the spec's pattern."""

from __future__ import annotations

from typing import Any

from infra import constants, spec
from tests.infrastructure.cfn_template import as_list, ref_id, resources_of


def _aws_service_rule(properties: dict[str, Any]) -> bool:
    """A rule on AWS's own events (an alarm's state change): those only reach the default bus."""
    sources = as_list(properties.get("EventPattern", {}).get("source", []))
    return bool(sources) and all(str(s).startswith("aws.") for s in sources)


def test_each_rule_pattern_equals_the_spec_pattern_and_targets_its_queue(
    template_json: dict[str, Any], queue_ids: dict[str, tuple[str, str]]
) -> None:
    # Given the rules on the bus
    rules = resources_of(template_json, "AWS::Events::Rule")
    by_name = {rule["Properties"]["Name"]: rule["Properties"] for rule in rules.values()
               if "EventPattern" in rule["Properties"] and not _aws_service_rule(rule["Properties"])}
    names = spec.Names()
    routed = [q for q in spec.QUEUES if q.detail_types]
    # Then there is exactly one rule per queue the spec routes from the bus
    assert sorted(by_name) == sorted(names.rule(q.logical_name) for q in routed)
    for queue in routed:
        rule = by_name[names.rule(queue.logical_name)]
        # with the very pattern the local stand-in uses
        assert rule["EventPattern"] == spec.rule_pattern(queue)
        # and its queue as the only target
        assert [ref_id(t["Arn"]) for t in rule["Targets"]] == [queue_ids[queue.logical_name][0]]


def test_rules_listen_on_the_fidelio_bus(template_json: dict[str, Any]) -> None:
    # Given the custom bus
    (bus_id,) = resources_of(template_json, "AWS::Events::EventBus")
    bus = template_json["Resources"][bus_id]
    assert bus["Properties"]["Name"] == spec.Names().bus
    # Then every routing rule is attached to it, not to the default bus
    for rule in resources_of(template_json, "AWS::Events::Rule").values():
        if "ScheduleExpression" in rule["Properties"] or _aws_service_rule(rule["Properties"]):
            continue  # schedules and AWS service events live on the default bus by design
        assert ref_id(rule["Properties"]["EventBusName"]) == bus_id


def test_every_event_on_the_bus_is_archived_for_replay(template_json: dict[str, Any]) -> None:
    # Given the archive
    (archive,) = resources_of(template_json, "AWS::Events::Archive").values()
    (bus_id,) = resources_of(template_json, "AWS::Events::EventBus")
    # Then it archives the Fidelio bus, for a year
    assert ref_id(archive["Properties"]["SourceArn"]) == bus_id
    assert archive["Properties"]["RetentionDays"] == constants.ARCHIVE_RETENTION_DAYS
    assert archive["Properties"]["EventPattern"] == {"account": [{"Ref": "AWS::AccountId"}]}


def test_routed_queues_accept_events_from_this_account_only(
    template_json: dict[str, Any], queue_ids: dict[str, tuple[str, str]]
) -> None:
    # Given the queue policies
    policies = resources_of(template_json, "AWS::SQS::QueuePolicy").values()
    for queue in (q for q in spec.QUEUES if q.detail_types):
        queue_id = queue_ids[queue.logical_name][0]
        statements = [
            s
            for p in policies
            if queue_id in [ref_id(q) for q in p["Properties"]["Queues"]]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if s.get("Principal") == {"Service": "events.amazonaws.com"}
        ]
        # Then EventBridge may send only on behalf of a rule of this stack
        assert statements, f"no EventBridge statement on {queue.logical_name}"
        for statement in statements:
            actions = set(as_list(statement["Action"]))
            assert "sqs:SendMessage" in actions
            assert actions <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
            }


def test_scheduled_sweeps_put_a_valid_sweep_event_on_the_decide_queue(
    template_json: dict[str, Any], queue_ids: dict[str, tuple[str, str]]
) -> None:
    import json

    from functions.domain.events import parse_event

    # Given the schedule rules
    decide_queue = queue_ids["decide"][0]
    schedules = {r["Properties"]["ScheduleExpression"]: r["Properties"]
                 for r in resources_of(template_json, "AWS::Events::Rule").values()
                 if "ScheduleExpression" in r["Properties"]
                 and any(decide_queue in repr(t["Arn"]) for t in r["Properties"]["Targets"])}
    # Then there is one per sweep of the spec, targeting decide's queue
    assert sorted(schedules) == sorted(expression for _, expression in spec.SWEEP_SCHEDULES)
    for sweep, expression in spec.SWEEP_SCHEDULES:
        (target,) = schedules[expression]["Targets"]
        assert ref_id(target["Arn"]) == queue_ids["decide"][0]
        # and the message, once EventBridge fills in the id and time, is a valid sweep.requested
        transformer = target["InputTransformer"]
        values = {"$.id": "4f1c-11ee", "$.time": "2026-03-02T06:00:00Z"}
        filled = transformer["InputTemplate"]
        for name, path in transformer["InputPathsMap"].items():
            filled = filled.replace(f"<{name}>", json.dumps(values[path]))  # unquoted: JSON values
        body = json.loads(filled)
        event = parse_event(body["detail-type"], body["detail"])
        assert event.sweep == sweep
