"""The feature rows decide logs with each decision, so the drift monitor and the training
export can read them back (and a challenger can re-score them).

Separate from functions/domain/drift.py because it needs the feature code (numpy); the drift
monitor only reads the logged rows back and stays numpy-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from functions.domain import features as ft
from functions.domain.profile import MemberProfile


def logged_feature_rows(profile: MemberProfile, top: Sequence[Mapping[str, Any]], catalog: ft.CatalogArrays,
                        now: datetime) -> list[list[float]]:
    """The engine's feature rows (FEATURE_NAMES order) of a decision's top candidates, as
    scored: what the archive keeps so drift can be measured and challengers re-scored."""
    known = [c for c in top if c.get("offer_id") in catalog.index and c.get("channel") in ft.CHANNELS]
    if not known or len(known) != len(top):  # the catalog changed under the decision: skip it
        return []
    vector = ft.member_features(profile, now)
    rows = ft.candidate_features(
        profile, vector, catalog,
        np.array([catalog.index[c["offer_id"]] for c in known], dtype=np.int64),
        np.array([ft.CHANNELS.index(c["channel"]) for c in known], dtype=np.int64),
        np.array([float(c["send_at"]) for c in known], dtype=np.float64), now,
    )
    return [[round(float(v), 6) for v in row] for row in rows]


def logged_features(decision: Any, profile: MemberProfile, catalog: ft.CatalogArrays,
                    now: datetime) -> dict[str, Any]:
    """What the archive keeps beside a decision: `top_features` (rows of its top candidates,
    to re-score them with another model) and, when it sends, `action_features` (the row of
    the sent candidate, explored or not: a training example and a drift sample). One
    feature computation for both."""
    action = decision.action
    candidates = list(decision.top)
    if action.kind == "send":
        candidates.append({"offer_id": action.offer_id, "channel": action.channel, "send_at": action.send_at})
    rows = logged_feature_rows(profile, candidates, catalog, now)
    if not rows:
        return {"top_features": []} | ({"action_features": None} if action.kind == "send" else {})
    logged: dict[str, Any] = {"top_features": rows[: len(decision.top)]}
    if action.kind == "send":
        logged["action_features"] = rows[-1]
    return logged
