"""Powertools logger, tracer and metrics for the handlers (created once per container).

Only handlers import this module; lower layers get what they need passed in.
PII (email, phone, names, push endpoints) never reaches a log line: `mask_pii` is applied to
anything that may carry member-supplied data.
"""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "fidelio"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="Fidelio", service=SERVICE)

PII_KEYS = {"email", "phone", "first_name", "push_endpoint_arn", "destination", "destinations", "source_ip"}
_EMAIL = re.compile(r"[^@\s\"']+@[^@\s\"']+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")


def mask_pii(value: Any) -> Any:
    """A copy of `value` with PII fields replaced and email/phone patterns redacted."""
    if isinstance(value, dict):
        return {k: ("*****" if k in PII_KEYS and v else mask_pii(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_pii(v) for v in value]
    if isinstance(value, str):
        return _PHONE.sub("+*****", _EMAIL.sub("*****@*****", value))
    return value


def count(name: str, value: float = 1) -> None:
    """Add to a count metric (skipped when metrics are disabled: Powertools would otherwise
    keep them and print them when 100 accumulate)."""
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if not is_metrics_disabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def count_by(name: str, dimension: str, dimension_value: str, value: float = 1) -> None:
    """A count metric with one dimension of its own (e.g. Decisions by Variant), flushed at once
    so its dimension does not leak onto the handler's other metrics."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if not is_metrics_disabled():
        with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=metrics.namespace) as metric:
            metric.add_dimension(name=dimension, value=dimension_value)
