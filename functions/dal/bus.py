"""Publishing events to the bus: the one place that builds PutEvents entries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from functions.domain.events import event_type_of, to_detail

PUT_EVENTS_BATCH = 10


class PublishFailed(RuntimeError):
    pass


def entry(event: BaseModel, bus_name: str, source: str) -> dict[str, Any]:
    return {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": event_type_of(event),
        "Detail": json.dumps(to_detail(event), separators=(",", ":")),
    }


def publish(events_client: Any, bus_name: str, events: Sequence[BaseModel], source: str) -> int:
    """Put events on the bus, 10 per call; raises if any entry is refused."""
    sent = 0
    for start in range(0, len(events), PUT_EVENTS_BATCH):
        chunk = [entry(e, bus_name, source) for e in events[start : start + PUT_EVENTS_BATCH]]
        response = events_client.put_events(Entries=chunk)
        if response.get("FailedEntryCount"):
            errors = {e.get("ErrorCode") for e in response["Entries"] if e.get("ErrorCode")}
            raise PublishFailed(f"{response['FailedEntryCount']} of {len(chunk)} events refused: {sorted(errors)}")
        sent += len(chunk)
    return sent
