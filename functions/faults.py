"""Named crash points for fault-injection tests; inert unless a test arms one.

Each point marks a step of a handler where a real process could die (a timeout, an
out-of-memory kill, a host failure). A test arms a point in one of two ways:

- in-process, `arm("dispatch.after_claim")`: the point raises `InjectedCrash`, a
  BaseException, so neither a handler's `except Exception` nor Powertools' batch processor
  can swallow it: the invocation ends without acknowledging anything, as a killed one would;
- in a subprocess, `FIDELIO_CRASH_POINTS=dispatch.after_send` (comma-separated) with
  `FIDELIO_CRASH_MODE=exit`: the point calls `os._exit(137)` — the process is really gone,
  with no `finally` and no flush, and only what reached AWS survives.

Nothing sets either in a deployed function, so a crash point costs one dict lookup.
"""

from __future__ import annotations

import os

POINTS = frozenset({
    "ingest.after_profile_write",    # profile updated, trigger not yet forwarded to decide
    "decide.after_record_decision",  # decision stored, dispatch not yet enqueued or scheduled
    "dispatch.after_claim",          # send claimed, provider not yet called
    "dispatch.after_send",           # provider accepted the message, status not yet recorded
    "dispatch.before_ack",           # every record handled, batch response not yet returned
})
ENV_POINTS = "FIDELIO_CRASH_POINTS"
ENV_MODE = "FIDELIO_CRASH_MODE"
EXIT_CODE = 137  # what a SIGKILLed process reports

_armed: dict[str, int] = {}


class InjectedCrash(BaseException):
    """A test-injected crash; deliberately not an Exception so nothing handles it."""

    def __init__(self, point: str):
        super().__init__(f"injected crash at {point}")
        self.point = point


def _check(point: str) -> None:
    if point not in POINTS:
        raise ValueError(f"unknown crash point {point!r}; known: {', '.join(sorted(POINTS))}")


def arm(point: str, times: int = 1) -> None:
    """Make the next `times` passes through `point` crash (in this process)."""
    _check(point)
    _armed[point] = times


def disarm() -> None:
    _armed.clear()


def crash_point(point: str) -> None:
    """Crash here if a test armed this point; otherwise return at once."""
    if _armed.get(point, 0) > 0:
        _armed[point] -= 1
        raise InjectedCrash(point)
    from_env = os.environ.get(ENV_POINTS)
    if from_env and point in from_env.split(","):
        _check(point)
        if os.environ.get(ENV_MODE) == "exit":
            os._exit(EXIT_CODE)
        raise InjectedCrash(point)
