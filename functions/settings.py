"""Settings of every function, read once from the environment into one pydantic model.

Handlers never hard-code a name or an endpoint: in AWS the CDK stack sets these
variables; locally the stand-in sets them to the moto server's.
"""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "FIDELIO_"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str = "eu-west-1"
    # None in AWS (the SDK's default endpoints); http://127.0.0.1:PORT locally.
    endpoint_url: str | None = None

    members_table: str = "fidelio-members"
    decisions_table: str = "fidelio-decisions"
    ledger_table: str = "fidelio-ledger"
    offers_table: str = "fidelio-offers"
    idempotency_table: str = "fidelio-idempotency"

    bus_name: str = "fidelio"
    decide_queue_url: str = ""
    dispatch_queue_url: str = ""
    dispatch_queue_arn: str = ""
    # The dead-letter queue of the queue feeding this function: a permanently invalid
    # record is moved there at once, with its reason, instead of being retried.
    dlq_url: str = ""
    schedule_group: str = "fidelio-sends"
    scheduler_role_arn: str = ""

    ses_configuration_set: str = "fidelio-messages"
    sender_email: str = "rewards@example.com"
    data_bucket: str = ""
    # Secrets Manager secret (name or ARN) holding the HMAC keys for unsubscribe/preference
    # links, "kid:secret,kid:secret" (first one signs); read at run time and cached briefly
    # (functions.dal.signing_keys). Empty: link_signing_keys below (local and dev only).
    link_signing_secret: str = ""
    # HMAC keys for unsubscribe/preference links: "kid:secret,kid:secret", first one signs.
    link_signing_keys: str = "local:insecure-local-key-change-me"
    unsubscribe_base_url: str = "https://example.com/unsubscribe"
    model_dir: str = Field(default="model_artifacts/offers")
    # Days a decision record is kept in DynamoDB before TTL removes it (S3 keeps the archive).
    decision_ttl_days: int = 90
    holdout_share: float = 0.05
    holdout_salt: str = "fidelio-holdout-v1"
    # How far ahead decide may plan a send to reach the member at their hour (1 = now only).
    send_window_hours: int = Field(default=24, ge=1, le=72)
    # Secrets Manager secret (name or ARN) holding the salt of member pseudonyms, for the
    # functions that check erasures (ingest, decide, privacy); never rotated: a new salt would
    # forget every erasure. Empty: pseudonym_salt below (local and dev only).
    pseudonym_salt_secret: str = ""
    # Model lifecycle: the SSM parameter naming champion/challenger (absent: model_dir serves),
    # the S3 registry prefix in data_bucket, and where fetched versions are cached.
    serving_config_parameter: str = "/fidelio/serving-config"
    serving_config_ttl_s: float = 60.0
    variant_salt: str = "fidelio-variant-v1"
    model_registry_prefix: str = "models/offers"
    model_cache_dir: str = "/tmp/fidelio-models"
    # Drift monitor: PSI above this on any feature starts the retraining pipeline.
    drift_threshold: float = 0.2
    drift_window_days: int = 7
    pipeline_name: str = ""  # the SageMaker pipeline; empty: record the request only (local)
    # Daily churn / CLV scoring: win-back trigger when risk crosses this upwards.
    churn_model_dir: str = Field(default="model_artifacts/churn")
    churn_risk_threshold: float = 0.7
    # HMAC key pseudonymizing member ids in training data (the export runs outside Lambda).
    pseudonym_salt: str = "local-pseudonym-salt-change-me"


_FIELD_ENV = {name: ENV_PREFIX + name.upper() for name in Settings.model_fields}


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for name, var in _FIELD_ENV.items():
        if var in env:
            values[name] = env[var]
    if "region" not in values and env.get("AWS_REGION"):
        values["region"] = env["AWS_REGION"]
    if "endpoint_url" not in values and env.get("AWS_ENDPOINT_URL"):
        values["endpoint_url"] = env["AWS_ENDPOINT_URL"]
    return Settings.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process (read once per Lambda container)."""
    return settings_from_env()


def env_var(field_name: str) -> str:
    """The environment variable that sets `field_name` (used by the CDK stack)."""
    return _FIELD_ENV[field_name]
