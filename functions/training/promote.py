"""Pipeline step "Promote" (Processing, after the gate passed and the package is registered):
copy the model to the S3 registry decide reads and, when approved, name it challenger at the
first rollout share in the serving config (SSM). A package pending manual approval is copied
but not served.

    python -m functions.training.promote --bucket B [--candidate-dir DIR] [--registry-prefix P]
        [--serving-config-parameter NAME] [--approval-status Approved|PendingManualApproval]
        [--initial-share 0.05]
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file: make the archive root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from functions.training import paths

APPROVAL_STATUSES = ("Approved", "PendingManualApproval")


def main(argv: list[str] | None = None) -> int:
    import boto3

    from fidelio import pipeline_steps as steps

    parser = argparse.ArgumentParser(prog="promote", description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate-dir", type=Path, default=paths.CANDIDATE)
    parser.add_argument("--bucket", required=True, help="data bucket holding the model registry")
    parser.add_argument("--registry-prefix", default="models/offers")
    parser.add_argument("--serving-config-parameter", default="/fidelio/serving-config")
    parser.add_argument("--approval-status", choices=APPROVAL_STATUSES, default="PendingManualApproval")
    parser.add_argument("--initial-share", type=float, default=steps.DEFAULT_INITIAL_SHARE)
    args = parser.parse_args(argv)
    try:
        result = steps.publish_candidate(
            boto3.client("s3"), boto3.client("ssm"), bucket=args.bucket, prefix=args.registry_prefix,
            parameter=args.serving_config_parameter, candidate_dir=args.candidate_dir,
            bootstrap_dir=paths.BUNDLED_CHAMPION, approved=args.approval_status == "Approved",
            initial_share=args.initial_share, now=datetime.now(tz=UTC))
    except steps.PipelineInputError as error:
        print(f"promote: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
