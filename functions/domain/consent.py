"""Consent as a history of changes (proof of consent), and the changes a member asks for.

A member's consent is kept per channel and topic. The profile holds the latest answer per
"channel:topic" (what the guardrails read); every change is also kept, never overwritten, as
a `ConsentEntry`: who, what, granted or withdrawn, where it was said, when, and the event
that carried it. Absent consent means no marketing; transactional messages are not
marketing and cannot be switched off here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from functions.domain import events as ev

MARKETING_TOPICS: tuple[ev.Topic, ...] = tuple(t for t in ev.Topic if t is not ev.Topic.TRANSACTIONAL)
CHANNELS: tuple[ev.Channel, ...] = tuple(ev.Channel)
# The source recorded when a member withdraws from the link in an email's header.
ONE_CLICK_SOURCE = "one_click_unsubscribe"
UNSUBSCRIBE_PAGE_SOURCE = "unsubscribe_page"
PREFERENCE_CENTER_SOURCE = "preference_center"
# What the profile records for notification.unsubscribed (functions.domain.profile).
UNSUBSCRIBE_LINK_SOURCE = "unsubscribe_link"


@dataclass(frozen=True)
class ConsentEntry:
    """One change of one member's consent for one channel and topic."""

    member_id: str
    channel: str
    topic: str
    granted: bool
    source: str
    at: datetime
    event_id: str


def entries_of(event: object) -> list[ConsentEntry]:
    """The consent changes an event carries (none for events that are not about consent)."""
    if isinstance(event, ev.ConsentChanged):
        return [ConsentEntry(event.member_id, event.channel.value, event.topic.value, event.granted,
                             event.source, event.occurred_at, event.event_id)]
    if isinstance(event, ev.NotificationUnsubscribed):
        topics = MARKETING_TOPICS if event.all_topics else (event.topic,)
        return [ConsentEntry(event.member_id, event.channel.value, topic.value, False,
                             UNSUBSCRIBE_LINK_SOURCE, event.occurred_at, event.event_id)
                for topic in topics]
    return []


def withdrawal(member_id: str, channel: str, topic: str | None, source: str, at: datetime,
               event_id_prefix: str) -> list[ev.ConsentChanged]:
    """consent.changed events withdrawing `topic` on `channel` (every marketing topic when
    `topic` is None; transactional messages stay on)."""
    topics = MARKETING_TOPICS if topic is None else (ev.Topic(topic),)
    if ev.Topic.TRANSACTIONAL in topics:
        raise ValueError("transactional messages are not marketing and cannot be unsubscribed from")
    return [ev.ConsentChanged(event_id=f"{event_id_prefix}-{channel}-{t.value}", member_id=member_id,
                              occurred_at=at, channel=ev.Channel(channel), topic=t, granted=False,
                              source=source)
            for t in topics]


def changes_to(current: Mapping[str, bool], wanted: Iterable[str], member_id: str, source: str,
               at: datetime, event_id_prefix: str) -> list[ev.ConsentChanged]:
    """consent.changed events that turn the member's `current` marketing consent
    ("channel:topic" -> granted; absent = not granted) into exactly the `wanted` set of
    "channel:topic" keys. Keys that do not change produce no event (and no history)."""
    wanted_set = set(wanted)
    allowed = {f"{c.value}:{t.value}" for c in CHANNELS for t in MARKETING_TOPICS}
    unknown = sorted(wanted_set - allowed)
    if unknown:
        raise ValueError(f"unknown consent choices {unknown[:3]}; expected channel:topic from {sorted(allowed)}")
    events = []
    for channel in CHANNELS:
        for topic in MARKETING_TOPICS:
            key = f"{channel.value}:{topic.value}"
            granted = key in wanted_set
            if current.get(key, False) != granted:
                events.append(ev.ConsentChanged(
                    event_id=f"{event_id_prefix}-{channel.value}-{topic.value}", member_id=member_id,
                    occurred_at=at, channel=channel, topic=topic, granted=granted, source=source))
    return events
