"""Member profiles in DynamoDB: read many at once, apply an event exactly once.

Each event is applied with a conditional write on the item's version (optimistic locking),
and the item remembers which events it absorbed (functions/domain/applied_events.py: the ids of
its last RECENT_EVENTS events and a floor below which nothing is applied), so a redelivered or
replayed event changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from functions.dal.tables import MemberRecord
from functions.domain.applied_events import AppliedEvents, applied_history
from functions.domain.profile import MemberProfile, apply_event, new_profile

MAX_ATTEMPTS = 8


class ProfileConflict(RuntimeError):
    """The profile kept changing under us; the record is retried by SQS."""


class ErasedMember(RuntimeError):
    """The event is for a member who was erased (GDPR): no profile may be re-created."""


def profile_of(record: MemberRecord) -> MemberProfile:
    """The stored profile with the latest batch scores laid over it."""
    profile = MemberProfile.model_validate(record.profile)
    if record.scores_at is not None and (profile.scores_at is None or record.scores_at >= profile.scores_at):
        profile.churn_risk, profile.clv, profile.scores_at = record.churn_risk, record.clv, record.scores_at
    return profile


def applied_events(record: MemberRecord) -> AppliedEvents:
    """The events the stored profile absorbed (ids of the recent ones, and the floor)."""
    return AppliedEvents.parse(record.recent_events, record.events_floor, legacy_second=int(record.updated_at or 0))


def load_profiles(member_ids: Iterable[str]) -> dict[str, MemberProfile]:
    ids = sorted(set(member_ids))
    profiles: dict[str, MemberProfile] = {}
    for start in range(0, len(ids), 100):
        for record in MemberRecord.batch_get(ids[start : start + 100]):
            profiles[record.member_id] = profile_of(record)
    return profiles


def load_profile(member_id: str) -> MemberProfile | None:
    try:
        return profile_of(MemberRecord.get(member_id, consistent_read=True))
    except DoesNotExist:
        return None


def apply_to_stored_profile(event: Any, admit_new_member: Callable[[str], bool] | None = None,
                            on_skip: Callable[[str], None] | None = None) -> bool:
    """Apply `event` to its member's stored profile. False if it had been applied already.

    `admit_new_member(member_id)` is asked before a profile is created; False raises
    ErasedMember (ingest passes the erasure check: a replayed event must not resurrect an
    erased member). Asked only when no profile exists, so it costs nothing on the usual path.
    `on_skip(reason)` hears why an event was not applied: "duplicate" (its id is among the
    member's recent events) or "below_floor" (it occurred before the oldest of them: an old
    duplicate, or a genuine event that arrived too late to be told apart from one)."""
    for _ in range(MAX_ATTEMPTS):
        try:
            record = MemberRecord.get(event.member_id, consistent_read=True)
            profile = MemberProfile.model_validate(record.profile)
        except DoesNotExist:
            if admit_new_member is not None and not admit_new_member(event.member_id):
                raise ErasedMember(f"event {event.event_id} is for an erased member; dropped") from None
            record = MemberRecord(event.member_id, recent_events="")
            profile = new_profile(event.member_id)
        applied = applied_events(record)
        occurred = int(event.occurred_at.timestamp())
        if not applied.admits(event.event_id, occurred):
            # a duplicate, or older than the floor (see functions/domain/applied_events.py)
            if on_skip is not None:
                on_skip("below_floor" if occurred < applied.floor else "duplicate")
            return False
        apply_event(profile, event)
        applied = applied.with_event(event.event_id, occurred)
        record.profile = profile.model_dump(mode="json")
        record.recent_events, record.events_floor = applied.stored(), applied.floor
        record.updated_at = int(time.time())
        try:
            record.save()  # conditional on the version read (VersionAttribute)
            return True
        except PutError as error:
            if getattr(error, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise
    raise ProfileConflict(f"profile {event.member_id} changed {MAX_ATTEMPTS} times while applying {event.event_id}")


def import_history(events: Iterable[Any]) -> int:
    """Backfill: build each member's profile by replaying their past events with the same
    `apply_event` as ingest, and write the profiles in bulk (for onboarding a program with
    years of history, where pushing every old event through the bus would be slow and
    pointless). Returns the number of profiles written. Existing profiles are replaced."""
    by_member: dict[str, list[Any]] = {}
    for event in events:
        by_member.setdefault(event.member_id, []).append(event)
    with MemberRecord.batch_write() as batch:
        for member_id, history in by_member.items():
            ordered = sorted(history, key=lambda e: (e.occurred_at, e.event_id))
            profile = new_profile(member_id)
            for event in ordered:
                apply_event(profile, event)
            applied = applied_history([(e.event_id, int(e.occurred_at.timestamp())) for e in ordered])
            batch.save(MemberRecord(member_id, profile=profile.model_dump(mode="json"),
                                    recent_events=applied.stored(), events_floor=applied.floor,
                                    updated_at=int(time.time())))
    return len(by_member)
