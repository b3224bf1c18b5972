"""Provider calls are retried with capped exponential backoff and full jitter while they
certainly did not go out, never when they may have (read timeouts), and not at all when the
provider refuses the message."""

from __future__ import annotations

import random

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from functions.dal.retry import Backoff, Outcome, RetriesExhausted, call_with_backoff, classify

SEND = {"FromEmailAddress": "rewards@fidelio.example", "Destination": {"ToAddresses": ["ann@example.com"]},
        "Content": {"Raw": {"Data": b"Subject: hi\r\n\r\nhello"}}}


@pytest.fixture
def ses():
    client = boto3.client("sesv2", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber


class Sleeps:
    """A clock that advances only when slept on, recording each pause."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _send(client):
    return lambda: client.send_email(**SEND)


@pytest.mark.parametrize("code,status", [("Throttling", 400), ("TooManyRequestsException", 429),
                                         ("ServiceUnavailable", 503), ("InternalFailure", 500),
                                         ("SomethingNew", 502)])
def test_a_throttled_or_failing_send_is_retried_until_it_goes_out(ses, code: str, status: int) -> None:
    # Given SES answers twice with a transient error, then accepts
    client, stubber = ses
    stubber.add_client_error("send_email", service_error_code=code, http_status_code=status)
    stubber.add_client_error("send_email", service_error_code=code, http_status_code=status)
    stubber.add_response("send_email", {"MessageId": "m-1"})
    sleeps = Sleeps()
    # When the send is made with backoff
    response = call_with_backoff(_send(client), Backoff(base_s=0.1, cap_s=2.0), sleep=sleeps.sleep,
                                 clock=sleeps.clock, rng=random.Random(1))
    # Then it went out on the third attempt, after two pauses within the full-jitter bounds
    assert response["MessageId"] == "m-1"
    stubber.assert_no_pending_responses()
    assert len(sleeps.pauses) == 2
    assert 0 <= sleeps.pauses[0] <= 0.1 and 0 <= sleeps.pauses[1] <= 0.2


@pytest.mark.parametrize("code", ["MessageRejected", "MailFromDomainNotVerifiedException", "BadRequestException",
                                  "AccessDeniedException"])
def test_a_refused_send_is_not_retried(ses, code: str) -> None:
    client, stubber = ses
    stubber.add_client_error("send_email", service_error_code=code, http_status_code=400)
    sleeps = Sleeps()
    with pytest.raises(Exception) as raised:
        call_with_backoff(_send(client), sleep=sleeps.sleep, clock=sleeps.clock)
    assert classify(raised.value) is Outcome.PERMANENT
    assert sleeps.pauses == []


def test_attempts_are_bounded_and_the_last_error_is_kept(ses) -> None:
    client, stubber = ses
    for _ in range(4):
        stubber.add_client_error("send_email", service_error_code="Throttling", http_status_code=400,
                                 service_message="Maximum sending rate exceeded.")
    sleeps = Sleeps()
    with pytest.raises(RetriesExhausted, match=r"after 4 attempt.*Maximum sending rate exceeded"):
        call_with_backoff(_send(client), Backoff(max_attempts=4), sleep=sleeps.sleep, clock=sleeps.clock)
    assert len(sleeps.pauses) == 3
    stubber.assert_no_pending_responses()


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = Backoff(base_s=0.1, cap_s=1.0)
    rng = random.Random(7)
    ceilings = [max(policy.delay(attempt, rng) for _ in range(2000)) for attempt in range(6)]
    # full jitter: the largest of many draws approaches min(cap, base * 2**attempt)
    for attempt, ceiling in enumerate(ceilings):
        bound = min(1.0, 0.1 * 2**attempt)
        assert 0.9 * bound <= ceiling <= bound
    draws = [policy.delay(3, rng) for _ in range(2000)]
    assert min(draws) < 0.05 * 0.8  # jitter reaches down to zero, not just around the bound


def test_retries_stop_before_the_deadline(ses) -> None:
    # Given a deadline 0.25 s away and a provider that keeps throttling
    client, stubber = ses
    for _ in range(10):
        stubber.add_client_error("send_email", service_error_code="Throttling", http_status_code=400)
    sleeps = Sleeps()
    with pytest.raises(RetriesExhausted):
        call_with_backoff(_send(client), Backoff(max_attempts=10, base_s=0.2, cap_s=5.0), deadline=0.25,
                          sleep=sleeps.sleep, clock=sleeps.clock, rng=random.Random(3))
    # Then no pause would have crossed it
    assert sum(sleeps.pauses) <= 0.25


def test_a_connection_never_made_is_retried_but_a_read_timeout_is_not() -> None:
    sleeps = Sleeps()
    attempts: list[int] = []

    def never_connects() -> dict:
        attempts.append(1)
        if len(attempts) < 3:
            raise EndpointConnectionError(endpoint_url="https://email.eu-west-1.amazonaws.com")
        return {"MessageId": "m-2"}

    assert call_with_backoff(never_connects, sleep=sleeps.sleep, clock=sleeps.clock)["MessageId"] == "m-2"
    assert classify(ConnectTimeoutError(endpoint_url="x")) is Outcome.TRANSIENT

    timeouts: list[int] = []

    def times_out() -> dict:
        timeouts.append(1)
        raise ReadTimeoutError(endpoint_url="https://email.eu-west-1.amazonaws.com")

    # The request left: SES may have accepted it, so it is never sent again.
    with pytest.raises(ReadTimeoutError):
        call_with_backoff(times_out, sleep=sleeps.sleep, clock=sleeps.clock)
    assert timeouts == [1]


def test_the_sending_clients_do_not_retry_by_themselves() -> None:
    from functions.dal.clients import AwsClients
    from functions.settings import settings_from_env

    clients = AwsClients(settings_from_env({"FIDELIO_REGION": "eu-west-1"}))
    assert clients.ses.meta.config.retries["total_max_attempts"] == 1
    assert clients.sns.meta.config.retries["total_max_attempts"] == 1
    assert clients.sqs.meta.config.retries["total_max_attempts"] > 1  # idempotent calls keep botocore retries
