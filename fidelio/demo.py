"""`fidelio demo`: the main job. A simulated loyalty program runs for `--days` days through
Fidelio's stack on the local AWS stand-in; the same world is then replayed in-process under
the baselines (blast, random, oracle); the report compares them, measures lift against the
global holdout and checks the off-policy estimates against the simulator's truth."""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OFFERS = REPO / "examples" / "offers.yaml"


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a share between 0 and 1")
    return value


def _days(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 30.0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of days in (0, 30]")
    return value


def _shown(value: float | None, spec: str, none: str = "n/a") -> str:
    return none if value is None else format(value, spec)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive whole number")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out/demo", help="folder for summary.json and report.html")
    parser.add_argument("--members", type=_positive, default=300, help="simulated members (default 300)")
    parser.add_argument("--days", type=_positive, default=30, help="days to simulate (default 30)")
    parser.add_argument("--seed", type=int, default=1, help="every figure depends on it")
    parser.add_argument("--fatigue-sensitivity", type=float, default=1.0,
                        help="how strongly members react to message load (default 1.0)")
    parser.add_argument("--new-member-share", type=_share, default=0.1,
                        help="share of members who enrol during the run (default 0.1)")
    parser.add_argument("--retrain-day", type=int, default=None,
                        help="day on which a challenger is trained and gated (default: mid-run)")
    parser.add_argument("--offers", default=str(DEFAULT_OFFERS), help="offer catalog (YAML)")
    parser.add_argument("--holdout-share", type=_share, default=0.2,
                        help="members who get no marketing, to measure the lift (default 0.2 for a "
                             "few hundred members; production default 0.05)")
    parser.add_argument("--lift-window-days", type=_days, default=7.0,
                        help="how long after an offer message a redemption of its offer counts for it, "
                             "in the lift of the messages (default 7: the simulator's conversions happen "
                             "within the week)")
    parser.add_argument("--champion", default="cold-start",
                        help="model the programme starts with: 'cold-start' (default: no model trained on "
                             "this programme yet, the engagement prior serves) or a model folder such as "
                             "model_artifacts/offers")


def run_demo(args: argparse.Namespace) -> int:
    from fidelio.closed_loop import quiet_local_functions

    quiet_local_functions()
    from tqdm import tqdm

    from fidelio.baselines import run_baseline
    from fidelio.closed_loop import TARGET_POLICY, run_closed_loop
    from fidelio.errors import UsageError
    from fidelio.report.summary import build_summary, write_summary
    from fidelio.sim import SimConfig, load_offers
    from functions.domain.decision import PolicyConfig

    warnings.filterwarnings("ignore", message="No application metrics")
    if args.members > 20_000:
        raise UsageError(f"--members {args.members} is more than the local stand-in can run; use at most 20000")
    if not Path(args.offers).exists():
        raise UsageError(f"{args.offers}: no such offer catalog")
    offers = load_offers(args.offers)
    champion = None if args.champion == "cold-start" else Path(args.champion)
    if champion is not None and not (champion / "model.onnx").exists():
        raise UsageError(f"--champion {args.champion}: no model.onnx there; give a model folder "
                         "(e.g. model_artifacts/offers) or 'cold-start'")
    config = SimConfig(members=args.members, days=args.days, seed=args.seed,
                       fatigue_sensitivity=args.fatigue_sensitivity, new_member_share=args.new_member_share)
    started = time.perf_counter()
    print(f"Fidelio demo: {args.members} members, {args.days} days, seed {args.seed} "
          "(local AWS stand-in on 127.0.0.1)")
    with tempfile.TemporaryDirectory(prefix="fidelio-demo-") as work, \
            tqdm(total=args.days, desc="days through the stack", unit="day") as bar:
        log = run_closed_loop(config, offers, Path(work), progress=lambda day: bar.update(1),
                              retrain_day=args.retrain_day, champion_dir=champion,
                              holdout_share=args.holdout_share)
    sends = log.policies["fidelio"].sends
    for name in ("blast", "random", "oracle"):
        print(f"baseline {name} on the same world ...", flush=True)
        log.policies[name] = run_baseline(name, config, offers, PolicyConfig(holdout_share=args.holdout_share),
                                          sends_budget=sends if name == "random" else None, rng_seed=args.seed)
    log.parameters["command"] = (f"fidelio demo --members {args.members} --days {args.days} --seed {args.seed} "
                                 f"--fatigue-sensitivity {args.fatigue_sensitivity} "
                                 f"--new-member-share {args.new_member_share} --holdout-share {args.holdout_share} "
                                 f"--lift-window-days {args.lift_window_days:g} --champion {args.champion}")
    summary = build_summary(log, TARGET_POLICY, lift_window_days=args.lift_window_days)
    summary_path, report_path = write_summary(summary, args.out)
    _print_summary(summary, time.perf_counter() - started)
    print(f"report: {report_path}\nsummary: {summary_path}")
    return 0


def _print_summary(summary: dict, seconds: float) -> None:
    events = summary["events"]
    print(f"\nevents: published {events['published']}, processed {events['processed']}, "
          f"dead-lettered {events['dead_lettered']} ({seconds / 60:.1f} min)")
    print(f"{'policy':<8}{'sends':>8}{'conv.':>7}{'revenue':>10}{'unsubs':>8}{'net value':>11}"
          f"{'expected':>10}")
    for name, p in summary["policies"].items():
        expected = p.get("expected_net_value")
        print(f"{name:<8}{p['sends']:>8}{p['conversions']:>7}{p['revenue']:>10.0f}{p['unsubscribes']:>8}"
              f"{p['net_value']:>11.1f}{'' if expected is None else f'{expected:>10.1f}'}")
    r = summary["ratios"]
    print("Fidelio ÷ blast, ÷ oracle: net value " + " / ".join(
        "n/a" if r.get(k) is None else f"{r[k]:.2f}" for k in ("net_value_vs_blast", "net_value_vs_oracle"))
        + "; expected net value " + " / ".join(
        "n/a" if r.get(k) is None else f"{r[k]:.2f}"
        for k in ("expected_net_value_vs_blast", "expected_net_value_vs_oracle")))
    print(f"unsubscribes per member, Fidelio ÷ blast: {_shown(r.get('unsubscribes_per_member_vs_blast'), '.2f')} "
          f"(exact 95 % CI {_shown(r.get('unsubscribes_per_member_vs_blast_ci_low'), '.2f')} to "
          f"{_shown(r.get('unsubscribes_per_member_vs_blast_ci_high'), '.2f', 'unbounded')}); "
          f"expected {_shown(r.get('expected_unsubscribes_per_member_vs_blast'), '.2f')}")
    lift = summary["lift"]
    if lift.get("absolute") is not None:
        if lift["relative"] is None:
            relative = "relative lift undefined (no withheld message's offer was redeemed)"
        else:
            relative = (f"relative {lift['relative']:+.1%} [{_shown(lift['ci_low'], '+.1%')}, "
                        f"{_shown(lift['ci_high'], '+.1%', 'unbounded')}]")
        print(f"lift of the messages (offer redeemed within {lift['window_days']:g} days, sent vs withheld): "
              f"{lift['treated_redeemed']}/{lift['treated_exposures']} vs {lift['holdout_redeemed']}/"
              f"{lift['holdout_exposures']}; {lift['incremental']:.1f} incremental conversions, per message "
              f"{lift['absolute']:+.4f} [{lift['absolute_ci_low']:+.4f}, {lift['absolute_ci_high']:+.4f}]; {relative}")
    members = summary["lift_by_metric"]["conversions"]
    if members.get("relative") is not None:
        print(f"member-level lift (every redemption of the run): {members['relative']:+.1%} "
              f"[{members['ci_low']:+.1%}, {members['ci_high']:+.1%}]")
    ope = summary["ope"]
    if ope.get("truth") is not None:
        dr = ope["dr"]
        print(f"off-policy value of '{ope.get('target')}': truth {ope['truth']:.4f}, DR {dr['estimate']:.4f} "
              f"[{dr['ci_low']:.4f}, {dr['ci_high']:.4f}]")
    for version in summary.get("model_versions", []):
        print(f"retraining: {version.get('reason')}")
