"""The one client factory: AWS clients built from settings (endpoint, region), once per
container, handed explicitly to the code that needs them.

Every client of a container comes from one botocore session, the pynamodb tables' DynamoDB
client included (`bind_tables(settings, clients.session)`): a session loads the endpoint and
partition data and each service model once, so a second session would pay for them again
(~90 ms of CPU per cold start on the benchmark machine). The clients are botocore's, which is
what `boto3.client()` returns. For S3, boto3 adds its managed transfers (`download_file`,
`upload_file`, ...) to the client class; the S3 client here gets the same methods, but boto3
is imported when one of them is first called (a model fetched from the registry, the
lifecycle CLI), not when the client is made: importing boto3 (its resource layer, s3transfer,
multiprocessing) costs ~20 ms of a cold start, and decide and privacy use S3 on every
invocation for plain object calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.config import Config

from functions.settings import Settings

_RETRIES = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=20)
# Sending is not idempotent: botocore would retry a read timeout (the message may have gone),
# so the sending clients make one attempt and dispatch retries what certainly did not go out
# (functions/dal/retry.py).
_SENDING = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=10)
_SENDING_SERVICES = frozenset({"sesv2", "sns"})
# boto3's managed-transfer methods of the S3 client (boto3.s3.inject.inject_s3_transfer_methods).
_S3_TRANSFER_METHODS = ("upload_file", "download_file", "copy", "upload_fileobj", "download_fileobj")


def _boto3_transfer_method(name: str) -> Any:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        from boto3.s3 import inject  # on first use: see the module docstring

        return getattr(inject, name)(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


def _add_s3_transfer_methods(class_attributes: dict[str, Any], **_: Any) -> None:
    """What boto3 does to the S3 client class ('creating-client-class.s3'), boto3 imported later."""
    for name in _S3_TRANSFER_METHODS:
        class_attributes.setdefault(name, _boto3_transfer_method(name))


@dataclass
class AwsClients:
    settings: Settings
    session: botocore.session.Session = field(default_factory=botocore.session.get_session)
    _cache: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._cache:
            if service == "s3":
                # last: a boto3 session on this botocore session, if any, adds its own first
                self.session.get_component("event_emitter").register_last(
                    "creating-client-class.s3", _add_s3_transfer_methods, unique_id="fidelio-s3-transfer-methods")
            self._cache[service] = self.session.create_client(
                service,
                region_name=self.settings.region,
                endpoint_url=self.settings.endpoint_url,
                config=_SENDING if service in _SENDING_SERVICES else _RETRIES,
            )
        return self._cache[service]

    @property
    def sqs(self) -> Any:
        return self.client("sqs")

    @property
    def events(self) -> Any:
        return self.client("events")

    @property
    def ses(self) -> Any:
        return self.client("sesv2")

    @property
    def sns(self) -> Any:
        return self.client("sns")

    @property
    def scheduler(self) -> Any:
        return self.client("scheduler")

    @property
    def s3(self) -> Any:
        return self.client("s3")
