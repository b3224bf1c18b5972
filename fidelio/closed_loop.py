"""The main job: a simulated loyalty program run through Fidelio's stack on the local AWS
stand-in, hour by hour, with the simulator's members reacting to what Fidelio sends.

simulator events → bus → ingest → decide → dispatch → SES/SNS (moto) → the simulator reacts
(notification.* feedback, conversions) → bus → profiles. The engine never sees hidden traits;
the log keeps, for evaluation only, the simulator's truth about each decision.
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import shutil
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from pydantic import BaseModel

from fidelio.report.log import (
    Exposure,
    LoggedDecision,
    MemberOutcome,
    PolicyOutcome,
    Redemption,
    RunLog,
    Segment,
)
from fidelio.sim import Message, SimConfig, World
from functions.domain import events as ev
from functions.domain.decision import in_holdout
from functions.domain.offers import Offer

SOURCE = "fidelio.sim"
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "model_artifacts" / "offers"
TARGET_POLICY = "greedy"  # the policy the off-policy estimators evaluate (no exploration)


def age_band(birth_year: int | None, now: datetime) -> str:
    if birth_year is None:
        return "unknown"
    age = now.year - birth_year
    for limit, band in ((25, "<25"), (35, "25-34"), (50, "35-49"), (65, "50-64")):
        if age < limit:
            return band
    return "65+"


def quiet_local_functions() -> None:
    """Locally, the handlers' metrics and traces go nowhere: keep them off the console."""
    warnings.filterwarnings("ignore", message="No application metrics")
    for key, value in {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_TRACE_DISABLED": "true",
                       "POWERTOOLS_LOG_LEVEL": "ERROR"}.items():
        os.environ.setdefault(key, value)


def _retrain(events: list[BaseModel], offers: list[Offer], serving: Path, work_dir: Path,
             holdout_from: Any) -> dict[str, Any]:
    """Train a challenger on the run's own log; promote it only through the gate."""
    from fidelio import lifecycle
    from fidelio.models.offers import NotEnoughData

    member_events = [e for e in events if isinstance(e, ev.MemberEvent)]
    try:
        decision, card = lifecycle.retrain(member_events, offers, serving, work_dir, holdout_from,
                                           f"closed-loop demo log: {len(member_events)} events")
    except NotEnoughData as error:
        return {"promoted": False, "reason": f"not retrained: {error}"}
    if decision.promote:
        lifecycle.promote(work_dir / "challenger", serving, work_dir / "previous")
    return {"promoted": decision.promote, "reason": decision.reason, "gate": decision.as_dict(),
            "challenger_metrics": card.get("metrics", {})}


def greedy_action(top: list[dict[str, Any]]) -> int:
    """The target policy: the best candidate by the engine's expected value, or nothing."""
    return 0 if top and top[0]["ev"] > 0 else -1


@dataclass
class LoopState:
    pending: list[tuple[float, int, BaseModel]] = field(default_factory=list)  # feedback due later
    counter: itertools.count = field(default_factory=itertools.count)
    sent_seen: set[str] = field(default_factory=set)
    decisions: dict[str, LoggedDecision] = field(default_factory=dict)
    archive_keys: set[str] = field(default_factory=set)
    rewards: dict[str, float] = field(default_factory=dict)
    revenue_by_decision: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, MemberOutcome] = field(default_factory=dict)
    daily_conversions: Counter = field(default_factory=Counter)
    channel_mix: Counter = field(default_factory=Counter)
    hour_gaps: list[float] = field(default_factory=list)
    sends: int = 0
    expected_revenue: float = 0.0  # the simulator's truth at each send
    expected_unsubscribes: float = 0.0
    unsubscribes: int = 0
    complaints: int = 0
    published: int = 0


def run_closed_loop(config: SimConfig, offers: list[Offer], work_dir: Path,
                    progress: Callable[[int], None] | None = None, retrain_day: int | None = None,
                    champion_dir: Path | None = None, holdout_share: float | None = None) -> RunLog:
    """Run `config.days` days of the simulated program through the local stack.

    The programme starts with `champion_dir`'s model, or — None, the default — with no model
    trained on it yet: decide serves the cold-start scorer. On `retrain_day` (default: the
    middle of the run) a challenger is trained on what the run has logged so far and served
    from then on only if it passes the gate."""
    from fidelio.local.runner import LocalRunner
    from fidelio.local.server import local_aws
    from functions import clock
    from functions.dal.bus import publish
    from functions.dal.members import import_history
    from functions.dal.offers import replace_catalog
    from functions.handlers import deps

    world = World(config, offers)
    offer_values = {o.offer_id: o.value for o in offers}
    start = config.start
    log = RunLog(seed=config.seed, members=config.members, days=config.days)
    state = LoopState()
    segments: dict[str, Segment] = {}
    holdout_of: dict[str, bool] = {}

    from functions.handlers import decide as decide_handler

    serving = work_dir / "serving"
    if serving.exists():
        shutil.rmtree(serving)
    if champion_dir is None:
        serving.mkdir(parents=True)
    else:
        shutil.copytree(champion_dir, serving)
    retrain_day = config.days // 2 if retrain_day is None else retrain_day
    seen_events: list[BaseModel] = []

    with local_aws() as stack:
        runner = LocalRunner(stack)
        runner.update_settings("decide", model_dir=str(serving))
        if holdout_share is not None:
            runner.update_settings("decide", holdout_share=holdout_share)
        decide_handler.reset_model()
        deps.use(runner._deps["decide"])
        replace_catalog(offers)
        sns = stack.client("sns")
        app_arn = sns.create_platform_application(Name="fidelio-app", Platform="GCM",
                                                  Attributes={"PlatformCredential": "local"})["PlatformApplicationArn"]
        endpoints: dict[str, str] = {}
        events_client, s3 = stack.client("events"), stack.client("s3")
        zones: dict[str, ZoneInfo] = {}
        backfilled = 0

        def device(member_id: str, arn: str | None) -> str | None:
            """The app registers the member's device with SNS (as a real app does)."""
            if arn is None:
                return None
            if arn not in endpoints:
                endpoints[arn] = sns.create_platform_endpoint(PlatformApplicationArn=app_arn,
                                                              Token=f"token-{member_id}")["EndpointArn"]
            return endpoints[arn]

        def localize(event: BaseModel) -> BaseModel:
            if isinstance(event, ev.MemberEnrolled | ev.MemberUpdated) and getattr(event, "push_endpoint_arn", None):
                return event.model_copy(update={"push_endpoint_arn": device(event.member_id, event.push_endpoint_arn)})
            return event

        def note_member_event(event: BaseModel) -> None:
            if isinstance(event, ev.MemberEnrolled):
                zones[event.member_id] = ZoneInfo(event.time_zone)
                segments[event.member_id] = Segment(tier=event.tier, age_band=age_band(event.birth_year, start),
                                                    new_member=event.occurred_at >= start)
            member = getattr(event, "member_id", None)
            if member is None or event.occurred_at < start:
                return
            outcome = state.outcomes.get(member)
            if outcome is None:
                return
            if isinstance(event, ev.PurchaseCompleted):
                outcome.purchases += 1
                outcome.revenue += event.amount
            elif isinstance(event, ev.OfferRedeemed) and not event.decision_id:
                outcome.organic_conversions += 1  # attributed ones are counted at delivery
                log.redemptions.append(Redemption(member, event.offer_id, event.occurred_at.timestamp()))

        def on_records(function: str, messages: list[dict[str, Any]]) -> None:
            """Sends are seen as dispatch's notification.sent events reaching ingest."""
            if function != "ingest":
                return
            for message in messages:
                body = json.loads(message["Body"])
                kind = body.get("detail-type")
                if kind not in ("notification.sent", "notification.withheld") or body.get("source") != "fidelio.dispatch":
                    continue
                detail = body["detail"]
                if detail["decision_id"] in state.sent_seen:
                    continue
                state.sent_seen.add(detail["decision_id"])
                if kind == "notification.withheld":  # a holdout member's would-be send: nothing reaches them
                    withheld = ev.NotificationWithheld.model_validate(detail)
                    seen_events.append(withheld)
                    note_exposure(withheld, holdout=True)
                    continue
                sent = ev.NotificationSent.model_validate(detail)
                seen_events.append(sent)
                deliver(sent)

        def note_exposure(event: ev.NotificationSent | ev.NotificationWithheld, holdout: bool) -> None:
            if event.topic is not ev.Topic.TRANSACTIONAL:
                log.exposures.append(Exposure(event.member_id, event.decision_id, event.offer_id,
                                              event.occurred_at.timestamp(), holdout))

        def deliver(sent: ev.NotificationSent) -> None:
            note_exposure(sent, holdout=False)
            state.sends += 1
            state.channel_mix[sent.channel.value] += 1
            outcome = state.outcomes.get(sent.member_id)
            if outcome is not None:
                outcome.sends += 1
                outcome.marketing_sends += sent.topic is not ev.Topic.TRANSACTIONAL
                outcome.offer_value_received += offer_values.get(sent.offer_id or "", 0.0)
            local = sent.occurred_at.astimezone(_zone_of(sent.member_id))
            peak = world.active_peak_hour(sent.member_id)
            gap = abs(local.hour + local.minute / 60 - peak) % 24
            state.hour_gaps.append(min(gap, 24 - gap))
            truth = world.expected_value(sent.member_id, sent.offer_id, sent.channel.value, sent.occurred_at,
                                         topic=sent.topic.value)
            state.expected_revenue += truth.expected_revenue
            state.expected_unsubscribes += truth.p_unsubscribe
            feedback = world.deliver(Message(member_id=sent.member_id, decision_id=sent.decision_id,
                                             channel=sent.channel.value, offer_id=sent.offer_id,
                                             topic=sent.topic.value, sent_at=sent.occurred_at))
            amounts = {e.order_id: e.amount for e in feedback if isinstance(e, ev.PurchaseCompleted)}
            for event in feedback:
                if isinstance(event, ev.OfferRedeemed) and event.decision_id:
                    # The reward is what the engine maximizes: the conversion's revenue.
                    state.rewards[event.decision_id] = amounts.get(event.order_id or "", 0.0)
                    day = int((event.occurred_at - start).total_seconds() // 86400)
                    state.daily_conversions[min(max(day, 0), config.days - 1)] += 1
                    if outcome is not None:
                        outcome.conversions += 1
                        log.redemptions.append(Redemption(sent.member_id, event.offer_id,
                                                          event.occurred_at.timestamp(), event.decision_id))
                if isinstance(event, ev.PurchaseCompleted) and event.offer_id:
                    state.revenue_by_decision[sent.decision_id] = event.amount
                if isinstance(event, ev.NotificationUnsubscribed):
                    state.unsubscribes += 1
                    if outcome is not None:
                        outcome.unsubscribes += 1
                if isinstance(event, ev.NotificationComplained):
                    state.complaints += 1
                    if outcome is not None:
                        outcome.complaints += 1
                heapq.heappush(state.pending, (event.occurred_at.timestamp(), next(state.counter), event))

        def _zone_of(member_id: str) -> ZoneInfo:
            return zones.get(member_id) or ZoneInfo("UTC")

        def collect_decisions(now: datetime) -> None:
            """New decisions from the S3 archive, with the simulator's truth at decision time."""
            day_prefix = f"decisions/date={now.strftime('%Y-%m-%d')}/"
            prefixes = {day_prefix, f"decisions/date={(now - timedelta(hours=1)).strftime('%Y-%m-%d')}/"}
            for prefix in prefixes:
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.data_bucket, Prefix=prefix):
                    for item in page.get("Contents", []):
                        if item["Key"] in state.archive_keys:
                            continue
                        state.archive_keys.add(item["Key"])
                        body = s3.get_object(Bucket=stack.data_bucket, Key=item["Key"])["Body"].read().decode()
                        for line in body.splitlines():
                            record_decision(json.loads(line))

        def record_decision(d: dict[str, Any]) -> None:
            if d["decision_id"] in state.decisions:
                return
            target = greedy_action(d["top"])
            truth = 0.0
            estimate = 0.0
            if target >= 0:
                choice = d["top"][target]
                when = datetime.fromtimestamp(choice["send_at"], tz=UTC)
                truth = world.expected_value(d["member_id"], choice["offer_id"], choice["channel"], when).expected_revenue
                estimate = choice["p"] * choice["value"]
            logged = 0.0
            if d["action"]["kind"] == "send":
                chosen = [c for c in d["top"] if (c["offer_id"], c["channel"], c["send_at"]) == (
                    d["action"]["offer_id"], d["action"]["channel"], d["action"]["send_at"])]
                worth = chosen[0]["value"] if chosen else (d["top"][0]["value"] if d["top"] else 0.0)
                logged = (d["action"].get("probability") or 0.0) * worth
            state.decisions[d["decision_id"]] = LoggedDecision(
                decision_id=d["decision_id"], member_id=d["member_id"],
                day=int((d["decided_at"] - start.timestamp()) // 86400), decided_at=d["decided_at"],
                trigger=d["trigger"], holdout=d["holdout"], explored=bool(d["exploration"].get("explored")),
                action=d["action"], intended=d["intended"], propensity=d["propensity"],
                p_nothing=float(d["exploration"].get("p_nothing", 0.0)), top=d["top"],
                truth={TARGET_POLICY: truth}, model_estimate={TARGET_POLICY: estimate, "__logged__": logged},
                target_action={TARGET_POLICY: target}, segment=segments.get(d["member_id"]))
            holdout_of[d["member_id"]] = d["holdout"]

        runner.on_records = on_records
        for day in range(config.days):
            day_start = world.day_start(day)
            todays = [localize(e) for e in world.events_for_day(day)]
            if day == 0:
                history = [e for e in todays if e.occurred_at < start]
                todays = [e for e in todays if e.occurred_at >= start]
                import_history(history)
                backfilled = len(history)
                seen_events.extend(history)
                for event in history:
                    note_member_event(event)
            for event in todays:
                if isinstance(event, ev.MemberEnrolled):
                    note_member_event(event)
            settings = runner._deps["decide"].settings
            for member_id, segment in segments.items():
                if member_id not in state.outcomes:
                    state.outcomes[member_id] = MemberOutcome(
                        member_id=member_id, segment=segment,
                        holdout=in_holdout(member_id, settings.holdout_share, settings.holdout_salt))
            queue = sorted(todays, key=lambda e: e.occurred_at)
            position = 0
            for hour in range(24):
                hour_start = day_start + timedelta(hours=hour)
                hour_end = hour_start + timedelta(hours=1)
                clock.set_clock(lambda moment=hour_start: moment)
                batch: list[BaseModel] = []
                while position < len(queue) and queue[position].occurred_at < hour_end:
                    batch.append(queue[position])
                    position += 1
                while state.pending and state.pending[0][0] < hour_end.timestamp():
                    batch.append(heapq.heappop(state.pending)[2])
                for event in batch:
                    note_member_event(event)
                seen_events.extend(batch)
                if batch:
                    # Events of the hour are published at its end, as they happened during it.
                    clock.set_clock(lambda moment=hour_end: moment)
                    state.published += publish(events_client, stack.names.bus, batch, SOURCE)
                runner.fire_sweeps(hour_start, hour_end)
                runner.pump()
                collect_decisions(hour_end)
            if day + 1 == retrain_day:
                log.model_versions.append(_retrain(seen_events, offers, serving, work_dir,
                                                   world.day_start(max(1, day - 2)).date()))
                decide_handler.reset_model()
            if progress:
                progress(day)
        clock.set_clock(None)
        dead = {q: len(m) for q, m in runner.dead_letters().items()}
        stats = runner.stats

        data = requests.get(f"{stack.endpoint}/moto-api/data.json", timeout=120).json()
        emails_read_back = len(data["ses"].get("RawMessage", []))
        pushes_read_back = sum(len(e.get("messages", [])) for e in data["sns"].get("PlatformEndpoint", []))
        sms_read_back = len(data["sns"].get("SMS", {}) if isinstance(data["sns"].get("SMS"), dict)
                            else data["sns"].get("SMS", []))
    deps.reset()

    for decision_id, reward in state.rewards.items():
        if decision_id in state.decisions:
            state.decisions[decision_id].reward = reward
            state.decisions[decision_id].converted = True
    log.decisions = sorted(state.decisions.values(), key=lambda d: (d.decided_at, d.decision_id))
    log.members_outcomes = list(state.outcomes.values())
    conversions = sum(state.daily_conversions.values())
    log.policies["fidelio"] = PolicyOutcome(
        name="fidelio", sends=state.sends, conversions=conversions,
        revenue=round(sum(state.revenue_by_decision.get(d, 0.0) for d in state.rewards), 2),
        unsubscribes=state.unsubscribes, complaints=state.complaints, members=config.members,
        daily_conversions=[state.daily_conversions[d] for d in range(config.days)],
        channel_mix=dict(state.channel_mix), send_hour_vs_active_hour=state.hour_gaps, through_stack=True,
        expected_revenue=round(state.expected_revenue, 4),
        expected_unsubscribes=round(state.expected_unsubscribes, 6))
    log.events = {
        "published": state.published,
        "processed": stats.sources[("ingest", SOURCE)] - dead.get("ingest", 0),
        "dead_lettered": dead.get("ingest", 0),
        "fidelio_events": stats.sources[("ingest", "fidelio.dispatch")] + stats.sources[("ingest", "fidelio.feedback")],
        "history_backfilled": backfilled,
        "emails_read_back": emails_read_back, "pushes_read_back": pushes_read_back, "sms_read_back": sms_read_back,
        "sends_seen_on_bus": state.sends,
    }
    log.parameters["sim"] = world.stats().as_dict()
    return log


