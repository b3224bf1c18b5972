"""The event contract: canonical events parse, bad ones are refused with a usable reason,
and the published JSON Schemas match the models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fidelio.cli import main as cli_main
from functions.domain.events import (
    EVENT_MODELS,
    InvalidEvent,
    UnknownEventType,
    UnknownSchemaVersion,
    json_schemas,
    parse_event,
    to_detail,
)
from tests.conftest import canonical_events, invalid_events

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_every_event_type_has_a_canonical_example_that_parses_and_round_trips():
    examples = canonical_events()
    assert set(examples) == set(EVENT_MODELS)
    for name, example in examples.items():
        parsed = parse_event(example["detail-type"], example["detail"])
        assert parse_event(name, to_detail(parsed)) == parsed


@pytest.mark.parametrize("name", sorted(invalid_events()))
def test_an_invalid_event_is_refused_with_a_reason_naming_the_problem(name):
    example = invalid_events()[name]
    with pytest.raises(InvalidEvent) as caught:
        parse_event(example["detail-type"], example["detail"])
    assert example["detail-type"] in caught.value.reason


def test_unknown_types_and_versions_say_what_is_supported():
    with pytest.raises(UnknownEventType, match=r"known: app\.opened"):
        parse_event("order.teleported", {})
    with pytest.raises(UnknownSchemaVersion, match=r"purchase.completed v7; supported: 1"):
        parse_event("purchase.completed", {"schema_version": 7})


def test_oversized_and_non_object_details_are_refused():
    with pytest.raises(InvalidEvent, match="limit"):
        parse_event("app.opened", "x" * 70_000)
    with pytest.raises(InvalidEvent, match="JSON object"):
        parse_event("app.opened", [1, 2])


def test_naive_timestamps_are_refused():
    detail = {"event_id": "e", "member_id": "m", "occurred_at": "2026-03-02T09:00:00"}
    with pytest.raises(InvalidEvent, match="occurred_at"):
        parse_event("app.opened", detail)


def test_published_json_schemas_are_current():
    # Given the schemas committed under schemas/, When compared with the models, Then equal
    for name, schema in json_schemas().items():
        committed = json.loads((SCHEMAS / f"{name}.v1.json").read_text())
        assert committed == json.loads(json.dumps(schema)), f"run `fidelio schemas write` ({name})"


def test_cli_refuses_a_file_with_an_invalid_event_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(invalid_events()["negative-amount"]))
    assert cli_main(["publish", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing published" in err[0] and "amount" in err[0]


def test_cli_refuses_a_bad_argument_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["local", "sideways"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_triggers_are_loaded_from_data_and_bad_entries_are_named(tmp_path):
    from functions.domain.triggers import DEFAULT_TRIGGERS, InvalidTriggers, load_triggers

    assert {t.name for t in DEFAULT_TRIGGERS} >= {"cart_abandoned", "cross_sell", "points_expiring", "win_back"}
    bad = tmp_path / "triggers.json"
    bad.write_text(json.dumps({"triggers": [{"name": "x", "on": "cart.abandoned", "offer_kinds": 3}]}))
    with pytest.raises(InvalidTriggers, match="trigger 1: offer_kinds"):
        load_triggers(bad)
