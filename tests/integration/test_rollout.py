"""Local end-to-end model lifecycle on moto: train challengers on a simulated program, gate them
against the champion, roll the good one out 5 % → 25 % → 50 % → 100 % under guardrails while
decide serves each member with their variant's model, then roll back in one call and see
decide switch back within one config refresh. Also: the Parquet training export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fidelio import cli, lifecycle, lifecycle_cli, rollout, training_export
from fidelio.local.runner import LocalRunner
from fidelio.models.offers import Source, TrainingSet, build_training_set
from fidelio.sim import Message, SimConfig, World, load_offers
from fidelio.sim.config import EMAIL_RATES
from functions import clock
from functions.dal.decisions import add_outcome
from functions.dal.members import import_history
from functions.dal.offers import replace_catalog
from functions.dal.serving_config import variant_for
from functions.dal.tables import DecisionRecord
from functions.domain import events as ev
from functions.domain.features import FEATURE_NAMES
from functions.handlers import decide, deps
from infra import spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DAYS = 42
SPLIT_DAY = 30
SERVED_MEMBERS = 300


@pytest.fixture(scope="module")
def program() -> dict[str, Any]:
    """A simulated program with responsive members, emailed random offers at 10:00 by a
    logging policy; its events and the offer model's examples (sends, label = redeemed)."""
    offers = load_offers()
    config = SimConfig(members=800, days=DAYS, seed=5,
                       email=EMAIL_RATES.model_copy(update={"click_given_open": 0.35, "convert_given_click": 0.5}))
    world, rng = World(config, offers), np.random.default_rng(0)
    events: list[Any] = []
    enrolled: set[str] = set()
    for day in range(DAYS):
        todays = world.events_for_day(day)
        events.extend(todays)
        enrolled |= {e.member_id for e in todays if isinstance(e, ev.MemberEnrolled)}
        at = world.day_start(day) + timedelta(hours=10)
        active = [o for o in offers if o.active_at(at) and ev.Channel.EMAIL in o.channels]
        for member in sorted(enrolled):
            if active and rng.random() < 0.25:
                offer = active[int(rng.integers(len(active)))]
                decision_id = f"log-{member}-{day}"
                events.append(ev.NotificationSent(event_id=f"s-{decision_id}", member_id=member, occurred_at=at,
                                                  decision_id=decision_id, channel=ev.Channel.EMAIL,
                                                  offer_id=offer.offer_id, topic=ev.Topic(offer.topic.value)))
                events.extend(world.deliver(Message(member_id=member, decision_id=decision_id, channel="email",
                                                    offer_id=offer.offer_id, topic=offer.topic.value, sent_at=at)))
    member_events = [e for e in events if isinstance(e, ev.MemberEvent)]
    return {"events": member_events, "offers": offers, "data": build_training_set(member_events, offers),
            "split": (config.start + timedelta(days=SPLIT_DAY)).date(), "end": config.start + timedelta(days=DAYS)}


class Stand:
    """The local stack with decide's dependencies, a lifecycle on it and a fake monotonic clock
    for decide's config cache."""

    def __init__(self, stack: Any, tmp_path: Path, program: dict[str, Any]):
        self.stack, self.tmp = stack, tmp_path
        self.runner = LocalRunner(stack)
        self.runner.update_settings("decide", model_cache_dir=str(tmp_path / "model-cache"))
        deps.use(self.runner._deps["decide"])
        self.monotonic = [1000.0]
        decide.reset_model(config_clock=lambda: self.monotonic[0])
        self.life = lifecycle_cli.lifecycle_for(stack, tmp_path)
        self.now = program["end"] + timedelta(hours=14)
        clock.set_clock(lambda: self.now)
        # decide serves a part of the program (fewer decisions per sweep: a faster test)
        members = sorted({e.member_id for e in program["events"]})[:SERVED_MEMBERS]
        import_history(e for e in program["events"] if e.member_id in set(members))
        replace_catalog(program["offers"])
        self.sweeps = 0

    def sweep(self) -> list[dict[str, Any]]:
        """One daily sweep through decide (every member decided); the new decisions' bodies."""
        self.sweeps += 1
        self.now += timedelta(hours=1)
        body = {"detail-type": "sweep.requested", "source": spec.EVENT_SOURCE, "detail": {
            "event_id": f"sweep-test-{self.sweeps}", "occurred_at": self.now.isoformat(), "schema_version": 1,
            "sweep": "daily"}}
        self.stack.client("sqs").send_message(QueueUrl=self.stack.queue_urls["decide"], MessageBody=json.dumps(body))
        decide_spec = next(f for f in spec.FUNCTIONS if f.logical_name == "decide")
        while self.runner.poll_once(decide_spec):
            pass
        # Every decision is archived; only those that send (or would have) are stored.
        archived = training_export.read_archive(self.life.s3, self.life.settings.data_bucket, [self.now.date()])
        bodies = [d for d in archived if d["cause_id"] == f"sweep-test-{self.sweeps}"]
        stored = {r.decision_id for r in DecisionRecord.scan(DecisionRecord.trigger_event_id == f"sweep-test-{self.sweeps}")}
        assert stored == {d["decision_id"] for d in bodies if d["intended"]["kind"] == "send"}
        return bodies

    def refresh(self, seconds: float = 60.0) -> None:
        """Let decide's config cache expire (what a minute does in a warm container)."""
        self.monotonic[0] += seconds

    def train(self, data: TrainingSet, split: Any, name: str) -> str:
        version, _ = lifecycle.train_challenger(self.life, data, split, Source("sim", name, "0" * 64),
                                                self.tmp / name)
        return version


@pytest.fixture
def stand(local_stack, tmp_path, program) -> Any:
    yield Stand(local_stack, tmp_path, program)
    decide.reset_model()


def _versions(bodies: list[dict[str, Any]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for body in bodies:
        found.setdefault(body["variant"], set()).add(body["model_version"])
    return found


def test_gate_rollout_promotion_and_rollback(stand, program, monkeypatch, capsys):
    life = stand.life
    data: TrainingSet = program["data"]
    # Given a challenger trained on the program's log, and a deliberately worse one: trained on
    # inverted labels, it learns to rank converters last (shuffled labels only make a noisy
    # model, which can beat a weak champion by chance on a few hundred examples)
    good = stand.train(data, program["split"], "good")
    split_at = datetime(program["split"].year, program["split"].month, program["split"].day, tzinfo=UTC).timestamp()
    before = data.decided_at < split_at  # the held-out side keeps the true labels
    inverted = TrainingSet(data.rows, np.where(before, 1 - data.labels, data.labels).astype(np.int8),
                           data.targetings)
    worse = stand.train(inverted, program["split"], "worse")
    assert good != worse

    # When both are judged against the champion (the bundled model, registered on first use)
    refused = lifecycle.evaluate(life, worse)
    passed = lifecycle.evaluate(life, good)
    champion = passed.champion
    # Then only the better one passes, and the refusal reads as a reason
    assert not refused.passed and refused.reason.startswith(f"refused candidate {worse}: AUC ")
    assert f"< champion {refused.models['champion']['auc']:.4f} + 0.005" in refused.reason
    assert passed.passed and passed.reason.startswith(f"passed: candidate {good} beats champion {champion}")
    assert passed.models["challenger"]["auc"] > passed.models["champion"]["auc"] + 0.005
    assert passed.examples == refused.examples == len(data.split(split_at)[1])
    # And the refused one cannot be rolled out
    with pytest.raises(lifecycle.LifecycleError, match="did not pass the gate"):
        rollout.start(life, worse, stand.now.timestamp())

    # When the good one starts at 5 %
    rollout.start(life, good, stand.now.timestamp(), share=0.05)
    rules = rollout.Guardrails(min_decisions=10)
    _, verdict, outcome = rollout.advance(life, rules, stand.now.timestamp())
    # Then no step is taken before there is data
    assert outcome == "refused" and verdict.reasons[0].startswith("not enough data")
    stand.refresh()
    bodies = stand.sweep()
    # And decide served each member with their sticky variant's model, and logged both
    salt = deps.deps().settings.variant_salt
    config = life.config()
    assert {b["member_id"]: b["variant"] for b in bodies} == {b["member_id"]: variant_for(b["member_id"], config, salt)
                                                              for b in bodies}
    assert _versions(bodies) == {"champion": {champion}, "challenger": {good}}
    share = sum(b["variant"] == "challenger" for b in bodies) / len(bodies)
    assert 0.02 < share < 0.09

    # When the guardrails hold at each step, the rollout advances 25 %, 50 %, then promotes
    shares = []
    for _ in range(3):
        config, verdict, outcome = rollout.advance(life, rules, stand.now.timestamp())
        assert verdict.ok, verdict.reasons
        shares.append(config.challenger_share if outcome == "advanced" else "promoted")
        stand.refresh()
        bodies = stand.sweep()
    assert shares == [0.25, 0.5, "promoted"]
    assert life.config().champion == good and life.config().previous_champion == champion
    assert _versions(bodies) == {"champion": {good}}

    # When `fidelio rollback` runs
    state = stand.tmp / "local.json"
    state.write_text(stand.stack.to_json())
    monkeypatch.setattr(cli, "STATE_FILE", state)
    assert cli.main(["rollback"]) == 0
    assert f"{champion} restored as champion" in capsys.readouterr().out
    # Then decide keeps its cached config until the refresh, and switches back right after
    stand.refresh(30)
    assert _versions(stand.sweep()) == {"champion": {good}}
    stand.refresh(30)
    assert _versions(stand.sweep()) == {"champion": {champion}}


def test_a_challenger_missing_from_the_registry_leaves_its_members_on_the_champion(stand):
    # Given a serving config naming a challenger whose model is not in the registry
    from functions.dal.serving_config import ServingConfig, write_config

    champion = stand.life.champion()
    write_config(stand.life.ssm, stand.life.settings.serving_config_parameter,
                 ServingConfig(champion=champion, challenger="never-trained", challenger_share=0.5))
    stand.refresh()
    # When decide runs
    bodies = stand.sweep()
    # Then every member was decided, all by the champion
    assert len(bodies) == SERVED_MEMBERS
    assert _versions(bodies) == {"champion": {champion}}


def test_a_breached_guardrail_rolls_the_challenger_back(stand, program):
    # Given a challenger passed by the gate and serving 50 % of members
    good = stand.train(program["data"], program["split"], "good")
    assert lifecycle.evaluate(stand.life, good).passed
    rollout.start(stand.life, good, stand.now.timestamp(), share=0.5)
    stand.refresh()
    bodies = stand.sweep()
    # And its members unsubscribing more than the champion's
    for body in bodies:
        if body["variant"] == "challenger" and not body["holdout"] and int(body["member_id"][-1:] or 0) % 2 == 0:
            add_outcome(body["decision_id"], "unsubscribed")
    # When the rollout is asked to advance
    config, verdict, outcome = rollout.advance(stand.life, rollout.Guardrails(min_decisions=10),
                                               stand.now.timestamp())
    # Then it rolls back by itself, saying which guardrail failed
    assert outcome == "rolled back"
    assert any(r.startswith("unsubscribe rate") for r in verdict.reasons)
    assert config.challenger is None and config.champion != good
    assert stand.life.entry(good)["status"] == "rolled back"


def test_training_export_writes_pseudonymized_partitioned_parquet(stand, program):
    # Given a day of decisions served by decide, some with outcomes joined
    bodies = stand.sweep()
    sent = [b for b in bodies if b["action"]["kind"] == "send"]
    assert sent, "the sweep should send to some members"
    for body in sent[::2]:
        add_outcome(body["decision_id"], "clicked")
    salt = stand.life.settings.pseudonym_salt
    erased = training_export.pseudonymize(sent[1]["member_id"], salt)
    day = stand.now.date()
    # When the day is exported, leaving out an erased member
    result = training_export.export_training_data(stand.life.s3, stand.life.settings.data_bucket, day, day, salt,
                                                  exclude_ids={erased})
    # Then one Parquet part sits in the day's partition, without the erased member or any raw id
    assert result.keys == [k for k in result.keys if k.startswith(f"training/decisions/date={day}/part-")]
    assert len(result.keys) == 1 and result.excluded >= 1
    rows = training_export.read_export(stand.life.s3, stand.life.settings.data_bucket, day, day)
    assert len(rows) == len(bodies) - result.excluded
    raw_ids = {b["member_id"] for b in bodies}
    assert not raw_ids & {r["member"] for r in rows} and erased not in {r["member"] for r in rows}
    by_id = {r["decision_id"]: r for r in rows}
    # And each row carries variant, propensity, the logged action's feature row and its labels
    for body in sent[::2]:
        if body["decision_id"] in by_id:
            row = by_id[body["decision_id"]]
            assert row["converted"] and row["outcome_clicked"]
            assert row["propensity"] == pytest.approx(body["propensity"])
            assert row["variant"] == body["variant"] and row["model_version"] == body["model_version"]
            assert all(row[f"f_{name}"] is not None for name in FEATURE_NAMES)
    examples = training_export.training_set(rows)
    assert examples.rows.shape == (sum(1 for r in rows if r["action_kind"] == "send"), len(FEATURE_NAMES))
    assert int(examples.labels.sum()) == sum(1 for r in rows if r["action_kind"] == "send" and r["converted"])



def test_fidelio_train_and_evaluate_run_the_pipeline_steps_on_the_decision_log(stand, program, monkeypatch, capsys):
    # Given three sweeps' decisions, where members who buy often click what they are sent
    frequency = FEATURE_NAMES.index("frequency")
    for _ in range(3):
        stand.sweep()
    day = stand.now.date()
    archived = training_export.read_archive(stand.life.s3, stand.life.settings.data_bucket, [day])
    sends = [d for d in archived if d["action"]["kind"] == "send" and d.get("action_features")]
    cut = float(np.median([d["action_features"][frequency] for d in sends]))
    for d in sends:
        if d["action_features"][frequency] > cut:
            add_outcome(d["decision_id"], "clicked")
    state = stand.tmp / "local.json"
    state.write_text(stand.stack.to_json())
    monkeypatch.setattr(cli, "STATE_FILE", state)
    # When `fidelio train` exports the day and runs the pipeline's prepare and train steps
    assert cli.main(["train", "--from", day.isoformat(), "--to", day.isoformat()]) == 0
    out = capsys.readouterr().out
    version = out.split("registered ", 1)[1].split(";", 1)[0]
    # Then the model and its held-out decisions are in the registry
    assert stand.life.has(version, "model.onnx") and stand.life.has(version, "holdout.parquet")
    # And `fidelio evaluate` judges it with the pipeline's evaluate step: AUC, Brier, off-policy value
    code = cli.main(["evaluate", version])
    out = capsys.readouterr().out
    evaluation = stand.life.entry(version)["evaluation"]
    assert code == (0 if evaluation["passed"] else 1)
    assert out.count("off-policy value (snips)") == 2
    assert evaluation["reason"] in out and evaluation["examples"] > 0
    assert evaluation["reason"].startswith(("passed: candidate", f"refused candidate {version}: "))
