"""Retrying a provider call (SES, SNS) that must not be made twice.

A send is retried only when the provider certainly did not accept it: it answered with a
throttling or server error, or the connection was never made. A read timeout or a dropped
connection after the request left is *ambiguous* (the message may be on its way) and is never
retried. Backoff is exponential with full jitter (sleep ~ U(0, min(cap, base * 2**attempt))),
bounded in attempts and by a deadline below the function's timeout; past either, the failure
is left to SQS redelivery. The sending clients have botocore's own retries turned off
(functions/dal/clients.py), since botocore would retry a read timeout.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

T = TypeVar("T")

TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequests", "TooManyRequestsException",
    "RequestLimitExceeded", "ServiceUnavailable", "ServiceUnavailableException", "InternalFailure",
    "InternalError", "InternalErrorException", "InternalServerError", "InternalServerErrorException",
    "KMSThrottlingException", "RequestTimeout", "RequestTimeoutException", "SlowDown",
})


class Outcome(StrEnum):
    TRANSIENT = "transient"   # not accepted; a retry may succeed
    PERMANENT = "permanent"   # refused; the same request will be refused again
    AMBIGUOUS = "ambiguous"   # may have been accepted; never retry


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def classify(error: BaseException) -> Outcome:
    """How a failed provider call failed (see the module docstring)."""
    if isinstance(error, ClientError):
        code = error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            return Outcome.TRANSIENT
        return Outcome.PERMANENT
    # EndpointConnectionError and ConnectTimeoutError: the request never reached the provider.
    if isinstance(error, EndpointConnectionError | ConnectTimeoutError):
        return Outcome.TRANSIENT
    if isinstance(error, ReadTimeoutError | ConnectionClosedError):
        return Outcome.AMBIGUOUS
    return Outcome.AMBIGUOUS


class RetriesExhausted(RuntimeError):
    """Every attempt failed transiently; SQS redelivery is the next retry."""

    def __init__(self, attempts: int, last: BaseException):
        super().__init__(f"gave up after {attempts} attempt(s): {last}")
        self.attempts = attempts
        self.last = last


@dataclass(frozen=True)
class Backoff:
    max_attempts: int = 4
    base_s: float = 0.1
    cap_s: float = 2.0
    max_total_s: float = 8.0  # dispatch times out at 30 s and handles up to 10 records

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)] (attempt counts from 0)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * (2 ** attempt)))


def call_with_backoff(call: Callable[[], T], policy: Backoff = Backoff(), *, deadline: float | None = None,
                      sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                      rng: random.Random | None = None) -> T:
    """`call()`, retried on transient failures. Raises the permanent or ambiguous error as is,
    or RetriesExhausted (from the last transient error) when attempts or time run out.
    `deadline` is a `clock()` value no retry may sleep past (the invocation's own limit)."""
    rng = rng or random.Random()
    started = clock()
    limit = started + policy.max_total_s if deadline is None else min(deadline, started + policy.max_total_s)
    attempt = 0
    while True:
        try:
            return call()
        except Exception as error:
            if classify(error) is not Outcome.TRANSIENT:
                raise
            attempt += 1
            pause = policy.delay(attempt - 1, rng)
            if attempt >= policy.max_attempts or clock() + pause > limit:
                raise RetriesExhausted(attempt, error) from error
            sleep(pause)
