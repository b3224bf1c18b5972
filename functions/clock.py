"""The one place handlers read the time from. Domain code never reads a clock: handlers
read it here once per invocation and pass `now` down. The local runner replaces it to play
simulated days."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _wall_clock() -> datetime:
    return datetime.now(UTC)


_clock: Callable[[], datetime] = _wall_clock


def now() -> datetime:
    return _clock()


def set_clock(clock: Callable[[], datetime] | None) -> None:
    """Use `clock` instead of the wall clock (None restores the wall clock)."""
    global _clock
    _clock = clock or _wall_clock
