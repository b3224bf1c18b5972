"""Pipeline step "Evaluate" (Processing): candidate vs champion on the same held-out decisions.

Writes evaluation.json (AUC, calibration, off-policy value with its CI, the gate's verdict),
which the pipeline's ConditionStep reads. Without --champion-dir the champion is the model the
serving config names (SSM + the S3 registry), or the bundled one when there is no config yet.

    python -m functions.training.evaluate [--candidate-dir DIR] [--test-dir DIR] [--out FILE]
        [--champion-dir DIR | --bucket B --registry-prefix P --serving-config-parameter NAME]
        [--min-auc-gain 0.005] [--calibration-tolerance 0.01] [--min-ope-value 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file: make the archive root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from functions.training import paths


def _champion_dir(args: argparse.Namespace) -> Path:
    if args.champion_dir is not None:
        return Path(args.champion_dir)
    import boto3

    from fidelio.pipeline_steps import resolve_champion

    return resolve_champion(boto3.client("s3"), boto3.client("ssm"), bucket=args.bucket,
                            prefix=args.registry_prefix, parameter=args.serving_config_parameter,
                            cache_dir="/tmp/fidelio-champion", bootstrap_dir=paths.BUNDLED_CHAMPION)


def main(argv: list[str] | None = None) -> int:
    from fidelio import pipeline_steps as steps

    parser = argparse.ArgumentParser(prog="evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate-dir", type=Path, default=paths.CANDIDATE,
                        help="the trained model (model.tar.gz or model.onnx + metadata.json)")
    parser.add_argument("--test-dir", type=Path, default=paths.TEST, help="the prepared test/ split (Parquet)")
    parser.add_argument("--out", type=Path, default=paths.EVALUATION / steps.EVALUATION_FILE)
    parser.add_argument("--champion-dir", type=Path, default=None, help="judge against this model directory")
    parser.add_argument("--bucket", default="", help="data bucket holding the model registry")
    parser.add_argument("--registry-prefix", default="models/offers")
    parser.add_argument("--serving-config-parameter", default="/fidelio/serving-config")
    parser.add_argument("--min-auc-gain", type=float, default=steps.DEFAULT_MIN_AUC_GAIN)
    parser.add_argument("--calibration-tolerance", type=float, default=steps.DEFAULT_CALIBRATION_TOLERANCE)
    parser.add_argument("--min-ope-value", type=float, default=steps.DEFAULT_MIN_OPE_VALUE)
    args = parser.parse_args(argv)
    if args.champion_dir is None and not args.bucket:
        parser.error("give --champion-dir, or --bucket (and the registry options) to read the serving champion")
    try:
        report = steps.evaluate(_champion_dir(args), args.candidate_dir, args.test_dir, args.out,
                                min_auc_gain=args.min_auc_gain, calibration_tolerance=args.calibration_tolerance,
                                min_ope_value=args.min_ope_value)
    except steps.PipelineInputError as error:
        print(f"evaluate: {error}", file=sys.stderr)
        return 2
    # A refusal is a result, not a failure: the pipeline's condition step acts on it.
    print(report["gate"]["reason"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
