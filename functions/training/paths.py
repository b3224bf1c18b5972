"""Where SageMaker puts a step's inputs and outputs, and where the step's code lives."""

from __future__ import annotations

import os
from pathlib import Path

# The root of the code archive (functions/, fidelio/, model_artifacts/, requirements.txt).
CODE_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_CHAMPION = CODE_ROOT / "model_artifacts" / "offers"

PROCESSING = Path("/opt/ml/processing")
INPUT_DATA = PROCESSING / "input" / "data"
PREPARED = PROCESSING / "prepared"
CANDIDATE = PROCESSING / "candidate"
TEST = PROCESSING / "test"
EVALUATION = PROCESSING / "evaluation"


def sagemaker_path(env_var: str, default: str) -> Path:
    """A training job's path: SageMaker names it in the environment (SM_CHANNEL_TRAIN, ...)."""
    return Path(os.environ.get(env_var, default))

