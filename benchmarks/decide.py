"""Decide hot path, in-process with storage faked: decisions/s and batch latency for batches
of members with ~N candidates each, against a naive baseline measured in the same run (the
same engine, but scoring one candidate at a time — what a per-candidate loop costs).

    python benchmarks/decide.py --members-per-batch 100 --candidates 60 --json PATH
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from functions.domain import events as ev  # noqa: E402
from functions.domain.decision import PolicyConfig, PriorScorer, decide_batch  # noqa: E402
from functions.domain.features import FEATURE_NAMES, FEATURE_VERSION, CatalogArrays  # noqa: E402
from functions.domain.offers import Offer  # noqa: E402
from functions.domain.profile import MemberProfile, apply_event  # noqa: E402
from functions.domain.scoring import OnnxScorer  # noqa: E402
from functions.domain.triggers import DEFAULT_TRIGGERS, DecisionRequest  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CATEGORIES = ["coffee", "bakery", "wine", "produce", "dairy", "snacks", "frozen", "household"]


def catalog_for(candidates: int, slots: int) -> CatalogArrays:
    """Enough offers that each member has about `candidates` allowed candidates
    (offers × 2 channels × `slots` send hours)."""
    offers = max(1, round(candidates / (2 * slots)))
    return CatalogArrays.build([
        Offer(offer_id=f"offer-{i}", title=f"Offer {i}", categories=[CATEGORIES[i % len(CATEGORIES)]],
              value=2.0 + i % 7, channels=[ev.Channel.EMAIL, ev.Channel.PUSH])
        for i in range(offers)
    ])


def member(index: int, rng: np.random.Generator) -> MemberProfile:
    member_id = f"bench-{index}"
    profile = MemberProfile(member_id=member_id)
    apply_event(profile, ev.MemberEnrolled(event_id="e", member_id=member_id, occurred_at=NOW - timedelta(days=300),
                                           time_zone="UTC", email="m@example.com", push_endpoint_arn="arn:e"))
    for channel in ("email", "push"):
        apply_event(profile, ev.ConsentChanged(event_id=f"c-{channel}", member_id=member_id,
                                               occurred_at=NOW - timedelta(days=300), channel=channel,
                                               topic="offers", granted=True, source="bench"))
    for k in range(int(rng.integers(3, 30))):
        category = CATEGORIES[int(rng.integers(0, len(CATEGORIES)))]
        apply_event(profile, ev.PurchaseCompleted(
            event_id=f"b{k}", member_id=member_id, occurred_at=NOW - timedelta(hours=float(rng.uniform(1, 5000))),
            order_id=f"o{k}", amount=float(rng.uniform(3, 90)),
            line_items=[ev.LineItem(product_id="p", category=category, unit_price=float(rng.uniform(1, 30)))]))
    return profile


class OneAtATime:
    """The naive baseline: the same model, called once per candidate."""

    def __init__(self, scorer):
        self.scorer, self.version = scorer, scorer.version

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.scorer.predict(rows[i : i + 1])[0] for i in range(len(rows))])


def run(scorer, profiles, catalog, config, batch: int, repeats: int) -> tuple[list[float], int, int]:
    trigger = next(t for t in DEFAULT_TRIGGERS if t.name == "app_engagement")
    ids = list(profiles)
    latencies, decisions, candidates = [], 0, 0
    for r in range(repeats):
        chunk = ids[(r * batch) % len(ids):][:batch] or ids[:batch]
        requests = [DecisionRequest(member_id=m, trigger=trigger, cause_id=f"c{r}", occurred_at=NOW) for m in chunk]
        started = time.perf_counter()
        out = decide_batch(requests, profiles, catalog, scorer, NOW, config)
        latencies.append((time.perf_counter() - started) * 1000)
        decisions += len(out)
        candidates += sum(d.candidates_allowed for d in out)
    return latencies, decisions, candidates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members-per-batch", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=60)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--model", default=str(REPO / "model_artifacts" / "offers"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    slots = 6
    config = PolicyConfig(slot_hours=slots, max_per_day=10, max_per_week=50, quiet_start_hour=0, quiet_end_hour=0,
                          holdout_share=0.0)
    catalog = catalog_for(args.candidates, slots)
    profiles = {p.member_id: p for p in (member(i, rng) for i in range(args.members_per_batch * 4))}
    model_dir = Path(args.model)
    if (model_dir / "model.onnx").exists():
        scorer = OnnxScorer(model_dir, FEATURE_NAMES, FEATURE_VERSION)
    else:
        print(f"warning: no model in {model_dir}; timing the prior scorer", file=sys.stderr)
        scorer = PriorScorer()
    run(scorer, profiles, catalog, config, args.members_per_batch, 3)  # warm up
    latencies, decisions, candidates = run(scorer, profiles, catalog, config, args.members_per_batch, args.batches)
    naive_batches = max(3, args.batches // 8)
    naive_lat, naive_decisions, _ = run(OneAtATime(scorer), profiles, catalog, config, args.members_per_batch,
                                        naive_batches)
    rate = decisions / (sum(latencies) / 1000)
    naive_rate = naive_decisions / (sum(naive_lat) / 1000)
    result = {
        "machine": platform.platform(), "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "model_version": scorer.version,
        "members_per_batch": args.members_per_batch, "candidates_per_member": round(candidates / decisions, 1),
        "batches": args.batches, "decisions_per_s": round(rate, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2), "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "per_member_p50_ms": round(float(np.percentile(latencies, 50)) / args.members_per_batch, 3),
        "naive_decisions_per_s": round(naive_rate, 1), "speedup_vs_naive": round(rate / naive_rate, 2),
    }
    print(f"{'metric':<28}{'value':>14}")
    for key, value in result.items():
        print(f"{key:<28}{value!s:>14}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
