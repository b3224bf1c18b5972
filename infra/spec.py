"""The one description of Fidelio's AWS resources that both the CDK app and the local
stand-in read, so the stack deployed to AWS and the one played by moto cannot drift.

Plain Python on purpose: no CDK import, so the local stand-in and tests can use it without
synthesizing anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUS_NAME = "fidelio"
EVENT_SOURCE = "fidelio"  # source used by Fidelio's own events (feedback, sweeps)
SCHEDULE_GROUP = "fidelio-sends"
# SSM parameter naming the serving champion / challenger (functions/dal/serving_config.py).
SERVING_CONFIG_PARAMETER = "/fidelio/serving-config"
# The retraining pipeline (infra/pipeline.py): the model registry prefix in the data bucket,
# its weekly schedule (UTC), and the drift metric whose alarm also starts it. The drift
# monitor publishes the metric; the threshold matches Settings.drift_threshold.
MODEL_REGISTRY_PREFIX = "models/offers"
RETRAINING_SCHEDULE = "cron(0 3 ? * SUN *)"
DRIFT_METRIC: tuple[str, str] = ("Fidelio", "MaxFeaturePSI")  # (namespace, metric name)
DRIFT_THRESHOLD = 0.2
PROJECT_TAG = "fidelio"


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: str = "S"  # "S" | "N"


@dataclass(frozen=True)
class GlobalIndex:
    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    # What the index copies besides its keys: "ALL" (every attribute, written twice) or
    # "KEYS_ONLY" (the table's and the index's keys: readers fetch the items by key).
    projection: str = "ALL"


@dataclass(frozen=True)
class TableSpec:
    logical_name: str  # suffix of the physical name and the settings key
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    ttl_attribute: str | None = None
    global_indexes: tuple[GlobalIndex, ...] = ()


@dataclass(frozen=True)
class QueueSpec:
    logical_name: str
    visibility_timeout_s: int
    max_receive_count: int = 3
    batch_size: int = 10
    max_batching_window_s: int = 1
    # Detail-types routed here from the bus by one rule; empty = fed by other means
    # (a Lambda, the scheduler, SNS).
    detail_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class FunctionSpec:
    logical_name: str
    handler: str  # module.attribute inside the bundle
    queue: str | None  # logical name of the queue that triggers it
    memory_mb: int = 512
    timeout_s: int = 30
    reserved_concurrency: int | None = None
    needs_model: bool = False  # onnxruntime (and numpy): scores a model in-process
    # numpy without a model (batch math); functions without either get neither in their bundle
    needs_numpy: bool = False


TABLES: tuple[TableSpec, ...] = (
    TableSpec("members", KeyAttribute("member_id")),
    TableSpec(
        "decisions",
        KeyAttribute("decision_id"),
        ttl_attribute="expires_at",
        global_indexes=(
            # Read only by privacy export/erasure, which fetch the items by key: KEYS_ONLY keeps
            # the index at ~100 B per decision and out of every status/outcome update (an ALL
            # projection doubled the WRU of each decision write; docs/cost.md).
            GlobalIndex("by_member", KeyAttribute("member_id"), KeyAttribute("decided_at", "N"),
                        projection="KEYS_ONLY"),
        ),
    ),
    # Send claims, consent history and other small per-member records.
    TableSpec(
        "ledger",
        KeyAttribute("pk"),
        KeyAttribute("sk"),
        ttl_attribute="expires_at",
    ),
    TableSpec("offers", KeyAttribute("offer_id")),
    # aws-lambda-powertools idempotency layout.
    TableSpec("idempotency", KeyAttribute("id"), ttl_attribute="expiration"),
)

PROFILE_EVENT_TYPES: tuple[str, ...] = (
    "member.enrolled",
    "member.updated",
    "consent.changed",
    "purchase.completed",
    "points.earned",
    "points.redeemed",
    "points.expiring",
    "tier.changed",
    "cart.abandoned",
    "app.opened",
    "offer.redeemed",
    "notification.sent",
    "notification.withheld",
    "notification.delivered",
    "notification.opened",
    "notification.clicked",
    "notification.bounced",
    "notification.complained",
    "notification.unsubscribed",
)

SWEEP_EVENT_TYPES: tuple[str, ...] = ("sweep.requested",)
PRIVACY_EVENT_TYPES: tuple[str, ...] = ("privacy.requested",)

# Scheduled sweeps over all members: (sweep name, EventBridge schedule expression, UTC).
SWEEP_SCHEDULES: tuple[tuple[str, str], ...] = (
    ("daily", "cron(0 5 * * ? *)"),
    ("win_back", "cron(0 6 * * ? *)"),
    ("points_expiry", "cron(0 7 * * ? *)"),
    ("weekly_digest", "cron(0 8 ? * MON *)"),
)

QUEUES: tuple[QueueSpec, ...] = (
    # Every member event updates the profile first; ingest then hands triggering
    # events to decide, so a decision always sees the profile with its trigger applied.
    QueueSpec("ingest", visibility_timeout_s=60, detail_types=PROFILE_EVENT_TYPES),
    # Batches of up to 100 within 2 s: decide loads the profiles with one BatchGetItem and
    # scores every candidate of the batch in one ONNX call (chunks of 100 requests), and
    # archives the batch in one S3 PUT; records still fail one by one (partial responses).
    QueueSpec("decide", visibility_timeout_s=120, batch_size=100, max_batching_window_s=2,
              detail_types=SWEEP_EVENT_TYPES),
    # Fed by decide (send now) and by EventBridge Scheduler (send later).
    QueueSpec("dispatch", visibility_timeout_s=60),
    # Fed by the SES configuration set's SNS topic.
    QueueSpec("feedback", visibility_timeout_s=60),
    # GDPR export / erasure requests: one at a time (an erasure rewrites archive objects).
    QueueSpec("privacy", visibility_timeout_s=900, batch_size=1, detail_types=PRIVACY_EVENT_TYPES),
)

FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("ingest", "functions.handlers.ingest.handler", "ingest"),
    FunctionSpec(
        "decide", "functions.handlers.decide.handler", "decide", memory_mb=1769, timeout_s=60,
        needs_model=True,
    ),
    # Reserved concurrency protects SES/SNS sending quotas.
    FunctionSpec(
        "dispatch", "functions.handlers.dispatch.handler", "dispatch", reserved_concurrency=10
    ),
    FunctionSpec("feedback", "functions.handlers.feedback.handler", "feedback"),
    # No queue: called synchronously by the app backend through a Function URL (IAM auth).
    FunctionSpec(
        "offers_api", "functions.handlers.offers_api.handler", None, memory_mb=1024, timeout_s=10,
        needs_model=True,
    ),
    # No queue: members click unsubscribe / preference links (Function URL, auth NONE; the
    # signed link token is the authentication).
    FunctionSpec("preferences", "functions.handlers.preferences.handler", None, memory_mb=512, timeout_s=10),
    # Exports and erasures read and rewrite the data bucket's archives: long timeout.
    FunctionSpec("privacy", "functions.handlers.privacy.handler", "privacy", memory_mb=1024, timeout_s=900),
    # Scheduled (FUNCTION_SCHEDULES): PSI of serving features vs the champion's baseline.
    # Pure Python (functions/domain/drift.py), so no numpy layer: 15 MB instead of 68 MB.
    FunctionSpec("drift_monitor", "functions.handlers.drift_monitor.handler", None, memory_mb=1024,
                 timeout_s=300),
    # Scheduled: churn risk and CLV of every member (onnxruntime: the churn model).
    FunctionSpec("score_members", "functions.handlers.score_members.handler", None, memory_mb=1769,
                 timeout_s=900, needs_model=True),
)

# Scheduled functions: (function, EventBridge schedule expression, UTC). Members are scored
# before the 05:00 daily sweep and the 06:00 win-back sweep, so both read fresh scores.
FUNCTION_SCHEDULES: tuple[tuple[str, str], ...] = (
    ("drift_monitor", "cron(0 4 * * ? *)"),
    ("score_members", "cron(30 4 * * ? *)"),
)


@dataclass(frozen=True)
class Names:
    """Physical names for one deployment (a prefix keeps several stages apart)."""

    prefix: str = "fidelio"
    extra: dict[str, str] = field(default_factory=dict)

    def table(self, logical: str) -> str:
        return f"{self.prefix}-{logical}"

    def queue(self, logical: str) -> str:
        return f"{self.prefix}-{logical}"

    def dlq(self, logical: str) -> str:
        return f"{self.prefix}-{logical}-dlq"

    def rule(self, logical: str) -> str:
        return f"{self.prefix}-to-{logical}"

    @property
    def bus(self) -> str:
        return BUS_NAME if self.prefix == "fidelio" else f"{self.prefix}-{BUS_NAME}"

    @property
    def ses_configuration_set(self) -> str:
        return f"{self.prefix}-messages"

    @property
    def ses_events_topic(self) -> str:
        return f"{self.prefix}-ses-events"

    @property
    def schedule_group(self) -> str:
        return SCHEDULE_GROUP if self.prefix == "fidelio" else f"{self.prefix}-sends"

    @property
    def serving_config_parameter(self) -> str:
        return SERVING_CONFIG_PARAMETER if self.prefix == "fidelio" else f"/{self.prefix}/serving-config"

    @property
    def retraining_pipeline(self) -> str:
        return f"{self.prefix}-retraining"

    @property
    def model_package_group(self) -> str:
        return f"{self.prefix}-offers"


def queue_spec(logical: str) -> QueueSpec:
    for spec in QUEUES:
        if spec.logical_name == logical:
            return spec
    raise KeyError(f"no queue named {logical!r}; known: {[q.logical_name for q in QUEUES]}")


def rule_pattern(queue: QueueSpec, bus_sources: tuple[str, ...] | None = None) -> dict:
    """The EventBridge pattern of the rule feeding `queue` (same dict in CDK and locally)."""
    pattern: dict = {"detail-type": list(queue.detail_types)}
    if bus_sources:
        pattern["source"] = list(bus_sources)
    return pattern
