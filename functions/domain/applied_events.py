"""Which events a member's profile has absorbed: the exactly-once check of ingest, kept small.

The member item used to carry the ids of its last 200 events (~7 KB, so ~10 WRU per ingest
write and 3 RRU per consistent read), and still re-applied a replayed event older than those
200. It now carries at most about RECENT_EVENTS ids with the second each event occurred, and a
floor:

    invariant: every applied event that occurred at or after `floor` is in `entries`.

- An event that occurred before the floor is not applied: it is either a duplicate or later
  than the member's last RECENT_EVENTS events, and the two cannot be told apart.
- An event at or after the floor is a duplicate exactly when its id is in `entries`.
- When more than RECENT_EVENTS entries are kept, the floor rises to the occurrence second of the
  RECENT_EVENTS-th newest entry and the older entries are dropped, which keeps the invariant
  (entries sharing that second all stay, so the list can exceed the cap by such ties).

So a duplicate or a replay (SQS redelivery, EventBridge retry, archive replay) is never applied
twice, however old. The price: a genuine event that arrives after the member already has
RECENT_EVENTS newer ones is dropped as too late (counted as a duplicate by ingest). Out-of-order
arrival within that window is applied normally. The occurrence time comes from the event
itself, so every delivery of an event is judged the same way (the arrival time would not be).

Stored as one string, oldest first: "<event id>/<epoch second> ..." (ids never hold "/" or
spaces: events.Identifier). A bare id (the old format) counts as occurring at `legacy_second`.
"""

from __future__ import annotations

from dataclasses import dataclass

RECENT_EVENTS = 24  # ~1.2 KB with 36-character ids (200 bare ids took ~7.4 KB)
SEPARATOR = "/"


@dataclass(frozen=True)
class AppliedEvents:
    floor: int  # epoch second: events that occurred earlier are not applied
    entries: tuple[tuple[str, int], ...]  # (event id, occurrence second), oldest first

    @classmethod
    def parse(cls, stored: str | None, floor: float | None, legacy_second: int = 0) -> AppliedEvents:
        entries = []
        for token in (stored or "").split():
            event_id, sep, second = token.rpartition(SEPARATOR)
            entries.append((event_id, int(second)) if sep else (token, legacy_second))
        return cls(int(floor or 0), tuple(entries))

    def stored(self) -> str:
        return " ".join(f"{event_id}{SEPARATOR}{second}" for event_id, second in self.entries)

    @property
    def ids(self) -> list[str]:
        return [event_id for event_id, _ in self.entries]

    def admits(self, event_id: str, occurred_second: int) -> bool:
        """True when the event has not been applied (and is not older than the floor)."""
        return occurred_second >= self.floor and all(event_id != known for known, _ in self.entries)

    def with_event(self, event_id: str, occurred_second: int, keep: int = RECENT_EVENTS) -> AppliedEvents:
        """After applying the event: it is remembered, and the floor rises if more than `keep`
        entries would be kept."""
        entries = sorted([*self.entries, (event_id, occurred_second)], key=lambda e: e[1])  # stable
        floor = self.floor
        if len(entries) > keep:
            floor = max(floor, entries[-keep][1])
            entries = [e for e in entries if e[1] >= floor]
        return AppliedEvents(floor, tuple(entries))


def applied_history(events: list[tuple[str, int]], keep: int = RECENT_EVENTS) -> AppliedEvents:
    """What a profile rebuilt from `events` (all applied) remembers of them."""
    applied = AppliedEvents(0, ())
    for event_id, second in events:
        applied = applied.with_event(event_id, second, keep)
    return applied
