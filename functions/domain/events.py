"""The event contract: every event Fidelio accepts or emits, as versioned pydantic models.

An event on the bus is the standard EventBridge envelope whose `detail-type` is the
event type (e.g. "purchase.completed") and whose `detail` is one of the models below.
JSON Schemas under schemas/ are generated from these models (`fidelio schemas write`).
"""

from __future__ import annotations

import json
import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

SUPPORTED_SCHEMA_VERSIONS: tuple[int, ...] = (1,)
MAX_DETAIL_BYTES = 64 * 1024  # far below EventBridge's 256 KB entry limit; members aren't novels

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
Money = Annotated[float, Field(ge=0, le=1_000_000)]
Points = Annotated[int, Field(gt=0, le=100_000_000)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Channel(StrEnum):
    EMAIL = "email"
    PUSH = "push"
    SMS = "sms"


class Topic(StrEnum):
    OFFERS = "offers"
    POINTS = "points"
    TIER = "tier"
    REMINDERS = "reminders"
    TRANSACTIONAL = "transactional"


class InvalidEvent(ValueError):
    """An event that cannot be accepted; `reason` says what is wrong, for the DLQ and logs."""

    def __init__(self, reason: str, event_type: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_type = event_type


class UnknownEventType(InvalidEvent):
    pass


class UnknownSchemaVersion(InvalidEvent):
    pass


def _check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Europe/Paris')") from error
    return value


class MemberEvent(BaseModel):
    """Fields every member event carries."""

    # defer_build (here and below): a model's validator is built on its first use, not at
    # import. A function touches a few of these two dozen models (feedback: notification.*),
    # and building them all cost every cold start ~10 ms.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, defer_build=True)
    event_type: ClassVar[str]

    event_id: Identifier
    member_id: Identifier
    occurred_at: AwareDatetime
    schema_version: Literal[1] = 1


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    product_id: Identifier
    category: ShortText
    quantity: Annotated[float, Field(gt=0, le=10_000)] = 1
    unit_price: Money = 0.0


class MemberEnrolled(MemberEvent):
    event_type: ClassVar[str] = "member.enrolled"

    time_zone: str = "UTC"
    locale: Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] = "en"
    tier: ShortText = "bronze"
    first_name: Annotated[str, Field(max_length=100)] | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    phone: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = None
    push_endpoint_arn: Annotated[str, Field(max_length=1024)] | None = None
    birth_year: Annotated[int, Field(ge=1900, le=2100)] | None = None
    points_balance: Annotated[int, Field(ge=0)] = 0

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        return _check_time_zone(value)


class MemberUpdated(MemberEvent):
    """Only the fields present change; an explicit null clears a contact point."""

    event_type: ClassVar[str] = "member.updated"

    time_zone: str | None = None
    locale: Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")] | None = None
    tier: ShortText | None = None
    first_name: Annotated[str, Field(max_length=100)] | None = None
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    phone: Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = None
    push_endpoint_arn: Annotated[str, Field(max_length=1024)] | None = None

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        return None if value is None else _check_time_zone(value)


class ConsentChanged(MemberEvent):
    event_type: ClassVar[str] = "consent.changed"

    channel: Channel
    topic: Topic
    granted: bool
    source: ShortText  # where the member said it: "signup_form", "preference_center", ...


class PrivacyRequested(MemberEvent):
    """A data-subject request (GDPR Art. 15 access / Art. 17 erasure) made by the member,
    e.g. from the preference center, or by support on their behalf."""

    event_type: ClassVar[str] = "privacy.requested"

    kind: Literal["export", "erase"]
    source: ShortText  # "preference_center", "support", "api", ...


class PurchaseCompleted(MemberEvent):
    event_type: ClassVar[str] = "purchase.completed"

    order_id: Identifier
    amount: Money
    currency: Currency = "EUR"
    line_items: Annotated[list[LineItem], Field(max_length=500)] = []
    offer_id: Identifier | None = None  # set when the purchase used an offer/coupon


class PointsEarned(MemberEvent):
    event_type: ClassVar[str] = "points.earned"

    points: Points
    reason: ShortText = "purchase"


class PointsRedeemed(MemberEvent):
    event_type: ClassVar[str] = "points.redeemed"

    points: Points


class PointsExpiring(MemberEvent):
    event_type: ClassVar[str] = "points.expiring"

    points: Points
    expires_on: date


class TierChanged(MemberEvent):
    event_type: ClassVar[str] = "tier.changed"

    previous_tier: ShortText
    new_tier: ShortText
    points_to_next_tier: Annotated[int, Field(ge=0)] | None = None


class CartAbandoned(MemberEvent):
    event_type: ClassVar[str] = "cart.abandoned"

    cart_id: Identifier
    value: Money
    line_items: Annotated[list[LineItem], Field(max_length=500)] = []


class AppOpened(MemberEvent):
    event_type: ClassVar[str] = "app.opened"

    platform: Literal["ios", "android", "web"] = "android"


class OfferRedeemed(MemberEvent):
    event_type: ClassVar[str] = "offer.redeemed"

    offer_id: Identifier
    order_id: Identifier | None = None
    decision_id: Identifier | None = None


class NotificationEvent(MemberEvent):
    """Feedback about one message; `decision_id` joins it to the decision that sent it."""

    decision_id: Identifier
    channel: Channel
    offer_id: Identifier | None = None
    topic: Topic = Topic.OFFERS
    message_id: Annotated[str, Field(max_length=256)] | None = None


class NotificationSent(NotificationEvent):
    event_type: ClassVar[str] = "notification.sent"


class NotificationWithheld(NotificationEvent):
    """A message the policy chose for a member of the global holdout, withheld by dispatch at
    the moment it would have gone out (after the same send-time checks as a real send). The
    profile counts it for the frequency caps only, so the holdout's decisions follow the same
    caps as the treated members' and its would-be sends are comparable to their sends (ghost
    sends, for the lift). Nothing reached the member."""

    event_type: ClassVar[str] = "notification.withheld"


class NotificationDelivered(NotificationEvent):
    event_type: ClassVar[str] = "notification.delivered"


class NotificationOpened(NotificationEvent):
    event_type: ClassVar[str] = "notification.opened"


class NotificationClicked(NotificationEvent):
    event_type: ClassVar[str] = "notification.clicked"

    link: Annotated[str, Field(max_length=2048)] | None = None


class NotificationBounced(NotificationEvent):
    event_type: ClassVar[str] = "notification.bounced"

    bounce_type: Literal["Permanent", "Transient", "Undetermined"] = "Permanent"


class NotificationComplained(NotificationEvent):
    event_type: ClassVar[str] = "notification.complained"


class NotificationUnsubscribed(NotificationEvent):
    """The member opted out; `all_topics` means of every marketing topic on the channel."""

    event_type: ClassVar[str] = "notification.unsubscribed"

    all_topics: bool = False


class SweepRequested(BaseModel):
    """A scheduled sweep over all members (win-back, weekly digest); not about one member."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)
    event_type: ClassVar[str] = "sweep.requested"

    event_id: Identifier
    occurred_at: AwareDatetime
    schema_version: Literal[1] = 1
    # "daily": every member's next best action of the day — "send nothing" included
    sweep: Literal["daily", "win_back", "weekly_digest", "points_expiry"]


INBOUND_EVENTS: tuple[type[MemberEvent], ...] = (
    MemberEnrolled,
    MemberUpdated,
    ConsentChanged,
    PurchaseCompleted,
    PointsEarned,
    PointsRedeemed,
    PointsExpiring,
    TierChanged,
    CartAbandoned,
    AppOpened,
    OfferRedeemed,
)
FEEDBACK_EVENTS: tuple[type[NotificationEvent], ...] = (
    NotificationSent,
    NotificationWithheld,
    NotificationDelivered,
    NotificationOpened,
    NotificationClicked,
    NotificationBounced,
    NotificationComplained,
    NotificationUnsubscribed,
)
_ALL_MODELS: tuple[type[BaseModel], ...] = (
    *INBOUND_EVENTS, *FEEDBACK_EVENTS, SweepRequested, PrivacyRequested,
)
EVENT_MODELS: dict[str, type[BaseModel]] = {str(m.event_type): m for m in _ALL_MODELS}  # type: ignore[attr-defined]


def _first_error(error: ValidationError) -> str:
    issues = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "detail"
        issues.append(f"{where}: {item['msg']}")
    more = f" (+{error.error_count() - 3} more)" if error.error_count() > 3 else ""
    return "; ".join(issues) + more


def parse_event(event_type: str, detail: Any) -> BaseModel:
    """Validate one event's detail against its model, or raise InvalidEvent with a reason."""
    model = EVENT_MODELS.get(event_type)
    if model is None:
        shown = re.sub(r"[^\x20-\x7e]", "?", str(event_type))[:80]
        raise UnknownEventType(
            f"unknown event type {shown!r}; known: {', '.join(sorted(EVENT_MODELS))}"
        )
    if isinstance(detail, str | bytes):
        if len(detail) > MAX_DETAIL_BYTES:
            raise InvalidEvent(f"{event_type}: detail is {len(detail)} bytes; limit {MAX_DETAIL_BYTES}", event_type)
        try:
            detail = json.loads(detail)
        except ValueError as error:
            raise InvalidEvent(f"{event_type}: detail is not JSON ({error})", event_type) from error
    if not isinstance(detail, dict):
        raise InvalidEvent(f"{event_type}: detail must be a JSON object, got {type(detail).__name__}", event_type)
    version = detail.get("schema_version", 1)
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
        raise UnknownSchemaVersion(f"{event_type} v{version!s:.20}; supported: {supported}", event_type)
    try:
        return model.model_validate(detail)
    except ValidationError as error:
        raise InvalidEvent(f"{event_type}: {_first_error(error)}", event_type) from error


def to_detail(event: BaseModel) -> dict[str, Any]:
    """The JSON-ready `detail` of an event (the one way Fidelio serializes an event)."""
    return event.model_dump(mode="json", exclude_none=True)


def event_type_of(event: BaseModel) -> str:
    return type(event).event_type  # type: ignore[attr-defined, no-any-return]


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per event type, with event_type documented as the detail-type."""
    schemas = {}
    for name, model in sorted(EVENT_MODELS.items()):
        schema = model.model_json_schema()
        schema["$id"] = f"https://fidelio.dev/schemas/{name}.v1.json"
        schema["description"] = (
            f"detail of an EventBridge event with detail-type '{name}'. "
            + (model.__doc__ or "").strip()
        ).strip()
        schemas[name] = schema
    return schemas
