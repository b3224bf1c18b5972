"""Load an ONNX model with its model card and score feature rows with onnxruntime.

No pickles at serving time: a model is `model.onnx` + `metadata.json` (the model card).
The scorer refuses a model built for other features than the ones this code computes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "model.onnx"
CARD_FILE = "metadata.json"


class ModelMismatch(RuntimeError):
    """The model was trained on other features than the serving code computes."""


@dataclass
class ModelCard:
    name: str
    model_version: str
    feature_version: str
    feature_names: list[str]
    raw: dict[str, Any]

    @classmethod
    def read(cls, directory: Path) -> ModelCard:
        raw = json.loads((directory / CARD_FILE).read_text())
        missing = [k for k in ("name", "model_version", "feature_version", "feature_names") if k not in raw]
        if missing:
            raise ModelMismatch(f"{directory / CARD_FILE} lacks {missing}")
        return cls(raw["name"], str(raw["model_version"]), str(raw["feature_version"]),
                   list(raw["feature_names"]), raw)


class OnnxScorer:
    """One onnxruntime session, loaded once per container; `predict` returns P(positive)."""

    def __init__(self, directory: str | Path, expected_features: tuple[str, ...] | list[str],
                 expected_version: str, threads: int = 1):
        import onnxruntime as ort  # imported here so functions without a model never pay for it

        self.directory = Path(directory)
        self.card = ModelCard.read(self.directory)
        if self.card.feature_version != expected_version:
            raise ModelMismatch(
                f"model {self.card.name} {self.card.model_version} was built for feature version "
                f"{self.card.feature_version}; this code computes version {expected_version}"
            )
        if list(self.card.feature_names) != list(expected_features):
            ours, theirs = set(expected_features), set(self.card.feature_names)
            raise ModelMismatch(
                f"model {self.card.name} {self.card.model_version} expects other features: "
                f"missing here {sorted(theirs - ours)[:5]}, unknown to it {sorted(ours - theirs)[:5]}"
                + (" (same names, other order)" if ours == theirs else "")
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(self.directory / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = "probabilities" if "probabilities" in outputs else outputs[-1]

    @property
    def version(self) -> str:
        return self.card.model_version

    def predict(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        matrix = np.ascontiguousarray(rows, dtype=np.float32)
        out = self.session.run([self.output_name], {self.input_name: matrix})[0]
        out = np.asarray(out)
        return out[:, 1] if out.ndim == 2 and out.shape[1] == 2 else out.reshape(-1)
