"""decide: for each triggering event (or sweep), one joint decision per member — stored,
then sent now (dispatch queue) or later (a one-time EventBridge Scheduler schedule)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from functions import clock
from functions.dal import decisions as decision_store
from functions.dal.archive import archive_decisions
from functions.dal.catalog import load_catalog
from functions.dal.dead_letters import dead_letter
from functions.dal.members import load_profiles
from functions.dal.privacy import erased_members, privacy_salt
from functions.dal.schedules import schedule_dispatch
from functions.dal.serving_config import (
    ModelNotInRegistry,
    ModelStore,
    ServingConfig,
    ServingConfigCache,
    Variant,
    variant_for,
)
from functions.dal.tables import MemberRecord
from functions.domain.decision import Decision, PolicyConfig, PriorScorer, Scorer, decide_batch
from functions.domain.events import InvalidEvent, SweepRequested
from functions.domain.feature_log import logged_features
from functions.domain.features import FEATURE_NAMES, FEATURE_VERSION
from functions.domain.profile import MemberProfile
from functions.domain.scoring import ModelMismatch, OnnxScorer
from functions.domain.triggers import DecisionRequest, conditions_hold, triggers_for
from functions.faults import crash_point
from functions.handlers import init_done
from functions.handlers.deps import deps
from functions.handlers.sqs_batch import parse_envelope
from functions.observability import count, count_by, logger, mask_pii, metrics, tracer

SEND_NOW_WINDOW_S = 120.0
BUNDLED = "bundled"  # key of the model shipped in the bundle (settings.model_dir)
_scorers: dict[str, Scorer] = {}  # by registry version, or BUNDLED: one load per version
_config_cache: ServingConfigCache | None = None
_config_clock: Callable[[], float] = time.monotonic


def _model_dir(configured: str) -> Path:
    path = Path(configured)
    if not path.is_absolute():
        path = Path(__file__).resolve().parents[2] / path
    return path


def _bundled_scorer() -> Scorer:
    directory = _model_dir(deps().settings.model_dir)
    if (directory / "model.onnx").exists():
        return OnnxScorer(directory, FEATURE_NAMES, FEATURE_VERSION)
    logger.warning("no model found; using the prior scorer", extra={"model_dir": str(directory)})
    return PriorScorer()


def serving_config() -> ServingConfig | None:
    """The serving config (SSM, cached for settings.serving_config_ttl_s); None when the
    parameter does not exist, so the bundled model serves (local runs, first deploy)."""
    global _config_cache
    s = deps().settings
    if _config_cache is None or _config_cache.name != s.serving_config_parameter:
        _config_cache = ServingConfigCache(deps().clients.client("ssm"), s.serving_config_parameter,
                                           s.serving_config_ttl_s, clock=_config_clock)
    try:
        return _config_cache.get()
    except Exception:
        # Fail static: keep serving what was served (SSM throttled or unreachable).
        logger.exception("serving config unreadable; keeping the last one")
        count("ServingConfigErrors")
        return _config_cache.hold()


def scorer_for(version: str) -> Scorer:
    """The model of `version` (from the S3 registry, cached on local disk), loaded once."""
    if version not in _scorers:
        if version == BUNDLED:
            _scorers[version] = _bundled_scorer()
        else:
            s, clients = deps().settings, deps().clients
            store = ModelStore(clients.s3, s.data_bucket, s.model_registry_prefix, s.model_cache_dir)
            _scorers[version] = OnnxScorer(store.directory(version), FEATURE_NAMES, FEATURE_VERSION)
    return _scorers[version]


def variant_scorers(config: ServingConfig | None) -> dict[Variant, Scorer]:
    """The scorer of each variant in service. A challenger that cannot be loaded leaves its
    members with the champion (and an error metric): it must never stop decisions."""
    if config is None:
        return {"champion": scorer_for(BUNDLED)}
    try:
        served: dict[Variant, Scorer] = {"champion": scorer_for(config.champion)}
    except (ModelNotInRegistry, ModelMismatch):
        logger.exception("champion model unusable; serving the bundled model",
                         extra={"version": config.champion})
        count_by("ModelLoadErrors", "Variant", "champion")
        served = {"champion": scorer_for(BUNDLED)}
    if config.challenger is not None and config.challenger_share > 0:
        try:
            served["challenger"] = scorer_for(config.challenger)
        except (ModelNotInRegistry, ModelMismatch):
            logger.exception("challenger model unusable; its members get the champion",
                             extra={"version": config.challenger})
            count_by("ModelLoadErrors", "Variant", "challenger")
    return served


def scorer() -> Scorer:
    """The champion's model (what callers without a member split, e.g. offers_api, serve)."""
    return variant_scorers(serving_config())["champion"]


def reset_model(config_clock: Callable[[], float] | None = None) -> None:
    """Forget loaded models and the cached config (tests may pass a fake monotonic clock)."""
    global _config_cache, _config_clock
    _scorers.clear()
    _config_cache = None
    _config_clock = config_clock or time.monotonic


def policy_config() -> PolicyConfig:
    s = deps().settings
    return PolicyConfig(holdout_share=s.holdout_share, holdout_salt=s.holdout_salt,
                        slot_hours=s.send_window_hours)


def _requests_for(detail_type: str, event: Any) -> list[DecisionRequest]:
    if isinstance(event, SweepRequested):
        triggers = triggers_for(f"sweep:{event.sweep}")
        return [
            DecisionRequest(member_id=record.member_id, trigger=trigger, cause_id=event.event_id,
                            occurred_at=event.occurred_at)
            for record in MemberRecord.scan(attributes_to_get=["member_id"])
            for trigger in triggers
        ]
    return [
        DecisionRequest(member_id=event.member_id, trigger=trigger, cause_id=event.event_id,
                        occurred_at=event.occurred_at)
        for trigger in triggers_for(detail_type)
    ]


def _decide_by_variant(chunk: list[DecisionRequest], profiles: dict[str, Any], now: datetime) -> list[Decision]:
    """Each member is decided with the model of their (sticky) variant; the decision logs the
    variant and the model version that served it."""
    config = serving_config()
    served = variant_scorers(config)
    salt = deps().settings.variant_salt
    groups: dict[Variant, list[DecisionRequest]] = {}
    for request in chunk:
        variant = variant_for(request.member_id, config, salt)
        groups.setdefault(variant if variant in served else "champion", []).append(request)
    decided: list[Decision] = []
    catalog, policy = load_catalog(), policy_config()
    for variant, requests in groups.items():
        decided.extend(decide_batch(requests, profiles, catalog, served[variant], now, policy, variant=variant))
    return decided


def _without_erased_members(chunk: list[DecisionRequest], profiles: dict[str, Any]) -> list[DecisionRequest]:
    """Drop requests of erased members (GDPR): a decision would store their id again. Only
    members without a profile are checked, so the usual batch costs no extra read."""
    missing = {r.member_id for r in chunk} - profiles.keys()
    if not missing:
        return chunk
    d = deps()
    erased = erased_members(missing, privacy_salt(d.settings, d.clients))
    if erased:
        count("RequestsOfErasedMembers", len([r for r in chunk if r.member_id in erased]))
    return [r for r in chunk if r.member_id not in erased]


def _eligible(chunk: list[DecisionRequest], profiles: dict[str, Any], now: datetime) -> list[DecisionRequest]:
    """Only the requests whose trigger's conditions hold for the member (points about to
    expire, inactive long enough, close to the next tier, ...). The others are not decisions:
    nothing is stored, archived or logged for them. A sweep asks for every member, and most
    fail a condition; without this each would cost a decision write and an archive line."""
    kept = [r for r in chunk
            if conditions_hold(r.trigger, profiles.get(r.member_id) or MemberProfile(member_id=r.member_id), now)]
    if len(kept) < len(chunk):
        count("IneligibleRequests", len(chunk) - len(kept))
    return kept


def act_on(decision: Decision, now: datetime) -> str:
    """Store the decision once and put its message on its way.

    Only a decision that sends, or would have sent (a holdout member's), is stored in the
    decisions table: those are what dispatch loads, what feedback and redemptions join and what
    a rollout compares. A decision to send nothing has nothing to follow up; the S3 archive
    (every decision, with its candidates and propensities) is its record, for audit, training
    and off-policy evaluation. A redelivered trigger may archive it twice; readers keep the
    first line of a decision id."""
    d = deps()
    if not decision_store.stored_in_table(decision.intended.kind):
        count("Decisions")
        count_by("Decisions", "Variant", decision.variant)
        return "no_send"
    new = decision_store.record_decision(decision, d.settings.decision_ttl_days)
    crash_point("decide.after_record_decision")
    count("Decisions" if new else "DuplicateDecisions")
    if new:
        count_by("Decisions", "Variant", decision.variant)
    if not decision.dispatched:
        return "no_send"
    # A holdout member's would-be send goes to dispatch too, which withholds it at send time
    # (`Decision.withheld`): the holdout's caps then follow what it would have received.
    send_at = decision.outgoing.send_at
    assert send_at is not None
    # Re-sent even when the decision existed: a crash may have come between the two
    # writes; dispatch's send claim keeps it to one message.
    if send_at - now.timestamp() <= SEND_NOW_WINDOW_S:
        d.clients.sqs.send_message(QueueUrl=d.settings.dispatch_queue_url,
                                   MessageBody=json.dumps({"decision_id": decision.decision_id}))
        return "dispatched"
    schedule_dispatch(d.clients.scheduler, d.settings, decision)
    return "scheduled"


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    d = deps()
    now = clock.now()
    failures: list[dict[str, str]] = []
    requests: dict[str, list[DecisionRequest]] = {}
    for record in event.get("Records", []):
        message_id = record["messageId"]
        try:
            detail_type, parsed, _ = parse_envelope(record["body"])
            requests[message_id] = _requests_for(detail_type, parsed)
        except InvalidEvent as error:
            logger.warning("dead-lettering invalid record", extra={"reason": mask_pii(error.reason)})
            dead_letter(d.clients.sqs, d.settings.dlq_url, record["body"], error.reason, "decide")
        except Exception:
            logger.exception("could not read record; will be retried")
            failures.append({"itemIdentifier": message_id})
    flat = [r for rs in requests.values() for r in rs]
    decisions_by_message: dict[str, list[Decision]] = {}
    archived: list[Decision] = []
    logged: dict[str, dict[str, Any]] = {}
    for start in range(0, len(flat), 100):
        chunk = flat[start : start + 100]
        profiles = load_profiles(r.member_id for r in chunk)
        chunk = _eligible(_without_erased_members(chunk, profiles), profiles, now)
        decided = _decide_by_variant(chunk, profiles, now)
        if d.settings.data_bucket:
            catalog = load_catalog()
            for x in decided:
                if x.member_id in profiles and (x.top or x.sends):
                    logged[x.decision_id] = logged_features(x, profiles[x.member_id], catalog, now)
        by_cause = {(x.member_id, x.cause_id, x.trigger): x for x in decided}
        for message_id, rs in requests.items():
            for r in rs:
                key = (r.member_id, r.cause_id, r.trigger.name)
                if key in by_cause:
                    decisions_by_message.setdefault(message_id, []).append(by_cause[key])
        archived.extend(decided)
    for message_id, decided_list in decisions_by_message.items():
        try:
            for decision in decided_list:
                act_on(decision, now)
        except Exception:
            logger.exception("acting on a decision failed; the record will be retried")
            failures.append({"itemIdentifier": message_id})
    if archived and d.settings.data_bucket:
        archive_decisions(d.clients.s3, d.settings.data_bucket, archived, now, logged)
    return {"batchItemFailures": failures}


init_done()  # last: the end of this function's INIT phase (functions/handlers/__init__.py)
