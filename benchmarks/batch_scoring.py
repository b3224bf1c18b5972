"""Churn/CLV batch scoring throughput on one core: functions.domain.churn's serving path
(`ChurnModel.score`: profile -> CHURN_FEATURES rows -> one ONNX call per chunk -> Gamma-Gamma
CLV -> ChurnScore) over in-memory profiles, against a per-member loop (the same call, one
member at a time) measured in the same run.

    python benchmarks/batch_scoring.py --members 200000 --json benchmarks/results/batch_scoring.json

Profiles are synthesized with the engine's own `apply_event` (enrolment, purchases, points,
app opens); a pool of distinct profiles (--distinct) is reused to reach --members, since
synthesizing 200,000 event histories would take longer than scoring them. Single-threaded
(onnxruntime intra-op threads = 1, BLAS threads = 1). Target: >= 1,000,000 members/min/core.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _results import write_result  # noqa: E402

from functions.domain import events as ev  # noqa: E402
from functions.domain.profile import MemberProfile, apply_event  # noqa: E402

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
TARGET_PER_MIN = 1_000_000
CATEGORIES = ["coffee", "bakery", "wine", "produce", "dairy", "snacks", "frozen", "household"]


def synthesize(index: int, rng: np.random.Generator) -> MemberProfile:
    member_id = f"churn-bench-{index}"
    profile = MemberProfile(member_id=member_id)
    enrolled = NOW - timedelta(days=float(rng.uniform(30, 900)))
    apply_event(profile, ev.MemberEnrolled(event_id="e", member_id=member_id, occurred_at=enrolled,
                                           time_zone="Europe/Paris", email="m@example.com"))
    age_days = (NOW - enrolled).total_seconds() / 86400
    purchases = int(rng.geometric(0.15)) - 1  # many members with 0-3 purchases, a long tail
    for k in range(min(purchases, 60)):
        at = enrolled + timedelta(days=float(rng.uniform(0, age_days)))
        category = CATEGORIES[int(rng.integers(0, len(CATEGORIES)))]
        amount = float(rng.gamma(2.0, 15.0))
        apply_event(profile, ev.PurchaseCompleted(
            event_id=f"b{k}", member_id=member_id, occurred_at=at, order_id=f"o{k}", amount=amount,
            line_items=[ev.LineItem(product_id="p", category=category, unit_price=amount)]))
    if rng.random() < 0.5:
        apply_event(profile, ev.AppOpened(event_id="a", member_id=member_id,
                                          occurred_at=NOW - timedelta(days=float(rng.uniform(0, 60)))))
    return profile


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - started


def timed_cpu(fn: Any, *args: Any) -> tuple[Any, float, float]:
    """(result, wall s, CPU s of this process): CPU time is far less sensitive to other load."""
    started, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - started, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=10_000, help="members per scoring call")
    parser.add_argument("--distinct", type=int, default=5_000, help="distinct synthesized profiles")
    parser.add_argument("--baseline-members", type=int, default=3_000, help="members scored one at a time")
    parser.add_argument("--model", default=str(REPO / "model_artifacts" / "churn"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    try:
        from functions.domain import churn
        model = churn.ChurnModel(args.model, threads=1)
    except Exception as error:
        print(f"error: churn serving is not usable yet: {type(error).__name__}: {error}", file=sys.stderr)
        return 1

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    pool = [synthesize(i, rng) for i in range(min(args.distinct, args.members))]
    synth_s = time.perf_counter() - started
    profiles = [pool[i % len(pool)] for i in range(args.members)]

    model.score(profiles[:256], NOW)  # warm up (session, caches)
    # Throughput of the serving path, chunk by chunk.
    chunk_times, chunk_cpu = [], []
    scored = 0
    for start in range(0, len(profiles), args.chunk):
        out, seconds, cpu_s = timed_cpu(model.score, profiles[start : start + args.chunk], NOW)
        chunk_times.append(seconds)
        chunk_cpu.append(cpu_s)
        scored += len(out)
    total_s = sum(chunk_times)
    rate = scored / total_s
    cpu_rate = scored / sum(chunk_cpu)

    # Where the time goes, on one chunk.
    sample = profiles[: min(args.chunk, len(profiles))]
    rows, features_s = timed(churn.churn_feature_matrix, sample, NOW)
    (_, _), onnx_s = timed(model.predict_rows, rows)
    _, score_s = timed(model.score, sample, NOW)
    one_feature_row_us = features_s / len(sample) * 1e6
    _, member_features_s = timed(lambda: [churn.member_features(p, NOW) for p in sample])

    # The naive baseline: one scoring call per member.
    baseline = profiles[: min(args.baseline_members, len(profiles))]
    started, cpu = time.perf_counter(), time.process_time()
    for profile in baseline:
        model.score([profile], NOW)
    baseline_s, baseline_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    baseline_rate = len(baseline) / baseline_s

    result = {
        "machine": {"platform": platform.platform(), "nproc": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
                    "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model_version": model.version, "members": scored, "chunk": args.chunk,
        "distinct_profiles": len(pool), "synthesis_s": round(synth_s, 1),
        "members_per_s": round(rate, 1), "members_per_min": round(rate * 60),
        "members_per_cpu_s": round(cpu_rate, 1), "members_per_cpu_min": round(cpu_rate * 60),
        "target_members_per_min": TARGET_PER_MIN, "met": rate * 60 >= TARGET_PER_MIN,
        "met_cpu_time": cpu_rate * 60 >= TARGET_PER_MIN,
        "chunk_ms_p50": round(float(np.percentile(chunk_times, 50)) * 1000, 1),
        "baseline_members": len(baseline), "baseline_members_per_s": round(baseline_rate, 1),
        "speedup_vs_per_member_loop": round(rate / baseline_rate, 2),
        "speedup_vs_per_member_loop_cpu": round(cpu_rate / (len(baseline) / baseline_cpu_s), 2),
        "breakdown_us_per_member": {
            "features": round(one_feature_row_us, 2),
            "of_which_member_features": round(member_features_s / len(sample) * 1e6, 2),
            "onnx": round(onnx_s / len(sample) * 1e6, 2),
            "clv_and_results": round(max(0.0, score_s - features_s - onnx_s) / len(sample) * 1e6, 2),
            "total": round(score_s / len(sample) * 1e6, 2),
        },
    }
    print(f"{'metric':<34}{'value':>16}")
    for key, value in result.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                print(f"{key + '.' + sub:<34}{v!s:>16}")
        else:
            print(f"{key:<34}{value!s:>16}")
    print(f"target {TARGET_PER_MIN:,} members/min on one core: {'met' if result['met'] else 'MISSED'} "
          f"({result['members_per_min']:,}/min wall; {result['members_per_cpu_min']:,}/min of CPU time)")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
