"""The one client factory: boto3 clients built from settings (endpoint, region), once per
container, handed explicitly to the code that needs them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

from functions.settings import Settings

_RETRIES = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=20)
# Sending is not idempotent: botocore would retry a read timeout (the message may have gone),
# so the sending clients make one attempt and dispatch retries what certainly did not go out
# (functions/dal/retry.py).
_SENDING = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=10)
_SENDING_SERVICES = frozenset({"sesv2", "sns"})


@dataclass
class AwsClients:
    settings: Settings
    _cache: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = boto3.client(
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
