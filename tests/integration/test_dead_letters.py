"""`fidelio dlq`: dead letters can be listed with their reasons, shown, and replayed."""

from __future__ import annotations

import json

import pytest

from fidelio import dead_letters
from fidelio.local.runner import LocalRunner
from functions.handlers import deps
from tests.conftest import invalid_events
from tests.integration.helpers import drain, put_raw

pytestmark = pytest.mark.integration


def test_dead_letters_are_listed_by_reason_shown_and_redriven(local_stack):
    # Given two malformed events dead-lettered by ingest
    runner = LocalRunner(local_stack)
    deps.use(runner._deps["ingest"])
    bad = invalid_events()
    for name in ("missing-member-id", "unknown-version"):
        put_raw(local_stack.client("events"), local_stack.names.bus, bad[name]["detail-type"], bad[name]["detail"])
    runner.pump()
    # When they are listed and shown
    listed = dead_letters.list_dead_letters(local_stack)
    shown = dead_letters.show_dead_letters(local_stack, "ingest")
    # Then the reasons are there and nothing was consumed by looking
    assert sum(listed["ingest"].values()) == 2
    assert any("v3; supported: 1" in reason for reason in listed["ingest"])
    assert {json.loads(item["body"])["detail-type"] for item in shown} == {"purchase.completed", "app.opened"}
    # When they are redriven, Then they are back on the ingest queue and the DLQ is empty
    assert dead_letters.redrive(local_stack, "ingest") == 2
    assert len(drain(local_stack.client("sqs"), local_stack.queue_urls["ingest"])) == 2
    assert sum(dead_letters.list_dead_letters(local_stack)["ingest"].values()) == 0


def test_an_unknown_queue_gets_a_one_line_error(local_stack):
    from fidelio.errors import UsageError

    with pytest.raises(UsageError, match="choose one of: decide, dispatch, feedback, ingest"):
        dead_letters.redrive(local_stack, "nope")
