"""score_members (daily): churn risk and lifetime value of every member, in batches.

Scans the members table page by page (one segment of a parallel scan per invocation when the
event says {"segment": i, "total_segments": n}), scores each page with the churn/CLV model in
one numpy/onnxruntime call, and writes churn_risk, clv and scores_at with an update
expression on those attributes alone (never a whole-profile put, so a concurrent event is not
lost: the update also bumps the item's version, and ingest's conditional write retries).
Members whose risk crossed settings.churn_risk_threshold upwards since their last score are
counted; when there are any, one `sweep.requested` (win_back) goes on the bus.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from functions import clock
from functions.dal.bus import publish
from functions.dal.members import profile_of
from functions.dal.tables import MemberRecord
from functions.domain.churn import ChurnModel
from functions.domain.events import SweepRequested
from functions.handlers import init_done
from functions.handlers.deps import deps
from functions.observability import count, logger, metrics, tracer

PAGE_SIZE = 500
_model: ChurnModel | None = None


def churn_model() -> ChurnModel:
    global _model
    if _model is None:
        directory = Path(deps().settings.churn_model_dir)
        if not directory.is_absolute():
            directory = Path(__file__).resolve().parents[2] / directory
        _model = ChurnModel(directory)
    return _model


def crossed(previous: float | None, current: float, threshold: float) -> bool:
    """Risk went from below the threshold (or unscored) to at or above it."""
    return current >= threshold and (previous is None or previous < threshold)


def write_scores(dynamodb: Any, table: str, scores: list[tuple[str, float, float]], at: float) -> None:
    for member_id, risk, clv in scores:
        try:
            dynamodb.update_item(
                TableName=table, Key={"member_id": {"S": member_id}},
                UpdateExpression="SET churn_risk = :r, clv = :c, scores_at = :t ADD #v :one",
                ExpressionAttributeNames={"#v": "version"},
                ConditionExpression="attribute_exists(member_id)",
                ExpressionAttributeValues={":r": {"N": str(Decimal(str(risk)))},
                                           ":c": {"N": str(Decimal(str(clv)))},
                                           ":t": {"N": str(at)}, ":one": {"N": "1"}})
        except dynamodb.exceptions.ConditionalCheckFailedException:
            continue  # erased between the scan and the write: never re-create it


def score_segment(now: datetime, segment: int = 0, total_segments: int = 1) -> dict[str, Any]:
    d = deps()
    model, threshold = churn_model(), d.settings.churn_risk_threshold
    dynamodb = d.clients.client("dynamodb")
    scored, at_risk = 0, list[str]()
    page: list[MemberRecord] = []

    def flush() -> None:
        nonlocal scored
        if not page:
            return
        # Rounded once: what is stored is what the next run compares against.
        results = [(s.member_id, round(s.churn_risk, 6), round(s.clv, 4))
                   for s in model.score([profile_of(r) for r in page], now)]
        write_scores(dynamodb, d.settings.members_table, results, now.timestamp())
        at_risk.extend(member_id for r, (member_id, risk, _) in zip(page, results, strict=True)
                       if crossed(r.churn_risk, risk, threshold))
        scored += len(page)
        page.clear()

    scan_args: dict[str, Any] = {"page_size": PAGE_SIZE}
    if total_segments > 1:
        scan_args |= {"segment": segment, "total_segments": total_segments}
    for record in MemberRecord.scan(**scan_args):
        page.append(record)
        if len(page) >= PAGE_SIZE:
            flush()
    flush()
    count("MembersScored", scored)
    count("ChurnRiskCrossed", len(at_risk))
    if at_risk:
        sweep = SweepRequested(event_id=f"win-back-{now:%Y%m%d}-{segment}-{uuid.uuid4().hex[:8]}",
                               occurred_at=now, sweep="win_back")
        publish(d.clients.events, d.settings.bus_name, [sweep], "fidelio.scoring")
    return {"scored": scored, "crossed": len(at_risk), "at_risk": at_risk[:100], "model_version": model.version,
            "segment": segment, "total_segments": total_segments}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    segment, total = int(event.get("segment", 0)), int(event.get("total_segments", 1))
    if not 0 <= segment < total:
        raise ValueError(f"segment {segment} is not in [0, {total})")
    result = score_segment(clock.now(), segment, total)
    logger.info("members scored", extra={k: v for k, v in result.items() if k != "at_risk"})
    return result


init_done()  # last: the end of this function's INIT phase (functions/handlers/__init__.py)
