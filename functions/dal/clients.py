"""The one client factory: AWS clients built from settings (endpoint, region), once per
container, handed explicitly to the code that needs them.

Every client of a container comes from one botocore session, the pynamodb tables' DynamoDB
client included (`bind_tables(settings, clients.session)`): a session loads the endpoint and
partition data and each service model once, so a second session would pay for them again
(~90 ms of CPU per cold start on the benchmark machine). The clients are botocore's, which is
what `boto3.client()` returns; boto3 itself is imported only for S3, the one service where it
adds something used here (managed transfers: `download_file`). Importing boto3 costs ~20 ms
(its resource layer and s3transfer) that the functions without S3 do not pay.
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
_BOTO3_SERVICES = frozenset({"s3"})


@dataclass
class AwsClients:
    settings: Settings
    session: botocore.session.Session = field(default_factory=botocore.session.get_session)
    _cache: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._cache:
            create = self.session.create_client
            if service in _BOTO3_SERVICES:
                import boto3.session  # only here: see the module docstring

                create = boto3.session.Session(botocore_session=self.session).client
            self._cache[service] = create(
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
