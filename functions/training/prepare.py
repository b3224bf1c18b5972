"""Pipeline step "Prepare" (Processing): the training export -> train/ and test/ split in time.

    python -m functions.training.prepare [--input DIR] [--output DIR] [--test-fraction 0.2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run as a file: make the archive root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from functions.training import paths


def main(argv: list[str] | None = None) -> int:
    from fidelio.pipeline_steps import DEFAULT_TEST_FRACTION, PipelineInputError, prepare_training_set

    parser = argparse.ArgumentParser(prog="prepare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, default=paths.INPUT_DATA, help="the exported Parquet parts")
    parser.add_argument("--output", type=Path, default=paths.PREPARED, help="writes train/, test/, summary.json")
    parser.add_argument("--test-fraction", type=float, default=DEFAULT_TEST_FRACTION,
                        help="share of the latest decisions held out to judge the models")
    args = parser.parse_args(argv)
    try:
        summary = prepare_training_set(args.input, args.output, args.test_fraction)
    except PipelineInputError as error:
        print(f"prepare: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
