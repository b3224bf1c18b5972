"""Every model feature, defined once: the same code serves online (decide, from the stored
profile) and offline (training, from a profile rebuilt by replaying history).

A model artifact records FEATURE_VERSION and FEATURE_NAMES; the scorer refuses a model
whose list differs. Change a feature -> bump FEATURE_VERSION.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

from functions.domain.feature_version import FEATURE_VERSION as FEATURE_VERSION  # bump it there
from functions.domain.offers import OFFER_KINDS, Offer
from functions.domain.profile import HALF_LIFE_DAYS, MemberProfile

# Numpy-free, so they live with the profile (ingest's triggers use them); re-exported here.
from functions.domain.profile import points_to_next_tier as points_to_next_tier
from functions.domain.profile import tier_rank as tier_rank

CHANNELS: tuple[str, ...] = ("email", "push", "sms")
# Priors for a member's engagement rates per send, shrunk toward with PRIOR_WEIGHT pseudo-sends:
# published industry averages (docs/simulator.md lists the sources). Email: opens ~22 %, clicks
# ~2.5 % (Mailchimp 2019, Campaign Monitor 2022); push: direct opens 2–6 % (Braze, Leanplum),
# a deep-link tap for about half of them; SMS: clicks 6–15 % (Klaviyo), lower in grocery, and
# nearly every SMS is read.
OPEN_RATE_PRIOR = {"email": 0.22, "push": 0.04, "sms": 0.90}
CLICK_RATE_PRIOR = {"email": 0.025, "push": 0.02, "sms": 0.06}
PRIOR_WEIGHT = 3.0
CAP_DAYS = 365.0

MEMBER_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary_avg",
    "spend_90d",
    "purchases_90d",
    "tenure_days",
    "points_balance",
    "points_expiring",
    "days_to_points_expiry",
    "tier_rank",
    "points_to_next_tier",
    "email_open_rate",
    "email_click_rate",
    "push_open_rate",
    "sms_click_rate",
    "sends_24h",
    "sends_7d",
    "hours_since_last_send",
    "app_opens_30d",
    "days_since_app_open",
    "offers_redeemed_180d",
    "offer_redemption_rate",
    "offers_redeemed_total",
    "days_since_cart_abandoned",
    "cart_value",
    "churn_risk",
    "clv",
    "category_count",
    # v2: offer/coupon use and targeting history
    "offer_purchases_180d",
    "offer_purchase_share",
    "days_since_offer_purchase",
    "days_since_offer_redeemed",
    "offers_received_180d",
)
CANDIDATE_FEATURES: tuple[str, ...] = (
    "offer_value",
    "offer_value_to_basket",
    "offer_category_affinity",
    "offer_category_share",
    *(f"offer_kind_{kind}" for kind in OFFER_KINDS),
    "offer_duration_days",
    "days_since_same_offer",
    *(f"channel_{channel}" for channel in CHANNELS),
    "channel_open_rate",
    "channel_click_rate",
    "local_hour",
    "hour_affinity",
    "send_delay_hours",
    # v2: how broad the offer is and how the member's own categories meet it
    "offer_category_count",
    "offer_categories_bought_share",
    "days_since_offer_category_purchase",
)
FEATURE_NAMES: tuple[str, ...] = MEMBER_FEATURES + CANDIDATE_FEATURES
N_MEMBER = len(MEMBER_FEATURES)


def _days(seconds: float) -> float:
    return seconds / 86400.0


def _since_days(now: float, moment: float | None) -> float:
    if moment is None:
        return CAP_DAYS
    return float(min(CAP_DAYS, max(0.0, _days(now - moment))))


def _rate(numerator: float, denominator: float, prior: float) -> float:
    return (numerator + prior * PRIOR_WEIGHT) / (denominator + PRIOR_WEIGHT)


def member_features(profile: MemberProfile, now: datetime) -> np.ndarray:
    """The member part of every candidate row, in MEMBER_FEATURES order."""
    t = now.timestamp()
    engagement = profile.engagement
    life = HALF_LIFE_DAYS

    def channel_values(channel: str) -> tuple[float, float, float]:
        e = engagement.get(channel)
        if e is None:
            return 0.0, 0.0, 0.0
        half = life["engagement"]
        return e.sent.value(t, half), e.opened.value(t, half), e.clicked.value(t, half)

    email_sent, email_open, email_click = channel_values("email")
    push_sent, push_open, _ = channel_values("push")
    sms_sent, _, sms_click = channel_values("sms")
    recent = [s for s in profile.recent_sends if s <= t]
    last_send = max(recent) if recent else None
    received = profile.offers_received.value(t, life["offers"])
    redeemed = profile.offers_redeemed.value(t, life["offers"])
    expiry_days = (
        CAP_DAYS
        if profile.points_expire_at is None or profile.points_expiring <= 0
        else float(min(CAP_DAYS, max(0.0, _days(profile.points_expire_at - t))))
    )
    values = (
        _since_days(t, profile.last_purchase_at),
        float(profile.purchase_count),
        profile.total_spend / profile.purchase_count if profile.purchase_count else 0.0,
        profile.spend.value(t, life["spend"]),
        profile.purchases.value(t, life["purchases"]),
        _since_days(t, profile.enrolled_at or profile.first_purchase_at),
        float(profile.points_balance),
        float(profile.points_expiring) if expiry_days < CAP_DAYS else 0.0,
        expiry_days,
        float(tier_rank(profile.tier)),
        points_to_next_tier(profile),
        _rate(email_open, email_sent, OPEN_RATE_PRIOR["email"]),
        _rate(email_click, email_sent, CLICK_RATE_PRIOR["email"]),
        _rate(push_open, push_sent, OPEN_RATE_PRIOR["push"]),
        _rate(sms_click, sms_sent, CLICK_RATE_PRIOR["sms"]),
        float(sum(1 for s in recent if s > t - 86400)),
        float(sum(1 for s in recent if s > t - 7 * 86400)),
        min(CAP_DAYS * 24, (t - last_send) / 3600.0) if last_send is not None else CAP_DAYS * 24,
        profile.app_opens.value(t, life["app"]),
        _since_days(t, profile.last_app_open_at),
        redeemed,
        _rate(redeemed, received, 0.05),
        float(profile.offers_redeemed_total),
        _since_days(t, profile.last_cart_abandoned_at),
        profile.last_cart_value,
        -1.0 if profile.churn_risk is None else profile.churn_risk,
        -1.0 if profile.clv is None else profile.clv,
        float(len(profile.categories)),
        profile.offer_purchases.value(t, life["offers"]),
        profile.offer_purchases_total / profile.purchase_count if profile.purchase_count else 0.0,
        _since_days(t, profile.last_offer_purchase_at),
        _since_days(t, profile.last_offer_redeemed_at),
        received,
    )
    return np.asarray(values, dtype=np.float32)


@dataclass(frozen=True)
class CatalogArrays:
    """The catalog as arrays, built once per catalog version and shared by every member."""

    offers: tuple[Offer, ...]
    categories: tuple[str, ...]
    value: np.ndarray  # (O,)
    kind_onehot: np.ndarray  # (O, K)
    category_matrix: np.ndarray  # (O, C) 1 where the offer covers the category
    duration_days: np.ndarray  # (O,)
    index: dict[str, int]

    @classmethod
    def build(cls, offers: Sequence[Offer]) -> CatalogArrays:
        categories = tuple(sorted({c for o in offers for c in o.categories}))
        cat_index = {c: i for i, c in enumerate(categories)}
        matrix = np.zeros((len(offers), max(1, len(categories))), dtype=np.float32)
        for row, offer in enumerate(offers):
            for category in offer.categories:
                matrix[row, cat_index[category]] = 1.0
        kinds = np.zeros((len(offers), len(OFFER_KINDS)), dtype=np.float32)
        for row, offer in enumerate(offers):
            kinds[row, OFFER_KINDS.index(offer.kind)] = 1.0
        duration = np.array(
            [
                _days((o.ends_at - o.starts_at).total_seconds()) if o.starts_at and o.ends_at else 30.0
                for o in offers
            ],
            dtype=np.float32,
        )
        return cls(
            offers=tuple(offers),
            categories=categories,
            value=np.array([o.value for o in offers], dtype=np.float32),
            kind_onehot=kinds,
            category_matrix=matrix,
            duration_days=duration,
            index={o.offer_id: i for i, o in enumerate(offers)},
        )


def category_spend_vector(profile: MemberProfile, catalog: CatalogArrays, now: datetime) -> np.ndarray:
    t = now.timestamp()
    half = HALF_LIFE_DAYS["category"]
    vector = np.zeros(catalog.category_matrix.shape[1], dtype=np.float32)
    lookup = {c: i for i, c in enumerate(catalog.categories)}
    for category, counter in profile.categories.items():
        position = lookup.get(category)
        if position is not None:
            vector[position] = counter.value(t, half)
    return vector


def category_last_purchase_vector(profile: MemberProfile, catalog: CatalogArrays) -> np.ndarray:
    """Epoch seconds of the member's latest purchase in each catalog category (-inf: none kept)."""
    vector = np.full(catalog.category_matrix.shape[1], -np.inf, dtype=np.float64)
    lookup = {c: i for i, c in enumerate(catalog.categories)}
    for category, counter in profile.categories.items():
        position = lookup.get(category)
        if position is not None and counter.v > 0.0:
            vector[position] = counter.t
    return vector


def _circular_kernel(sigma_hours: float) -> np.ndarray:
    offsets = np.arange(24)
    distance = np.minimum(offsets, 24 - offsets)
    kernel = np.exp(-0.5 * (distance / sigma_hours) ** 2)
    return kernel / kernel.sum()


_HOUR_KERNEL = np.fft.rfft(_circular_kernel(1.5))


def hour_affinity_vector(profile: MemberProfile) -> np.ndarray:
    """168 local hour-of-week weights, 1.0 = average. Activity (purchases, app opens, message
    opens and clicks) is mostly a matter of the hour of the day: the hour-of-day profile is
    smoothed with a 1.5-hour circular kernel and carries three quarters of the weight, the
    week-specific hour the rest; the whole is shrunk toward uniform, so a member with little
    history gets ~1 everywhere."""
    return hour_affinity_matrix([profile])[0]


def hour_affinity_matrix(profiles: Sequence[MemberProfile]) -> np.ndarray:
    """`hour_affinity_vector` of many profiles at once, one row each (decide's batch): the
    same operations row by row, so the same values whatever the batch."""
    raw = np.array([p.hour_of_week for p in profiles], dtype=np.float64).reshape(len(profiles), 168)
    out = np.ones((len(profiles), 168), dtype=np.float32)
    active = raw.any(axis=1)
    if not active.any():
        return out
    raw = raw[active]
    by_hour = raw.reshape(-1, 7, 24).sum(axis=1)
    smooth_hour = np.fft.irfft(np.fft.rfft(by_hour, axis=1) * _HOUR_KERNEL, n=24, axis=1) / 7.0
    rolled_back = np.concatenate((raw[:, -1:], raw[:, :-1]), axis=1)  # np.roll(raw, 1) per row
    rolled_forward = np.concatenate((raw[:, 1:], raw[:, :1]), axis=1)  # np.roll(raw, -1) per row
    smooth_week = 0.5 * raw + 0.25 * rolled_back + 0.25 * rolled_forward
    blended = 0.25 * smooth_week + 0.75 * np.tile(np.maximum(smooth_hour, 0.0), 7)
    total = blended.sum(axis=1)[:, None]
    prior_mass = 4.0
    out[active] = ((blended + prior_mass / 168.0) / (total + prior_mass) * 168.0).astype(np.float32)
    return out


_HOUR_OF_WEEK_CACHE: dict[tuple[str, int], int] = {}


def local_hour_of_week(moments: np.ndarray, time_zone: str) -> np.ndarray:
    """Local hour-of-week (0 = Monday 00h) of epoch seconds, in the member's zone."""
    out = np.empty(len(moments), dtype=np.int64)
    cache = _HOUR_OF_WEEK_CACHE
    if len(cache) > 200_000:
        cache.clear()
    zone: ZoneInfo | None = None
    for i, moment in enumerate(moments.tolist()):
        # Quarter-hour keys: exact for every zone offset in use (+05:30, +05:45 ...).
        key = (time_zone, math.floor(moment / 900.0))
        value = cache.get(key)
        if value is None:
            zone = zone or ZoneInfo(time_zone)
            local = datetime.fromtimestamp(key[1] * 900.0, tz=UTC).astimezone(zone)
            value = cache[key] = local.weekday() * 24 + local.hour
        out[i] = value
    return out


def candidate_features(
    profile: MemberProfile,
    member_vector: np.ndarray,
    catalog: CatalogArrays,
    offer_index: np.ndarray,
    channel_index: np.ndarray,
    send_at: np.ndarray,
    now: datetime,
) -> np.ndarray:
    """Rows of FEATURE_NAMES for candidates (offer, channel, send time), vectorized.

    offer_index/channel_index are int arrays into catalog.offers and CHANNELS; send_at is
    epoch seconds (>= now)."""
    return candidate_features_batch(
        [profile], np.asarray(member_vector)[None, :], catalog, np.zeros(len(offer_index), dtype=np.int64),
        offer_index, channel_index, send_at, now,
    )


def candidate_features_batch(
    profiles: Sequence[MemberProfile],
    member_vectors: np.ndarray,
    catalog: CatalogArrays,
    member_index: np.ndarray,
    offer_index: np.ndarray,
    channel_index: np.ndarray,
    send_at: np.ndarray,
    now: datetime,
    hour_affinity: np.ndarray | None = None,
) -> np.ndarray:
    """`candidate_features` for the candidates of many members at once (decide's batch):
    row r belongs to profiles[member_index[r]], whose member vector is member_vectors[that].

    What depends on the member alone is computed once per member (per offer or category),
    then gathered per row; `hour_affinity` (`hour_affinity_matrix(profiles)`) may be passed
    when the caller already has it. Same values as one call per member."""
    n, m = len(offer_index), len(profiles)
    t = now.timestamp()
    rows = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
    if n == 0:
        return rows
    member_index = np.asarray(member_index, dtype=np.int64)
    offer_index = np.asarray(offer_index, dtype=np.int64)
    channel_index = np.asarray(channel_index, dtype=np.int64)
    moments = np.asarray(send_at, dtype=np.float64)
    rows[:, :N_MEMBER] = member_vectors[member_index]
    n_offers, n_categories = len(catalog.offers), catalog.category_matrix.shape[1]
    affinity = np.empty((m, n_offers), dtype=np.float32)
    share = np.empty((m, n_offers), dtype=np.float32)
    last_by_offer = np.empty((m, n_offers), dtype=np.float32)
    bought = np.empty((m, n_categories), dtype=bool)
    last_in_category = np.empty((m, n_categories), dtype=np.float64)
    hours = hour_affinity_matrix(profiles) if hour_affinity is None else np.asarray(hour_affinity, dtype=np.float32)
    half = HALF_LIFE_DAYS["category"]
    in_catalog = set(catalog.categories)
    for k, profile in enumerate(profiles):
        spend = category_spend_vector(profile, catalog, now)
        affinity_by_offer = catalog.category_matrix @ spend  # (O,)
        total_spend = float(spend.sum()) + sum(
            c.value(t, half) for name, c in profile.categories.items() if name not in in_catalog
        )
        affinity[k] = affinity_by_offer
        share[k] = affinity_by_offer / (total_spend + 1.0)
        last_by_offer[k] = [_since_days(t, profile.last_send_by_offer.get(o.offer_id)) for o in catalog.offers]
        bought[k] = spend > 0
        last_in_category[k] = category_last_purchase_vector(profile, catalog)
    col = N_MEMBER
    value = catalog.value[offer_index]
    monetary = np.asarray(member_vectors[:, MEMBER_FEATURES.index("monetary_avg")], dtype=np.float64)
    basket = np.maximum(1.0, monetary).astype(np.float32)
    rows[:, col] = value
    rows[:, col + 1] = value / basket[member_index]
    rows[:, col + 2] = affinity[member_index, offer_index]
    rows[:, col + 3] = share[member_index, offer_index]
    col += 4
    rows[:, col : col + len(OFFER_KINDS)] = catalog.kind_onehot[offer_index]
    col += len(OFFER_KINDS)
    rows[:, col] = catalog.duration_days[offer_index]
    rows[:, col + 1] = last_by_offer[member_index, offer_index]
    col += 2
    rows[:, col : col + len(CHANNELS)] = np.eye(len(CHANNELS), dtype=np.float32)[channel_index]
    col += len(CHANNELS)
    open_rates = np.empty((m, len(CHANNELS)), dtype=np.float32)
    open_rates[:, 0] = member_vectors[:, MEMBER_FEATURES.index("email_open_rate")]
    open_rates[:, 1] = member_vectors[:, MEMBER_FEATURES.index("push_open_rate")]
    open_rates[:, 2] = OPEN_RATE_PRIOR["sms"]
    click_rates = np.empty((m, len(CHANNELS)), dtype=np.float32)
    click_rates[:, 0] = member_vectors[:, MEMBER_FEATURES.index("email_click_rate")]
    click_rates[:, 1] = CLICK_RATE_PRIOR["push"]
    click_rates[:, 2] = member_vectors[:, MEMBER_FEATURES.index("sms_click_rate")]
    rows[:, col] = open_rates[member_index, channel_index]
    rows[:, col + 1] = click_rates[member_index, channel_index]
    col += 2
    # Send times repeat across members (decide's slots): local hours once per zone and moment.
    unique_moments, moment_of_row = np.unique(moments, return_inverse=True)
    zones: dict[str, int] = {}
    zone_of_member = np.array([zones.setdefault(p.time_zone, len(zones)) for p in profiles], dtype=np.int64)
    how_by_zone = np.stack([local_hour_of_week(unique_moments, zone) for zone in zones])
    how = how_by_zone[zone_of_member[member_index], moment_of_row.reshape(-1)]
    rows[:, col] = how % 24
    rows[:, col + 1] = hours[member_index, how]
    rows[:, col + 2] = (moments - t) / 3600.0
    col += 3
    covered = catalog.category_matrix > 0  # (O, C)
    count_by_offer = covered.sum(axis=1).astype(np.float32)
    bought_share = (covered[None, :, :] & bought[:, None, :]).sum(axis=2) / np.maximum(1.0, count_by_offer)
    last = np.where(covered[None, :, :], last_in_category[:, None, :], -np.inf).max(axis=2)  # (M, O)
    since_category = np.where(
        np.isfinite(last), np.clip((t - last) / 86400.0, 0.0, CAP_DAYS), CAP_DAYS
    ).astype(np.float32)
    rows[:, col] = count_by_offer[offer_index]
    rows[:, col + 1] = bought_share[member_index, offer_index]
    rows[:, col + 2] = since_category[member_index, offer_index]
    return rows
