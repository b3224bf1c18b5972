"""Values of the CDK app that are not resource names (those live in infra/spec.py)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
STACK_NAME = "FidelioStack"

# Where `python -m infra.bundle` writes the Lambda assets (relative to the repo root).
DEFAULT_LAMBDA_BUILD_DIR = "build/lambda"
CODE_DIR = "code"
CORE_LAYER_DIR = "layer-core"
NUMPY_LAYER_DIR = "layer-numpy"
ML_LAYER_DIR = "layer-ml"

# Context keys (cdk.json or `cdk synth -c key=value`).
CTX_LAMBDA_BUILD_DIR = "fidelio:lambdaBuildDir"
CTX_NAME_PREFIX = "fidelio:namePrefix"
CTX_SENDER_EMAIL = "fidelio:senderEmail"
CTX_UNSUBSCRIBE_BASE_URL = "fidelio:unsubscribeBaseUrl"
CTX_LOG_LEVEL = "fidelio:logLevel"
CTX_REGION = "fidelio:region"

DEFAULT_SENDER_EMAIL = "rewards@example.com"
DEFAULT_UNSUBSCRIBE_BASE_URL = "https://example.com/unsubscribe"
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_REGION = "eu-west-1"  # used when neither context nor the CLI names one

POWERTOOLS_METRICS_NAMESPACE = "Fidelio"
LOG_RETENTION_DAYS = 30
ARCHIVE_RETENTION_DAYS = 365
DLQ_RETENTION_DAYS = 14
DATA_TRANSITION_TO_IA_DAYS = 30
DATA_NONCURRENT_EXPIRY_DAYS = 90
PRIVACY_EXPORT_EXPIRY_DAYS = 30  # GDPR exports under privacy/exports/ (docs/privacy.md)
ACCESS_LOGS_EXPIRY_DAYS = 365
ALARM_PERIOD_MINUTES = 5

# Inside the Lambda bundle: /var/task is the working directory and holds model_artifacts/.
LAMBDA_TASK_ROOT = "/var/task"

# Settings fields that do not name an AWS resource: the stack leaves them at their defaults
# (region comes from the runtime's AWS_REGION; endpoint_url is only set locally).
NON_RESOURCE_SETTINGS = frozenset(
    {"region", "endpoint_url", "decision_ttl_days", "holdout_share", "holdout_salt", "send_window_hours",
     # model lifecycle tuning (docs/operations.md), not resource names
     "serving_config_ttl_s", "variant_salt", "model_registry_prefix", "model_cache_dir",
     "drift_threshold", "drift_window_days", "churn_risk_threshold",
     # read by the training export (CLI / pipeline), never by a function
     "pseudonym_salt",
     # local/dev fallback for the link signing keys; in AWS they come from the secret below
     "link_signing_keys"}
)
# Settings that name a secret: given only to the functions that use them.
SECRET_SETTINGS = frozenset({"link_signing_secret", "pseudonym_salt_secret"})
# The functions that check whether a member was erased (GDPR) hash member ids with the salt.
PSEUDONYM_SALT_FUNCTIONS = frozenset({"ingest", "decide", "privacy"})
# dispatch signs unsubscribe links; preferences verifies them and signs preference links.
LINK_SIGNING_FUNCTIONS = frozenset({"dispatch", "preferences"})
LINK_SIGNING_KEY_ID = "k1"
