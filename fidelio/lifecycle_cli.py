"""`fidelio train | evaluate | promote | rollout | rollback | models` against the local stand-in
(moto's S3, SSM, DynamoDB) and the local registry index: the same entry points a pipeline
step calls (fidelio/lifecycle.py, fidelio/rollout.py)."""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fidelio.errors import UsageError

DEFAULT_WINDOW_DAYS = 30


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from error


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; e.g. 0.05 for 5 %") from error
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must be in (0, 1]; e.g. 0.05 for 5 %")
    return value


def lifecycle_for(stack: Any, state_dir: Path) -> Any:
    """A Lifecycle on the local stand-in, with decide's settings (bucket, SSM parameter)."""
    from fidelio.lifecycle import Lifecycle
    from functions.dal.clients import AwsClients
    from functions.dal.tables import bind_tables
    from functions.settings import settings_from_env

    settings = settings_from_env(stack.function_env("decide"))
    bind_tables(settings)
    clients = AwsClients(settings)
    return Lifecycle(settings=settings, s3=clients.s3, ssm=clients.client("ssm"),
                     index_path=state_dir / "registry" / f"{stack.names.prefix}-offers.json")


def _today() -> date:
    from functions import clock

    return clock.now().date()


def cmd_train(life: Any, args: argparse.Namespace) -> int:
    from fidelio import lifecycle
    from fidelio.models.offers import NotEnoughData, build_training_set, event_log

    work = life.index_path.parent / "work"
    try:
        if args.events is not None or args.offers is not None:
            if args.events is None or args.offers is None:
                raise UsageError("--events and --offers go together (an event log and its offer catalog)")
            for path in (args.events, args.offers):
                if not path.is_file():
                    raise UsageError(f"{path}: no such file")
            if args.split_date is None:
                raise UsageError("--split-date is needed with --events (train before it, hold out after)")
            events, offers, source = event_log(args.events, args.offers)
            version, card = lifecycle.train_challenger(life, build_training_set(events, offers), args.split_date,
                                                       source, work)
        else:
            end = args.to or _today()
            start = args.from_ or end - timedelta(days=DEFAULT_WINDOW_DAYS - 1)
            if start > end:
                raise UsageError(f"--from {start} is after --to {end}")
            exclude = set()
            if args.exclude_file is not None:
                if not args.exclude_file.is_file():
                    raise UsageError(f"{args.exclude_file}: no such file")
                exclude = {line.strip() for line in args.exclude_file.read_text().splitlines() if line.strip()}
            version, card, exported = lifecycle.train_from_archive(life, start, end, work, exclude,
                                                                   args.test_fraction)
            print(f"exported {exported.rows} decisions ({exported.excluded} excluded) to {len(exported.keys)} "
                  f"Parquet file(s); trained on {card['training_data']['sends']} sends")
            print(f"registered {version}; next: `fidelio evaluate {version}`")
            return 0
    except NotEnoughData as error:
        raise UsageError(f"cannot train: {error}") from error
    m = card["metrics"]
    print(f"registered {version}: {m['train_pairs']} train / {m['test_pairs']} held-out examples, held-out AUC "
          f"{m['auc']['fidelio']:.3f}; next: `fidelio evaluate {version}`")
    return 0


def cmd_evaluate(life: Any, args: argparse.Namespace) -> int:
    from fidelio import lifecycle

    result = lifecycle.evaluate(life, args.version)
    for role in ("champion", "challenger"):
        f = result.models[role]
        ope = f.get("ope") or {}
        ope_text = (f", off-policy value ({ope['estimator']}) {ope['estimate']:.4f} "
                    f"[{ope['ci_low']:.4f}, {ope['ci_high']:.4f}]" if ope else "")
        print(f"{role:10} {f['version']}: AUC {f['auc']:.3f}, Brier {f['brier']:.4f}, ECE {f['ece']:.4f}, "
              f"mean prediction {f['mean_prediction']:.4f}{ope_text}")
    print(f"{result.examples} held-out examples ({result.positives} positive): {result.reason}")
    return 0 if result.passed else 1


def cmd_promote(life: Any, args: argparse.Namespace) -> int:
    from fidelio import rollout
    from functions import clock

    config = rollout.start(life, args.version, clock.now().timestamp(), share=args.share, full=args.full,
                           force=args.force)
    if config.challenger is None:
        print(f"{config.champion} is the champion (previous: {config.previous_champion}); "
              "`fidelio rollback` restores the previous one")
    else:
        print(f"rollout started: {config.challenger} serves {config.challenger_share:.0%} of members, "
              f"{config.champion} the rest; `fidelio rollout status|advance`")
    return 0


def _print_verdict(verdict: Any) -> None:
    for variant, m in sorted(verdict.metrics.items()):
        print(f"  {variant:10} {m['version']}: {m['decisions']} decisions, conversion {m['conversion_rate']:.4f}, "
              f"unsubscribe {m['unsubscribe_rate']:.4f}, complaint {m['complaint_rate']:.4f}, "
              f"error {m['error_rate']:.4f}")
    for reason in verdict.reasons:
        print(f"  - {reason}")


def cmd_rollout(life: Any, args: argparse.Namespace) -> int:
    from fidelio import rollout
    from functions import clock

    rules = rollout.Guardrails(min_decisions=args.min_decisions)
    if args.action == "status":
        config, verdict = rollout.status(life, rules)
        if config is None:
            print("no serving config: the bundled model serves every member")
            return 0
        if verdict is None:
            print(f"no rollout in progress: {config.champion} serves every member "
                  f"(previous champion: {config.previous_champion})")
            return 0
        state = "guardrails hold" if verdict.ok else ("waiting for data" if not verdict.enough else "guardrails FAIL")
        print(f"{config.challenger} at {config.challenger_share:.0%} against {config.champion}: {state}")
        _print_verdict(verdict)
        return 0
    config, verdict, outcome = rollout.advance(life, rules, clock.now().timestamp())
    if outcome == "advanced":
        print(f"advanced: {config.challenger} now serves {config.challenger_share:.0%} of members")
    elif outcome == "promoted":
        print(f"promoted: {config.champion} is the champion (previous: {config.previous_champion})")
    elif outcome == "rolled back":
        print(f"rolled back: a guardrail failed; {config.champion} serves every member")
    else:
        print("refused: " + "; ".join(verdict.reasons))
    _print_verdict(verdict)
    return 0 if outcome in {"advanced", "promoted"} else 1


def cmd_rollback(life: Any, args: argparse.Namespace) -> int:
    from fidelio import rollout
    from functions import clock

    _, message = rollout.rollback(life, clock.now().timestamp())
    print(message + f" (decide picks it up within {life.settings.serving_config_ttl_s:g} s)")
    return 0


def cmd_models(life: Any, args: argparse.Namespace) -> int:
    config = life.config()
    for version, entry in sorted(life.index()["models"].items()):
        role = ""
        if config is not None:
            role = {config.champion: "champion", config.challenger: f"challenger {config.challenger_share:.0%}",
                    config.previous_champion: "previous champion"}.get(version, "")
        evaluation = (entry.get("evaluation") or {}).get("reason", "not evaluated")
        print(f"{version:40} {role:18} {entry.get('status', ''):12} {evaluation}")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "promote": cmd_promote, "rollout": cmd_rollout,
            "rollback": cmd_rollback, "models": cmd_models}


def run(args: argparse.Namespace, stack: Any, state_dir: Path) -> int:
    from fidelio.lifecycle import LifecycleError
    from functions.dal.serving_config import InvalidServingConfig

    life = lifecycle_for(stack, state_dir)
    try:
        return COMMANDS[args.command](life, args)
    except (LifecycleError, InvalidServingConfig) as error:
        raise UsageError(str(error)) from error


def configure(sub: Any, handler: Any) -> None:
    """Add the lifecycle subcommands to `fidelio`'s subparsers; `handler(args)` runs them."""
    p = sub.add_parser("train", help="train a challenger on the decision log (or an event log) and register it")
    p.add_argument("--from", dest="from_", type=_date, default=None, help="first day of the log (YYYY-MM-DD)")
    p.add_argument("--to", type=_date, default=None, help="last day of the log (default: today)")
    p.add_argument("--split-date", type=_date, default=None,
                   help="with --events: train before this day, hold out from it")
    p.add_argument("--test-fraction", type=float, default=None,
                   help="decision log: the latest share held out for evaluate (default 0.2)")
    p.add_argument("--exclude-file", type=Path, default=None, help="pseudonymized ids to leave out, one a line")
    p.add_argument("--events", type=Path, default=None, help="train on this event log (JSON lines) instead")
    p.add_argument("--offers", type=Path, default=None, help="the offer catalog of --events")
    p.set_defaults(func=handler)
    p = sub.add_parser("evaluate", help="gate a registered model against the champion (AUC, Brier, off-policy value)")
    p.add_argument("version")
    p.set_defaults(func=handler)
    p = sub.add_parser("promote", help="start a rollout of a model that passed the gate")
    p.add_argument("version")
    p.add_argument("--share", type=_share, default=0.05, help="challenger's share of members (default 0.05)")
    p.add_argument("--full", action="store_true", help="make it the champion at once")
    p.add_argument("--force", action="store_true", help="skip the gate check (recorded in the index)")
    p.set_defaults(func=handler)
    p = sub.add_parser("rollout", help="status of the rollout, or advance it when the guardrails hold")
    p.add_argument("action", choices=["status", "advance"])
    p.add_argument("--min-decisions", type=int, default=200, help="per variant before a step (default 200)")
    p.set_defaults(func=handler)
    p = sub.add_parser("rollback", help="stop the rollout, or restore the previous champion")
    p.set_defaults(func=handler)
    p = sub.add_parser("models", help="registered models, their role and gate verdict")
    p.set_defaults(func=handler)
