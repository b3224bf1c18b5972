"""Pipeline step "Train" (Training): fit the offer model on the prepared train/ split.

SageMaker's training toolkit runs this file with the hyperparameters as flags; the model it
writes to SM_MODEL_DIR (model.onnx + metadata.json) becomes model.tar.gz.

    python -m functions.training.train [--train DIR] [--model-dir DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file: make the archive root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from functions.training import paths


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of boosting rounds")
    return value


def main(argv: list[str] | None = None) -> int:
    from fidelio.models.offers import NotEnoughData
    from fidelio.pipeline_steps import PipelineInputError, train

    parser = argparse.ArgumentParser(prog="train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=paths.sagemaker_path("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"),
                        help="the prepared train/ split (Parquet)")
    parser.add_argument("--model-dir", type=Path, default=paths.sagemaker_path("SM_MODEL_DIR", "/opt/ml/model"),
                        help="where model.onnx and metadata.json go")
    parser.add_argument("--rounds", type=_positive_int, default=None, help="boosting rounds (default: the model's)")
    args = parser.parse_args(argv)
    try:
        card = train(args.train, args.model_dir, rounds=args.rounds)
    except (PipelineInputError, NotEnoughData) as error:
        print(f"train: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"model_version": card["model_version"], **card["training_data"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
