"""Churn and lifetime value on CDNOW: BG/NBD (paper reproduction, then as a baseline) against
LightGBM on the engine's own profile features, on a calibration/holdout split.

    python benchmarks/churn_cdnow.py --calibration-weeks 39 --seed 0 --json out/churn_cdnow.json

Prints a table and writes JSON. Exits 1 with one line if CDNOW cannot be fetched; with
--strict also exits 1 when the acceptance checks fail (see `acceptance` in the JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from fidelio.datasets import DatasetUnavailable
from fidelio.importers import cdnow
from fidelio.models import churn

AUC_MARGIN = 0.005  # best GBDT/hybrid AUC must beat BG/NBD's expected purchases by this much
TOTAL_TOLERANCE = 0.05  # ...and its predicted holdout purchases be within 5% of actual
PAPER_TOLERANCE = 0.01


def run(calibration_weeks: int, seed: int, jobs: int, source_dir: Path | None) -> dict[str, Any]:
    started = time.perf_counter()
    paper = churn.paper_fit(source_dir)
    rows, raw = cdnow.load_master(source_dir)
    panel = churn.build_panel(churn.purchase_histories(rows), calibration_weeks, seed)
    result = churn.run_protocol(panel, seed, jobs)
    m = result.metrics
    auc, totals = m["auc"], m["holdout_purchases"]
    best = max(("gbdt", "hybrid"), key=lambda k: auc[k])
    best_total_err = (totals[best] - totals["actual"]) / totals["actual"]
    acceptance = {
        "paper_fit": paper["bgnbd_max_rel_err"] <= PAPER_TOLERANCE,
        "best_model": best,
        "auc_margin_over_bgnbd": auc[best] - auc["bgnbd"],
        "auc_margin_ok": auc[best] >= auc["bgnbd"] + AUC_MARGIN,
        "best_total_rel_err": best_total_err,
        "best_total_ok": abs(best_total_err) <= TOTAL_TOLERANCE,
    }
    acceptance["passed"] = bool(acceptance["paper_fit"] and acceptance["auc_margin_ok"] and acceptance["best_total_ok"])
    return {
        "benchmark": "churn_cdnow",
        "calibration_weeks": calibration_weeks,
        "holdout_weeks": panel.horizon_weeks,
        "seed": seed,
        "n_customers": m["n_customers"],
        "n_train": m["n_train"],
        "n_test": m["n_test"],
        "data_sha256": cdnow.sha256_of(raw),
        "paper_fit": paper["bgnbd"],
        "paper_fit_max_rel_err": paper["bgnbd_max_rel_err"],
        "paper_fit_log_likelihood": paper["bgnbd_log_likelihood"],
        "paper_gamma_gamma": paper.get("gamma_gamma"),
        "paper_gamma_gamma_max_rel_err": paper.get("gamma_gamma_max_rel_err"),
        "bgnbd_train_fit": result.bgnbd.as_dict(),
        "gamma_gamma_train_fit": result.gamma_gamma.as_dict(),
        "holdout_any_purchase_rate": m["holdout_any_purchase_rate_test"],
        "auc": auc,
        "holdout_purchases": totals,
        "mae": m["mae"],
        "rmse": {k: v["rmse"] for k, v in m["counts"].items()},
        "holdout_spend": m["holdout_spend"],
        "gbdt_rounds": m["gbdt_rounds"],
        "hybrid_rounds": m["hybrid_rounds"],
        "acceptance": acceptance,
        "jobs": jobs,
        "duration_s": time.perf_counter() - started,
    }


def table(report: dict[str, Any]) -> str:
    auc, totals, mae, rmse = report["auc"], report["holdout_purchases"], report["mae"], report["rmse"]
    actual = totals["actual"]
    lines = [
        f"CDNOW churn/CLV: {report['n_customers']} customers, calibration {report['calibration_weeks']} weeks, "
        f"holdout {report['holdout_weeks']:g} weeks, seed {report['seed']}, test half {report['n_test']}",
        "paper fit (2,357 customers): " + ", ".join(f"{k}={v:.4f}" for k, v in report["paper_fit"].items())
        + f"  max rel. err vs r=0.243 alpha=4.414 a=0.793 b=2.426: {report['paper_fit_max_rel_err']:.4f}",
        "",
        f"{'model (test half)':<34}{'AUC':>8}{'MAE':>8}{'RMSE':>8}{'holdout purchases':>19}{'vs actual':>11}",
    ]
    rows = [
        ("BG/NBD expected purchases", "bgnbd", "bgnbd"),
        ("BG/NBD P(alive)", "bgnbd_p_alive", None),
        ("GBDT classifier / Poisson count", "gbdt", "gbdt"),
        ("hybrid GBDT (+BG/NBD features)", "hybrid", "hybrid"),
        ("all zero", None, "zero"),
    ]
    for label, auc_key, count_key in rows:
        a = f"{auc[auc_key]:.4f}" if auc_key else "-"
        if count_key:
            total = totals.get(count_key, 0.0)  # "zero" predicts none
            share = f"{(total - actual) / actual:+.1%}"
            lines.append(f"{label:<34}{a:>8}{mae[count_key]:>8.3f}{rmse[count_key]:>8.3f}{total:>19,.0f}{share:>11}")
        else:
            lines.append(f"{label:<34}{a:>8}{'-':>8}{'-':>8}{'-':>19}{'-':>11}")
    lines.append(f"{'actual':<34}{'':>8}{'':>8}{'':>8}{actual:>19,.0f}")
    spend = report["holdout_spend"]
    lines.append(
        f"holdout spend (x Gamma-Gamma): actual ${spend['actual']:,.0f}; GBDT ${spend['gbdt_x_gamma_gamma']:,.0f} "
        f"({spend['gbdt_x_gamma_gamma'] / spend['actual'] - 1:+.1%}); BG/NBD ${spend['bgnbd_x_gamma_gamma']:,.0f} "
        f"({spend['bgnbd_x_gamma_gamma'] / spend['actual'] - 1:+.1%})"
    )
    acc = report["acceptance"]
    lines.append(
        f"acceptance: best={acc['best_model']} AUC margin {acc['auc_margin_over_bgnbd']:+.4f} (>= {AUC_MARGIN}), "
        f"total {acc['best_total_rel_err']:+.1%} (within {TOTAL_TOLERANCE:.0%}) -> "
        f"{'PASS' if acc['passed'] else 'FAIL'}   [{report['duration_s']:.0f} s]"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibration-weeks", type=int, default=churn.DEFAULT_CALIBRATION_WEEKS,
                        help=f"{churn.MIN_CALIBRATION_WEEKS}..{churn.STUDY_WEEKS - 1} (default 39 of 78)")
    parser.add_argument("--seed", type=int, default=churn.DEFAULT_SEED, help="train/test split and LightGBM seed")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--jobs", type=int, default=2, help="LightGBM threads")
    parser.add_argument("--source-dir", type=Path, default=None, help="folder with the lifetimes wheel")
    parser.add_argument("--strict", action="store_true", help="exit 1 when an acceptance check fails")
    args = parser.parse_args(argv)
    if not churn.MIN_CALIBRATION_WEEKS <= args.calibration_weeks <= churn.STUDY_WEEKS - 1:
        parser.error(f"--calibration-weeks must be {churn.MIN_CALIBRATION_WEEKS}..{churn.STUDY_WEEKS - 1}")
    if args.json is not None and args.json.parent and not args.json.parent.exists():
        args.json.parent.mkdir(parents=True, exist_ok=True)
    try:
        report = run(args.calibration_weeks, args.seed, args.jobs, args.source_dir)
    except DatasetUnavailable as error:
        print(f"churn_cdnow: FAILED, CDNOW dataset unavailable: {error}", file=sys.stderr)
        return 1
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if args.strict and not report["acceptance"]["passed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
