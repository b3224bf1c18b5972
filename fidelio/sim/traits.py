"""Hidden member traits: who each simulated member is. The engine never sees these; it only
sees the events they cause.

Traits of member i are drawn from a generator seeded by (seed, "traits", i) alone, so member
"sim-000123" is the same person whatever the population size or the order of calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from fidelio.sim.config import SimConfig

CHANNELS: tuple[str, ...] = ("email", "push", "sms")
MARKETING_TOPICS: tuple[str, ...] = ("offers", "points", "tier", "reminders")

# Grocery/retail categories; examples/offers.yaml uses the same names.
CATEGORIES: tuple[str, ...] = (
    "produce",
    "dairy",
    "bakery",
    "meat_fish",
    "pantry",
    "frozen",
    "drinks",
    "wine_beer",
    "snacks",
    "household",
    "beauty_health",
    "pet",
)
CATEGORY_INDEX = {name: i for i, name in enumerate(CATEGORIES)}
# Dirichlet prior weights: how common each category is in baskets.
CATEGORY_POPULARITY = np.array([1.5, 1.3, 1.0, 1.0, 1.2, 0.7, 0.9, 0.5, 0.8, 0.7, 0.5, 0.3])
PREFERENCE_CONCENTRATION = 0.8  # < 1 per category on average: most members have 2-4 favourites
CATEGORY_ITEM_EUR = np.array([2.5, 2.2, 2.0, 7.5, 2.8, 4.0, 2.5, 8.0, 2.5, 4.5, 5.5, 6.0])

TIERS: tuple[str, ...] = ("bronze", "silver", "gold", "platinum")
# Qualifying points earned over a rolling year; 1 point per euro before the tier bonus.
TIER_THRESHOLDS: tuple[int, ...] = (0, 1000, 5000, 15000)
TIER_EARN_MULTIPLIER: tuple[float, ...] = (1.0, 1.0, 1.25, 1.5)

# time zone, share of members, [(locale, share)], phone country code
MARKETS: tuple[tuple[str, float, tuple[tuple[str, float], ...], str], ...] = (
    ("Europe/Paris", 0.30, (("fr-FR", 0.9), ("en-GB", 0.1)), "33"),
    ("Europe/London", 0.14, (("en-GB", 1.0),), "44"),
    ("Europe/Berlin", 0.08, (("de-DE", 0.85), ("en-GB", 0.15)), "49"),
    ("Europe/Madrid", 0.06, (("es-ES", 0.85), ("en-GB", 0.15)), "34"),
    ("America/New_York", 0.16, (("en-US", 1.0),), "1"),
    ("America/Chicago", 0.06, (("en-US", 1.0),), "1"),
    ("America/Los_Angeles", 0.10, (("en-US", 0.85), ("es-US", 0.15)), "1"),
    ("Asia/Tokyo", 0.06, (("ja-JP", 0.8), ("en-US", 0.2)), "81"),
    ("Australia/Sydney", 0.04, (("en-AU", 1.0),), "61"),
)
MARKET_SHARES = np.array([m[1] for m in MARKETS]) / sum(m[1] for m in MARKETS)
FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "fr": ("Camille", "Léa", "Hugo", "Chloé", "Lucas", "Manon", "Théo", "Inès", "Jules", "Zoé"),
    "en": ("Olivia", "Jack", "Emma", "Noah", "Ava", "Liam", "Mia", "Ethan", "Grace", "Leo"),
    "de": ("Anna", "Lukas", "Mia", "Finn", "Lena", "Paul", "Hannah", "Jonas", "Emilia", "Ben"),
    "es": ("Lucía", "Mateo", "Sofía", "Hugo", "Martina", "Pablo", "Valeria", "Daniel", "Julia", "Álvaro"),
    "ja": ("Yui", "Haruto", "Aoi", "Sota", "Hina", "Ren", "Mio", "Yuto", "Sakura", "Riku"),
}
# Peak local hour of activity: morning commute, lunch break, evening.
PEAK_HOURS = np.array([8.0, 12.5, 19.5])
PEAK_SHARES = np.array([0.2, 0.25, 0.55])
SLEEP_HOURS = range(0, 7)
PREFERRED_CHANNEL_WEIGHTS = {"email": 0.55, "push": 0.30, "sms": 0.15}
PREFERRED_BOOST, OTHER_CHANNEL_FACTOR = 1.4, 0.75

PURPOSE_TRAITS = 1  # rng stream ids: (seed, purpose, member index, ...)


def member_id_of(index: int) -> str:
    return f"sim-{index:06d}"


def index_of(member_id: str) -> int | None:
    if not member_id.startswith("sim-") or not member_id[4:].isdigit():
        return None
    return int(member_id[4:])


def tier_of(qualifying_points: float) -> int:
    rank = 0
    for i, threshold in enumerate(TIER_THRESHOLDS):
        if qualifying_points >= threshold:
            rank = i
    return rank


def activity_curve(peak: float, spread: float) -> np.ndarray:
    """Relative activity by local hour (max 1): a bump around the peak, low at night."""
    hours = np.arange(24) + 0.5
    distance = np.abs(((hours - peak) + 12.0) % 24.0 - 12.0)
    curve = 0.08 + np.exp(-0.5 * (distance / spread) ** 2)
    curve[list(SLEEP_HOURS)] *= 0.25
    return np.asarray(curve / curve.max())


@dataclass(frozen=True, eq=False)
class MemberTraits:
    """Everything hidden about one member, fixed for the run."""

    index: int
    member_id: str
    is_new: bool  # enrols during the run
    enrolled_at: datetime  # in the past for existing members
    dormant_at: datetime | None  # existing members who had already lapsed before the run
    time_zone: str
    locale: str
    first_name: str
    email: str
    email_bad: bool  # hard-bounces
    phone: str | None
    push_endpoint_arn: str | None
    platform: str  # ios | android | web (no app)
    birth_year: int
    peak_hour: float
    hour_spread: float
    activity: np.ndarray = field(repr=False)  # 24 local hours, max 1
    preferred_channel: str = "email"
    responsiveness: dict[str, float] = field(default_factory=dict)  # channel -> multiplier
    consents: dict[tuple[str, str], bool] = field(default_factory=dict)  # (channel, topic) at signup
    category_prefs: np.ndarray = field(default_factory=lambda: np.ones(len(CATEGORIES)) / len(CATEGORIES))
    price_sensitivity: float = 0.5  # 0..1: how much an offer's value sways them
    fatigue: float = 1.0  # multiplier on fatigue_sensitivity
    churn_per_day: float = 0.001
    purchases_per_day: float = 0.13
    basket_eur: float = 38.0
    app_opens_per_day: float = 0.0
    # loyalty account at enrolment (new members start at zero)
    qualifying_points: int = 0
    points_balance: int = 0
    expiring_points: int = 0
    expiring_on: date | None = None
    zone: ZoneInfo = field(default=ZoneInfo("UTC"), repr=False)

    @property
    def tier(self) -> str:
        return TIERS[tier_of(self.qualifying_points)]

    def reachable(self, channel: str) -> bool:
        if channel == "push":
            return self.push_endpoint_arn is not None
        if channel == "sms":
            return self.phone is not None
        return True


def _draw_index(rng: np.random.Generator, weights: np.ndarray | list[float]) -> int:
    """An index drawn with probability proportional to `weights` (cheaper than rng.choice)."""
    cumulative = np.cumsum(weights)
    return min(
        int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(cumulative) - 1
    )


def _pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...]) -> str:
    return options[_draw_index(rng, [w for _, w in options])][0]


def _mean_one_lognormal(rng: np.random.Generator, sigma: float) -> float:
    return float(rng.lognormal(-0.5 * sigma * sigma, sigma))


def draw_traits(config: SimConfig, index: int) -> MemberTraits:
    rng = np.random.default_rng([config.seed, PURPOSE_TRAITS, index])
    start = config.start.astimezone(UTC)

    market = MARKETS[_draw_index(rng, MARKET_SHARES)]
    time_zone, _, locales, country_code = market
    locale = _pick(rng, locales)
    names = FIRST_NAMES.get(locale.split("-")[0], FIRST_NAMES["en"])
    first_name = names[int(rng.integers(len(names)))]
    ascii_name = first_name.encode("ascii", "ignore").decode().lower() or "member"
    email = f"{ascii_name}.{index}@example.com"
    email_bad = bool(rng.random() < config.bad_email_share)
    has_phone = bool(rng.random() < config.phone_share)
    phone = f"+{country_code}9{index:08d}" if has_phone else None
    has_app = bool(rng.random() < config.app_share)
    platform = ("ios" if rng.random() < 0.5 else "android") if has_app else "web"
    if has_app:
        token = rng.bytes(16).hex()
        kind = "APNS" if platform == "ios" else "GCM"
        arn = f"arn:aws:sns:eu-west-1:000000000000:endpoint/{kind}/fidelio-app/{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:]}"
    else:
        arn = None
    age = float(np.clip(rng.normal(45.0, 15.0), 18.0, 90.0))
    birth_year = start.year - int(age)

    peak = float(PEAK_HOURS[_draw_index(rng, PEAK_SHARES)] + rng.normal(0.0, 1.0)) % 24.0
    spread = float(rng.uniform(1.5, 3.5))

    available = {"email": True, "push": has_app, "sms": has_phone}
    weights = np.array([PREFERRED_CHANNEL_WEIGHTS[c] if available[c] else 0.0 for c in CHANNELS])
    preferred = CHANNELS[_draw_index(rng, weights)]
    responsiveness = {
        c: _mean_one_lognormal(rng, 0.7) * (PREFERRED_BOOST if c == preferred else OTHER_CHANNEL_FACTOR)
        for c in CHANNELS
    }

    consents: dict[tuple[str, str], bool] = {}
    email_offers = bool(rng.random() < config.email_opt_in)
    consents[("email", "offers")] = email_offers
    for topic, if_yes in (("points", 0.95), ("tier", 0.9), ("reminders", 0.9)):
        consents[("email", topic)] = bool(rng.random() < (if_yes if email_offers else 0.3))
    push_uniform = rng.random(5)  # drawn whether or not the member has the app: stable streams
    if has_app:
        allowed = bool(push_uniform[0] < config.push_opt_in)
        for topic, u in zip(MARKETING_TOPICS, push_uniform[1:], strict=True):
            consents[("push", topic)] = allowed and bool(u < 0.95)
    sms_uniform = rng.random(5)
    if has_phone:
        sms_offers = bool(sms_uniform[0] < config.sms_opt_in)
        for topic, if_yes, u in zip(MARKETING_TOPICS, (1.0, 0.7, 0.6, 0.8), sms_uniform[1:], strict=True):
            consents[("sms", topic)] = sms_offers and bool(u < if_yes)

    prefs = rng.dirichlet(PREFERENCE_CONCENTRATION * CATEGORY_POPULARITY)
    prefs = np.maximum(prefs, 1e-6)
    prefs = prefs / prefs.sum()
    price_sensitivity = float(rng.beta(2.0, 2.5))
    fatigue = _mean_one_lognormal(rng, 0.5)
    churn_per_day = float(rng.gamma(2.0, config.churn_per_month / 30.0 / 2.0))
    purchases_per_day = float(rng.gamma(2.0, config.purchases_per_week / 7.0 / 2.0))
    basket = config.basket_eur * _mean_one_lognormal(rng, 0.35)
    app_opens = float(rng.gamma(1.5, config.app_opens_per_day / 1.5)) if has_app else 0.0

    is_new = bool(rng.random() < config.new_member_share)
    tenure_days = min(3650.0, 30.0 + float(rng.exponential(700.0)))  # programme is 10 years old
    dormant = (not is_new) and bool(rng.random() < config.dormant_share)
    lapse_ago_days = float(rng.uniform(1.0, 365.0))
    enrol_day = int(rng.integers(config.days))
    enrol_second = float(rng.uniform(0.0, 86400.0))
    balance_share = float(rng.uniform(0.1, 0.8))
    qualifying_noise = _mean_one_lognormal(rng, 0.2)
    has_lot, lot_share, lot_days = (
        bool(rng.random() < 0.5),
        float(rng.uniform(0.1, 0.5)),
        int(rng.integers(5, 76)),
    )

    if is_new:
        enrolled_at = start + timedelta(days=enrol_day, seconds=int(enrol_second))
        dormant_at = None
        qualifying = balance = lot = 0
        lot_on = None
    else:
        enrolled_at = start - timedelta(days=tenure_days)
        enrolled_at = enrolled_at.replace(microsecond=0)
        dormant_at = None
        active_days = min(365.0, tenure_days)
        if dormant:
            lapse_ago = min(lapse_ago_days, tenure_days - 7.0)
            dormant_at = (start - timedelta(days=lapse_ago)).replace(microsecond=0)
            active_days = max(0.0, min(365.0, tenure_days) - lapse_ago)
        qualifying = int(purchases_per_day * active_days * basket * qualifying_noise)
        balance = int(qualifying * balance_share)
        lot = int(balance * lot_share) if has_lot and balance >= 50 else 0
        lot_on = (start + timedelta(days=lot_days)).date() if lot > 0 else None

    return MemberTraits(
        index=index,
        member_id=member_id_of(index),
        is_new=is_new,
        enrolled_at=enrolled_at,
        dormant_at=dormant_at,
        time_zone=time_zone,
        locale=locale,
        first_name=first_name,
        email=email,
        email_bad=email_bad,
        phone=phone,
        push_endpoint_arn=arn,
        platform=platform,
        birth_year=birth_year,
        peak_hour=peak,
        hour_spread=spread,
        activity=activity_curve(peak, spread),
        preferred_channel=preferred,
        responsiveness=responsiveness,
        consents=consents,
        category_prefs=prefs,
        price_sensitivity=price_sensitivity,
        fatigue=fatigue,
        churn_per_day=churn_per_day,
        purchases_per_day=purchases_per_day,
        basket_eur=basket,
        app_opens_per_day=app_opens,
        qualifying_points=qualifying,
        points_balance=balance,
        expiring_points=lot,
        expiring_on=lot_on,
        zone=ZoneInfo(time_zone),
    )


def local_hour(moment: datetime, zone: ZoneInfo) -> int:
    return moment.astimezone(zone).hour


def utc_offset_hours(moment: datetime, zone: ZoneInfo) -> float:
    offset = moment.astimezone(zone).utcoffset()
    return 0.0 if offset is None else offset.total_seconds() / 3600.0


def circular_hours(a: float, b: float) -> float:
    return abs(((a - b) + 12.0) % 24.0 - 12.0)


__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "MARKETING_TOPICS",
    "TIERS",
    "TIER_THRESHOLDS",
    "MemberTraits",
    "activity_curve",
    "circular_hours",
    "draw_traits",
    "index_of",
    "local_hour",
    "member_id_of",
    "tier_of",
    "utc_offset_hours",
]
