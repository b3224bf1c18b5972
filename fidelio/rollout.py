"""Progressive rollout of a challenger: the serving config's steps (5 % → 25 % → 50 % → 100 %),
the guardrails that must hold before each step, promotion, and the one-call rollback.

Guardrails compare the two variants on the decisions logged since the current step began
(non-holdout decision records in DynamoDB, each with its `variant` and its joined outcomes),
per decision: conversions must not drop beyond a threshold; unsubscribes, complaints and
errors (failed sends, bounces) must not rise beyond a small tolerance. A step advances only
over a minimum sample per variant; a breached guardrail rolls the challenger back at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from fidelio.lifecycle import Lifecycle, LifecycleError
from functions.dal.serving_config import ServingConfig, write_config

STEPS: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0)
CONVERSION_OUTCOMES = frozenset({"redeemed", "clicked"})


@dataclass(frozen=True)
class Guardrails:
    min_decisions: int = 200  # stored decisions (sends and holdout would-be sends) per variant, since the step began
    max_conversion_drop: float = 0.10  # relative: challenger >= champion x (1 - this) ...
    conversion_noise_floor: float = 0.001  # ... or within this absolute difference
    rate_tolerance: float = 0.001  # unsubscribe / complaint / error: challenger <= champion + this


@dataclass
class VariantMetrics:
    version: str = ""
    decisions: int = 0
    sends: int = 0
    conversions: int = 0
    unsubscribes: int = 0
    complaints: int = 0
    errors: int = 0

    def rate(self, count: int) -> float:
        return count / self.decisions if self.decisions else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "conversion_rate": self.rate(self.conversions),
                "unsubscribe_rate": self.rate(self.unsubscribes), "complaint_rate": self.rate(self.complaints),
                "error_rate": self.rate(self.errors)}


@dataclass
class Verdict:
    ok: bool  # every guardrail holds over enough decisions
    enough: bool  # both variants reached the minimum sample
    reasons: list[str] = field(default_factory=list)  # what fails (or is missing), in words
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


def variant_metrics(records: Iterable[Mapping[str, Any]]) -> dict[str, VariantMetrics]:
    """Per variant, from decision records ({body, status, outcomes, holdout}); holdout left out."""
    found: dict[str, VariantMetrics] = {}
    for record in records:
        if record.get("holdout"):
            continue
        body = record["body"]
        m = found.setdefault(body.get("variant", "champion"), VariantMetrics(version=body.get("model_version", "")))
        outcomes = set(record.get("outcomes") or [])
        m.decisions += 1
        m.sends += record.get("status") == "sent"
        m.conversions += bool(CONVERSION_OUTCOMES & outcomes)
        m.unsubscribes += "unsubscribed" in outcomes
        m.complaints += "complained" in outcomes
        m.errors += record.get("status") == "failed" or "bounced" in outcomes
    return found


def decision_records_since(since: float) -> list[dict[str, Any]]:
    """Decision records decided at or after `since` (a scan: the rollout CLI, not a hot path)."""
    from functions.dal.tables import DecisionRecord

    return [{"body": r.body, "status": r.status, "outcomes": list(r.outcomes or []), "holdout": r.holdout}
            for r in DecisionRecord.scan(DecisionRecord.decided_at >= since)]


def check(metrics: Mapping[str, VariantMetrics], rules: Guardrails) -> Verdict:
    champion, challenger = metrics.get("champion", VariantMetrics()), metrics.get("challenger", VariantMetrics())
    verdict = Verdict(ok=False, enough=False, metrics={k: v.as_dict() for k, v in metrics.items()})
    short = [f"{name} has {m.decisions} decisions (needs {rules.min_decisions})"
             for name, m in (("champion", champion), ("challenger", challenger)) if m.decisions < rules.min_decisions]
    if short:
        verdict.reasons = ["not enough data: " + "; ".join(short)]
        return verdict
    verdict.enough = True
    c_conv, k_conv = challenger.rate(challenger.conversions), champion.rate(champion.conversions)
    if c_conv < k_conv * (1 - rules.max_conversion_drop) and k_conv - c_conv > rules.conversion_noise_floor:
        verdict.reasons.append(f"conversion {c_conv:.4f} < champion {k_conv:.4f} "
                               f"- {rules.max_conversion_drop:.0%}")
    for label, attribute in (("unsubscribe", "unsubscribes"), ("complaint", "complaints"), ("error", "errors")):
        c_rate = challenger.rate(getattr(challenger, attribute))
        k_rate = champion.rate(getattr(champion, attribute))
        if c_rate > k_rate + rules.rate_tolerance:
            verdict.reasons.append(f"{label} rate {c_rate:.4f} > champion {k_rate:.4f} + {rules.rate_tolerance}")
    verdict.ok = not verdict.reasons
    return verdict


def _require_config(life: Lifecycle) -> ServingConfig:
    config = life.config()
    if config is None:
        raise LifecycleError("no serving config yet: the bundled model serves; `fidelio promote VERSION` starts one")
    return config


def _write(life: Lifecycle, config: ServingConfig, now: float, event: str, **fields: Any) -> ServingConfig:
    config = config.model_copy(update={"changed_at": now})
    config = ServingConfig.model_validate(config.model_dump())  # re-validate the whole config
    write_config(life.ssm, life.settings.serving_config_parameter, config)
    if config.challenger:
        life.record(config.challenger, status=event, share=config.challenger_share, **fields)
    return config


def start(life: Lifecycle, version: str, now: float, share: float = STEPS[0], full: bool = False,
          force: bool = False) -> ServingConfig:
    """`fidelio promote VERSION`: serve it as the challenger to `share` of members, or as the
    champion at once with `full`. Needs a passed evaluation unless `force`."""
    entry = life.entry(version)
    evaluation = entry.get("evaluation")
    if not force and not (evaluation and evaluation.get("passed")):
        why = evaluation["reason"] if evaluation else "not evaluated: run `fidelio evaluate " + version + "`"
        raise LifecycleError(f"{version} did not pass the gate ({why}); --force overrides")
    if not 0 < share <= 1:
        raise LifecycleError(f"--share {share} must be in (0, 1], e.g. 0.05")
    champion = life.champion()
    life.fetch(version)  # fails now, not in decide, when the artifact is missing
    if version == champion:
        raise LifecycleError(f"{version} is already the champion")
    current = _require_config(life)
    if full or share >= 1.0:
        config = ServingConfig(champion=version, previous_champion=champion, changed_at=now)
        write_config(life.ssm, life.settings.serving_config_parameter, config)
        life.record(version, status="champion", promoted_at=now)
        return config
    if current.challenger and current.challenger != version:
        life.record(current.challenger, status="replaced", share=0.0)
    return _write(life, ServingConfig(champion=champion, challenger=version, challenger_share=share,
                                      previous_champion=current.previous_champion), now, "rollout")


def status(life: Lifecycle, rules: Guardrails) -> tuple[ServingConfig | None, Verdict | None]:
    config = life.config()
    if config is None or config.challenger is None:
        return config, None
    return config, check(variant_metrics(decision_records_since(config.changed_at)), rules)


def next_step(share: float) -> float:
    return next((s for s in STEPS if s > share + 1e-9), 1.0)


def advance(life: Lifecycle, rules: Guardrails, now: float) -> tuple[ServingConfig, Verdict, str]:
    """`fidelio rollout advance`: next step when the guardrails hold over the minimum sample;
    a breached guardrail rolls the challenger back; too little data refuses. Returns the config
    in force afterwards, the verdict and what happened ("advanced", "promoted", "rolled back",
    "refused")."""
    config = _require_config(life)
    if config.challenger is None:
        raise LifecycleError(f"no rollout in progress (champion {config.champion}); `fidelio promote VERSION`")
    verdict = check(variant_metrics(decision_records_since(config.changed_at)), rules)
    if not verdict.enough:
        return config, verdict, "refused"
    if not verdict.ok:
        life.record(config.challenger, status="rolled back", rollback_reason="; ".join(verdict.reasons))
        rolled = ServingConfig(champion=config.champion, previous_champion=config.previous_champion, changed_at=now)
        write_config(life.ssm, life.settings.serving_config_parameter, rolled)
        return rolled, verdict, "rolled back"
    share = next_step(config.challenger_share)
    if share >= 1.0:
        promoted = ServingConfig(champion=config.challenger, previous_champion=config.champion, changed_at=now)
        write_config(life.ssm, life.settings.serving_config_parameter, promoted)
        life.record(config.challenger, status="champion", promoted_at=now)
        life.record(config.champion, status="previous champion")
        return promoted, verdict, "promoted"
    return _write(life, config.model_copy(update={"challenger_share": share}), now, "rollout"), verdict, "advanced"


def rollback(life: Lifecycle, now: float) -> tuple[ServingConfig, str]:
    """`fidelio rollback`: stop a rollout in progress (every member back on the champion), or,
    with none, restore the previous champion. One config write either way."""
    config = _require_config(life)
    if config.challenger is not None:
        life.record(config.challenger, status="rolled back", rollback_reason="manual rollback")
        restored = ServingConfig(champion=config.champion, previous_champion=config.previous_champion, changed_at=now)
        write_config(life.ssm, life.settings.serving_config_parameter, restored)
        return restored, f"rollout of {config.challenger} stopped; {config.champion} serves every member"
    if config.previous_champion is None:
        raise LifecycleError(f"nothing to roll back to: {config.champion} has no previous champion")
    # previous_champion is cleared: a second rollback must not bring the demoted model back.
    restored = ServingConfig(champion=config.previous_champion, changed_at=now)
    write_config(life.ssm, life.settings.serving_config_parameter, restored)
    life.record(config.champion, status="rolled back", rollback_reason="manual rollback")
    life.record(config.previous_champion, status="champion")
    return restored, f"{config.previous_champion} restored as champion (was {config.champion})"
