"""The member item's exactly-once check (functions.domain.applied_events): a duplicate or a
replay is never applied twice, late events inside the window are, and the item stays small."""

from __future__ import annotations

import random

import pytest

from functions.domain.applied_events import RECENT_EVENTS, AppliedEvents, applied_history

T0 = 1_772_000_000


def _deliver(stream: list[tuple[str, int]], applied: AppliedEvents) -> tuple[AppliedEvents, list[str]]:
    """Ingest's loop: apply each delivered event the check admits; return what was applied."""
    done = []
    for event_id, second in stream:
        if applied.admits(event_id, second):
            applied = applied.with_event(event_id, second)
            done.append(event_id)
    return applied, done


@pytest.mark.parametrize("seed", range(30))
def test_redeliveries_shuffles_and_replays_never_apply_an_event_twice(seed: int) -> None:
    rng = random.Random(seed)
    # Given 150 events of one member, a minute apart, some sharing a second
    events = [(f"e{i}", T0 + 60 * i - (60 if rng.random() < 0.1 else 0)) for i in range(150)]
    # delivered slightly out of order (each up to 5 places late), with 30% redelivered soon after
    stream = sorted(events, key=lambda e: events.index(e) + rng.uniform(0, 5))
    stream = [x for e in stream for x in ([e, e] if rng.random() < 0.3 else [e])]
    # and then the whole archive replayed, shuffled
    replay = events[:]
    rng.shuffle(replay)
    applied, done = _deliver(stream + replay, AppliedEvents(0, ()))
    # Then no event was applied twice
    assert len(done) == len(set(done))
    # and nothing of the replay was applied again
    assert len(done) == len(_deliver(stream, AppliedEvents(0, ()))[1])
    # and the item keeps about RECENT_EVENTS ids (ties on the floor second may add a few)
    assert len(applied.entries) <= RECENT_EVENTS + 3
    # and an event at most 5 places out of order, with RECENT_EVENTS = 24, is never lost
    assert set(done) == {e for e, _ in events}


def test_an_out_of_order_event_inside_the_window_is_applied_and_a_later_one_is_not() -> None:
    # Given a member whose last 30 events were applied in order
    applied = applied_history([(f"e{i}", T0 + i) for i in range(30)])
    # Then a late event older than the newest few, but not than the floor, is applied
    assert applied.floor == T0 + 30 - RECENT_EVENTS
    assert applied.admits("late-but-in-window", T0 + 20)
    # and one older than the member's last RECENT_EVENTS events is dropped as too late
    assert not applied.admits("too-late", applied.floor - 1)
    # and every event at or after the floor is remembered by id
    assert not any(applied.admits(f"e{i}", T0 + i) for i in range(30))


def test_the_stored_form_round_trips_and_reads_the_old_id_list() -> None:
    applied = applied_history([("a:1", T0), ("b@x-2", T0 + 5)])
    assert applied.stored() == f"a:1/{T0} b@x-2/{T0 + 5}"
    assert AppliedEvents.parse(applied.stored(), applied.floor) == applied
    # Given an item written before the change: bare ids, no floor
    legacy = AppliedEvents.parse("old-1 old-2", None, legacy_second=T0 + 99)
    # Then its ids still count as applied, and are kept as recent as the item's last write
    assert legacy.ids == ["old-1", "old-2"] and legacy.floor == 0
    assert not legacy.admits("old-1", T0) and legacy.admits("new", T0)
    assert AppliedEvents.parse("", None) == AppliedEvents(0, ())


def test_a_floor_never_drops_an_applied_event_still_in_range() -> None:
    # Given many events in the same second (a bulk import): the cap cannot split a second
    applied = applied_history([(f"same-{i}", T0) for i in range(RECENT_EVENTS + 6)] + [("next", T0 + 1)])
    # Then all of them stay remembered rather than raising the floor past them
    assert applied.floor == T0 and len(applied.entries) == RECENT_EVENTS + 7
    assert not applied.admits("same-0", T0)
