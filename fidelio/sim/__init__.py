"""The member simulator: Fidelio's closed-loop world (see docs/simulator.md).

Members with hidden traits live day by day and react to the messages Fidelio sends. The engine
only ever sees the events they emit; `World.expected_value` and `World.stats` are the truth, for
evaluation. This package imports only the event and offer models from `functions.domain`.
"""

from fidelio.sim.catalog import DEFAULT_OFFERS_PATH, CatalogError, load_offers
from fidelio.sim.config import ChannelRates, SimConfig
from fidelio.sim.measure import CITED_RANGES, ResponseRates, run_daily_protocol
from fidelio.sim.traits import CATEGORIES, TIERS
from fidelio.sim.world import (
    ExpectedValue,
    Message,
    SimStats,
    UnknownMember,
    UnknownOffer,
    World,
    event_counts,
)

__all__ = [
    "CATEGORIES",
    "CITED_RANGES",
    "DEFAULT_OFFERS_PATH",
    "TIERS",
    "CatalogError",
    "ChannelRates",
    "ExpectedValue",
    "Message",
    "ResponseRates",
    "SimConfig",
    "SimStats",
    "UnknownMember",
    "UnknownOffer",
    "World",
    "event_counts",
    "load_offers",
    "run_daily_protocol",
]
