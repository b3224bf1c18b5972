"""The offer catalog: what Fidelio may propose, to whom, on which channels, until when."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from functions.domain.events import Channel, Identifier, Topic

OfferKind = Literal["coupon", "points", "reminder", "content"]
OFFER_KINDS: tuple[str, ...] = ("coupon", "points", "reminder", "content")


class MessageTemplate(BaseModel):
    """One channel's text in one locale. Placeholders: {first_name} {points} {offer_title}
    {reason} {expires_in_days}; member text is escaped when rendered."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    subject: Annotated[str, Field(max_length=200)] = ""
    body: Annotated[str, Field(min_length=1, max_length=4000)]


class Offer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    offer_id: Identifier
    title: Annotated[str, Field(min_length=1, max_length=200)]
    kind: OfferKind = "coupon"
    topic: Topic = Topic.OFFERS
    categories: Annotated[list[str], Field(max_length=50)] = []
    value: Annotated[float, Field(ge=0, le=10_000)] = 0.0  # expected value to the business of a redemption
    channels: Annotated[list[Channel], Field(min_length=1)] = [Channel.EMAIL, Channel.PUSH]
    tiers: list[str] = []  # empty = every tier
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    budget: Annotated[int, Field(ge=0)] | None = None  # max sends; None = unlimited
    # locale -> channel -> template; "en" is the fallback locale
    templates: dict[str, dict[Channel, MessageTemplate]] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Offer:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError(f"ends_at {self.ends_at} is not after starts_at {self.starts_at}")
        if self.templates and "en" not in self.templates:
            raise ValueError("templates need an 'en' fallback locale")
        for locale, by_channel in self.templates.items():
            missing = [c.value for c in self.channels if c not in by_channel]
            if missing:
                raise ValueError(f"locale {locale!r} has no template for channel(s) {missing}")
        return self

    def active_at(self, moment: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= moment) and (
            self.ends_at is None or moment < self.ends_at
        )

    def template(self, locale: str, channel: Channel) -> MessageTemplate | None:
        for candidate in (locale, locale.split("-")[0], "en"):
            by_channel = self.templates.get(candidate)
            if by_channel and channel in by_channel:
                return by_channel[channel]
        return None
