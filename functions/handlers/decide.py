"""decide: for each triggering event (or sweep), one joint decision per member — stored,
then sent now (dispatch queue) or later (a one-time EventBridge Scheduler schedule)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from functions import clock
from functions.dal import decisions as decision_store
from functions.dal.archive import archive_decisions
from functions.dal.dead_letters import dead_letter
from functions.dal.members import load_profiles
from functions.dal.offers import load_catalog
from functions.dal.schedules import schedule_dispatch
from functions.dal.tables import MemberRecord
from functions.domain.decision import Decision, PolicyConfig, PriorScorer, Scorer, decide_batch
from functions.domain.events import InvalidEvent, SweepRequested
from functions.domain.features import FEATURE_NAMES, FEATURE_VERSION
from functions.domain.scoring import OnnxScorer
from functions.domain.triggers import DecisionRequest, triggers_for
from functions.handlers.deps import deps
from functions.handlers.sqs_batch import parse_envelope
from functions.observability import count, logger, mask_pii, metrics, tracer

SEND_NOW_WINDOW_S = 120.0
_scorer: Scorer | None = None


def _model_dir(configured: str) -> Path:
    path = Path(configured)
    if not path.is_absolute():
        path = Path(__file__).resolve().parents[2] / path
    return path


def scorer() -> Scorer:
    """The offer model, loaded once per container (the prior until a model is shipped)."""
    global _scorer
    if _scorer is None:
        directory = _model_dir(deps().settings.model_dir)
        if (directory / "model.onnx").exists():
            _scorer = OnnxScorer(directory, FEATURE_NAMES, FEATURE_VERSION)
        else:
            logger.warning("no model found; using the prior scorer", extra={"model_dir": str(directory)})
            _scorer = PriorScorer()
    return _scorer


def reset_model() -> None:
    global _scorer
    _scorer = None


def policy_config() -> PolicyConfig:
    s = deps().settings
    return PolicyConfig(holdout_share=s.holdout_share, holdout_salt=s.holdout_salt)


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


def act_on(decision: Decision, now: datetime) -> str:
    """Store the decision once and put its message on its way."""
    d = deps()
    new = decision_store.record_decision(decision, d.settings.decision_ttl_days)
    count("Decisions" if new else "DuplicateDecisions")
    if not decision.sends:
        return "no_send"
    assert decision.action.send_at is not None
    # Re-sent even when the decision existed: a crash may have come between the two
    # writes; dispatch's send claim keeps it to one message.
    if decision.action.send_at - now.timestamp() <= SEND_NOW_WINDOW_S:
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
    for start in range(0, len(flat), 100):
        chunk = flat[start : start + 100]
        profiles = load_profiles(r.member_id for r in chunk)
        decided = decide_batch(chunk, profiles, load_catalog(), scorer(), now, policy_config())
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
        archive_decisions(d.clients.s3, d.settings.data_bucket, archived, now)
    return {"batchItemFailures": failures}
