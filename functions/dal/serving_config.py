"""Which offer model serves whom: the serving config in SSM Parameter Store, read with a TTL
cache, and model versions fetched from the S3 registry once per container.

The parameter holds JSON: {"champion": version, "challenger": version | null,
"challenger_share": 0..1, "previous_champion": version | null, "changed_at": epoch s}.
A member is served by the challenger when the salted hash of their id falls below the share:
sticky (same member, same variant while the share holds) and monotone (raising the share
only moves champion members to the challenger, never back).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Variant = Literal["champion", "challenger"]
MODEL_FILES = ("model.onnx", "metadata.json")


class InvalidServingConfig(ValueError):
    """The parameter's JSON does not describe a serving config."""


class ModelNotInRegistry(LookupError):
    """A version named by the serving config has no model in the registry."""


class ServingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    champion: str = Field(min_length=1)
    challenger: str | None = None
    challenger_share: float = Field(default=0.0, ge=0.0, le=1.0)
    previous_champion: str | None = None
    changed_at: float = 0.0

    @model_validator(mode="after")
    def _challenger_differs(self) -> ServingConfig:
        if self.challenger is not None and self.challenger == self.champion:
            raise ValueError(f"challenger {self.challenger} is already the champion")
        if self.challenger is None and self.challenger_share > 0:
            raise ValueError("challenger_share > 0 needs a challenger")
        return self

    def versions(self) -> dict[str, str]:
        served = {"champion": self.champion}
        if self.challenger is not None and self.challenger_share > 0:
            served["challenger"] = self.challenger
        return served


def parse_config(text: str) -> ServingConfig:
    try:
        return ServingConfig.model_validate(json.loads(text))
    except (ValueError, ValidationError) as error:
        first = str(error).splitlines()[0:3]
        raise InvalidServingConfig(f"serving config is not valid: {' '.join(first)}") from error


def assignment_point(member_id: str, salt: str) -> float:
    """Where the member falls in [0, 1): stable for a member and a salt."""
    digest = hashlib.sha256(f"{salt}|{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def variant_for(member_id: str, config: ServingConfig | None, salt: str) -> Variant:
    if config is None or config.challenger is None or config.challenger_share <= 0:
        return "champion"
    return "challenger" if assignment_point(member_id, salt) < config.challenger_share else "champion"


def read_config(ssm: Any, name: str) -> ServingConfig | None:
    """The config, or None when the parameter does not exist (the bundled model serves)."""
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return parse_config(value)


def write_config(ssm: Any, name: str, config: ServingConfig) -> None:
    ssm.put_parameter(Name=name, Value=config.model_dump_json(), Type="String", Overwrite=True,
                      Description="Fidelio serving config: champion, challenger and its traffic share")


class ServingConfigCache:
    """Reads the parameter at most once per `ttl_s` (60 s: a rollback reaches every warm
    container within a minute without a redeploy). `clock` is injectable for tests."""

    def __init__(self, ssm: Any, name: str, ttl_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.ssm, self.name, self.ttl_s, self.clock = ssm, name, ttl_s, clock
        self._value: ServingConfig | None = None
        self._read_at: float | None = None

    def get(self) -> ServingConfig | None:
        now = self.clock()
        if self._read_at is None or now - self._read_at >= self.ttl_s:
            self._value = read_config(self.ssm, self.name)
            self._read_at = now
        return self._value

    def hold(self) -> ServingConfig | None:
        """After a failed read: keep the last config for another TTL (fail static)."""
        self._read_at = self.clock()
        return self._value


def registry_key(prefix: str, version: str, file: str) -> str:
    return f"{prefix.rstrip('/')}/{version}/{file}"


class ModelStore:
    """Model versions from the S3 registry (`<prefix>/<version>/model.onnx + metadata.json`),
    copied once to a local directory (/tmp in Lambda) and reused while the container lives."""

    def __init__(self, s3: Any, bucket: str, prefix: str, cache_dir: str | Path):
        self.s3, self.bucket, self.prefix, self.cache_dir = s3, bucket, prefix, Path(cache_dir)

    def directory(self, version: str) -> Path:
        target = self.cache_dir / version
        if all((target / f).exists() for f in MODEL_FILES):
            return target
        if not self.bucket:
            raise ModelNotInRegistry(f"model {version}: no data bucket configured for the registry")
        partial = self.cache_dir / f".{version}.partial"
        partial.mkdir(parents=True, exist_ok=True)
        for file in MODEL_FILES:
            key = registry_key(self.prefix, version, file)
            try:
                self.s3.download_file(self.bucket, key, str(partial / file))
            except Exception as error:  # botocore ClientError: 404 / 403
                raise ModelNotInRegistry(f"model {version}: s3://{self.bucket}/{key} unreadable ({error})") from error
        shutil.rmtree(target, ignore_errors=True)
        partial.replace(target)  # atomic: a concurrent reader never sees half a model
        return target
