"""Cost per million decisions, per service: the model of docs/cost.md as code, so its figures
can be redone with other inputs. A model, not a measurement: list prices (dated in
docs/cost.md) times per-decision counts of requests and capacity units taken from the code
paths, and Lambda durations modelled from benchmarks/through_stack.py.

    python benchmarks/cost_model.py --json benchmarks/results/cost_model.json
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

# us-east-1 list prices (docs/cost.md, "Prices used"); eu-west-1 differs for DynamoDB and Logs.
LAMBDA_GBS = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
PRICE = {
    "lambda_request": 0.20e-6, "event": 1.00e-6, "archive_gb": 0.10, "archive_gb_month": 0.023,
    "schedule": 1.00e-6, "sqs_request": 0.40e-6, "sns_publish": 0.50e-6, "wru": 0.625e-6, "rru": 0.125e-6,
    "ddb_gb_month": 0.25, "pitr_gb_month": 0.20, "s3_put": 0.005e-3, "logs_gb": 0.50, "xray_trace": 5.0e-6,
}
EU_WEST_1 = {"ddb": 1.13, "logs_gb": 0.57}
MILLION = 1_000_000


@dataclass(frozen=True)
class Design:
    name: str
    member_item_kb: float  # stored member item: profile + applied-event ids + small attributes
    gsi_all: bool  # decisions.by_member projects ALL (True) or KEYS_ONLY (False)
    ses_events_per_email: float  # records the configuration set publishes per email
    ses_skipped_per_email: float  # of which feedback drops (a log line each)
    decide_batch: int  # decide event source mapping batch size
    events_per_decision: float = 3.0  # E: member events on the bus per decision
    send_share: float = 0.5  # s
    scheduled_share: float = 0.5  # q
    feedback_events_per_email: float = 1.28  # Delivery, Open, Click, Bounce onto the bus
    decision_kb: float = 1.7
    gsi_keys_kb: float = 0.17  # decision_id + member_id + decided_at + 100 B index overhead
    archive_months: float = 12.0
    duration_scale: float = 1.0
    # Share of decisions written to the decisions table: 1.0 stores every decision; since the
    # closed-loop change only those that send or would have (holdout) are, the rest are
    # archived to S3 only: s / (1 - holdout share) with the default 10% holdout.
    stored_share: float = 1.0
    # Holdout decisions that would have sent and go through dispatch to be withheld there
    # (notification.withheld; fourth session): holdout share x s, per decision.
    withheld_share: float = 0.0


BASELINE_DOC = Design("baseline as first modelled (10 KB member item)", 10.0, True, 2.28, 1.0, 10)
# Measured on simulated members (see docs/cost.md): stored profile 4.2 KB (p50 of members with
# >= 50 events), 200 ids of 36 characters 7.4 KB, other attributes ~0.1 KB.
BASELINE = Design("baseline (measured item: 11.7 KB)", 11.7, True, 2.28, 1.0, 10)
NOW = Design("now (this change)", 4.2 + 1.15 + 0.1, False, 1.28, 0.0, 100, stored_share=0.5 / 0.9)
# Fourth session: the profile zlib-compressed (1.37 KB median, p90 1.52, measured on the same
# simulated members), and the holdout's would-be sends withheld in dispatch (5 % holdout).
COMPRESSED = replace(NOW, name="fourth session (compressed profile, withheld holdout sends)",
                     member_item_kb=1.37 + 1.15 + 0.1, withheld_share=0.05 * 0.5)


def per_million(d: Design, region: str = "us-east-1", arch: str = "arm64") -> dict[str, float]:
    """$ per million decisions, by service."""
    s = d.send_share
    w = d.withheld_share
    bus = d.events_per_decision + s + d.feedback_events_per_email * s + w  # each one is ingested too
    ses_records = s * d.ses_events_per_email
    sqs_messages = bus + 1 + s + w + ses_records  # ingest, decide, dispatch, feedback
    # Each message: one send, a tenth of a receive and of a delete batch (a poller receives at
    # most 10 messages a call, whatever the mapping's batch size).
    sqs_requests = sqs_messages * 1.2
    invocations = bus / 10 + 1 / d.decide_batch + (s + w) / 10 + ses_records / 10
    member_wru, member_rru = math.ceil(d.member_item_kb), math.ceil(d.member_item_kb / 4)
    decision_wru = math.ceil(d.decision_kb)
    gsi_put = decision_wru if d.gsi_all else 1
    gsi_update = decision_wru if d.gsi_all else 0  # a KEYS_ONLY index ignores non-key updates
    feedback_outcomes = d.feedback_events_per_email * s
    wru = (bus * member_wru + d.stored_share * (decision_wru + gsi_put) + s * (1 + decision_wru + gsi_update)
           + feedback_outcomes * (decision_wru + gsi_update) + w * (decision_wru + gsi_update))
    # decide's batch_get is eventually consistent; dispatch reads decision + profile (strong)
    rru = bus * member_rru + 0.5 * member_rru + (s + w) * (1 + member_rru)
    decide_calls = 1.5 + 2 / d.decide_batch  # + one BatchGetItem and one S3 PUT per batch
    gb_s = d.duration_scale * (
        bus * 27.1e-3 * 0.5 + (5.4 + 6 * decide_calls) * 1e-3 * 1.769 + s * 111e-3 * 0.5
        + w * (111e-3 - 30e-3 - 2 * 6e-3) * 0.5  # a withheld one: no SES call, no claim
        + ses_records * 18.8e-3 * 0.5)
    ddb = EU_WEST_1["ddb"] if region == "eu-west-1" else 1.0
    logs_gb = EU_WEST_1["logs_gb"] if region == "eu-west-1" else PRICE["logs_gb"]
    stored_kb = d.decision_kb + (d.decision_kb if d.gsi_all else d.gsi_keys_kb)
    bus_gb = bus * MILLION * 1e-6  # 1 KB per event
    return {
        "eventbridge_events": bus * MILLION * PRICE["event"],
        "eventbridge_archive": bus_gb * (PRICE["archive_gb"] + d.archive_months * PRICE["archive_gb_month"]),
        "scheduler": s * d.scheduled_share * MILLION * PRICE["schedule"],
        "sqs": sqs_requests * MILLION * PRICE["sqs_request"],
        "sns": ses_records * MILLION * PRICE["sns_publish"],
        "lambda_compute": gb_s * MILLION * LAMBDA_GBS[arch],
        "lambda_requests": invocations * MILLION * PRICE["lambda_request"],
        "dynamodb_writes": wru * MILLION * PRICE["wru"] * ddb,
        "dynamodb_reads": rru * MILLION * PRICE["rru"] * ddb,
        # kept 90 days; GB per million decisions = KB per decision
        "dynamodb_storage": d.stored_share * stored_kb * 3 * PRICE["ddb_gb_month"] * ddb,
        # PITR is billed on table data (and LSIs), not on GSIs
        "dynamodb_pitr": d.stored_share * d.decision_kb * 3 * PRICE["pitr_gb_month"] * ddb,
        "s3_puts": MILLION / d.decide_batch * PRICE["s3_put"],
        "s3_storage": 0.22,
        "logs": (invocations * 1.0 + 0.3 * s * d.ses_skipped_per_email) * MILLION * 1e-6 * logs_gb,
        "xray": invocations * 0.05 * MILLION * PRICE["xray_trace"],
        "_wru": wru, "_rru": rru, "_gb_s": gb_s, "_bus_events": bus, "_sqs_requests": sqs_requests,
        "_invocations": invocations, "_sns": ses_records,
    }


def total(costs: dict[str, float]) -> float:
    return sum(v for k, v in costs.items() if not k.startswith("_"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    designs = (BASELINE_DOC, BASELINE, NOW, COMPRESSED)
    rows = {d.name: per_million(d) for d in designs}
    services = [k for k in rows[NOW.name] if not k.startswith("_")]
    print(f"{'service':22}" + "".join(f"{d.name[:26]:>28}" for d in designs))
    for key in services + [k for k in rows[NOW.name] if k.startswith("_")]:
        print(f"{key:22}" + "".join(f"{rows[d.name][key]:>28.3f}" for d in designs))
    result = {"designs": {d.name: asdict(d) for d in designs}, "per_million_usd": {}}
    for d in designs:
        figures = {
            "us-east-1 arm64": total(per_million(d)),
            "eu-west-1 arm64": total(per_million(d, "eu-west-1")),
            "us-east-1 x86_64": total(per_million(d, arch="x86_64")),
        }
        result["per_million_usd"][d.name] = {"services": rows[d.name], "totals": figures}
        print(f"total {d.name}: " + ", ".join(f"{k} ${v:.2f}" for k, v in figures.items()))
    sensitivity = {
        "E = 1": replace(NOW, events_per_decision=1),
        "E = 5": replace(NOW, events_per_decision=5),
        "s = 0.2": replace(NOW, send_share=0.2, stored_share=0.2 / 0.9),
        "s = 1.0": replace(NOW, send_share=1.0, stored_share=1.0),
        "Lambda durations doubled": replace(NOW, duration_scale=2.0),
        "member item 2.7 KB (profile zlib-compressed: done since, see the last design)": replace(
            NOW, member_item_kb=1.4 + 1.15 + 0.1),
        "30-day bus archive (not done)": replace(NOW, archive_months=1.0),
        "E = 1, compressed profile, 30-day archive, no PITR": replace(
            NOW, events_per_decision=1, member_item_kb=2.65, archive_months=1.0),
    }
    result["sensitivity_now"] = {}
    for label, design in sensitivity.items():
        costs = per_million(design)
        if "no PITR" in label:
            costs["dynamodb_pitr"] = 0.0
        result["sensitivity_now"][label] = total(costs)
        print(f"now, {label}: ${total(costs):.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
