"""Model cards: the `metadata.json` written next to every `model.onnx`.

Generic helpers any trainer uses: baseline feature distributions (quantile bin edges and
the share of training rows in each bin, what a PSI drift monitor compares live rows to),
the versions of the libraries that built the model, and sha256 digests of the data it saw.
The scorer (functions/domain/scoring.py) reads `name`, `model_version`, `feature_version`
and `feature_names`; everything else is for people and monitors.

Binning: a feature's `edges` are its distinct interior quantiles; a value v falls in bin k
= the number of edges <= v (so bin 0 is v < edges[0], the last bin v >= edges[-1]).
Non-finite values are counted apart as `missing`.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

CARD_FILE = "metadata.json"
REQUIRED_KEYS = ("name", "model_version", "feature_version", "feature_names")
DEFAULT_BINS = 10
PSI_FLOOR = 1e-4  # share given to an empty bin so the PSI stays finite


class IncompleteModelCard(ValueError):
    """A model card lacks a key the scorer needs, or its feature list does not fit the data."""


def quantile_bins(values: np.ndarray, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Interior quantile edges of one feature and the share of values in each bin."""
    column = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = column[np.isfinite(column)]
    missing = float(1.0 - len(finite) / len(column)) if len(column) else 0.0
    if len(finite) == 0:
        return {"edges": [], "proportions": [], "missing": missing, "count": len(column)}
    quantiles = np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    edges = np.unique(quantiles)
    # An edge at the minimum would leave bin 0 empty by construction: drop it.
    edges = edges[edges > finite.min()]
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
    return {
        "edges": [float(e) for e in edges],
        "proportions": [float(c) / len(finite) for c in counts],
        "missing": missing,
        "count": len(column),
    }


def feature_baseline(rows: np.ndarray, feature_names: Sequence[str], bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Per feature (in `feature_names` order): quantile bin edges and proportions."""
    matrix = np.asarray(rows)
    if matrix.ndim != 2 or matrix.shape[1] != len(feature_names):
        raise IncompleteModelCard(
            f"baseline rows have shape {matrix.shape}; expected (n, {len(feature_names)}) for the feature list"
        )
    return {name: quantile_bins(matrix[:, i], bins) for i, name in enumerate(feature_names)}


def bin_proportions(baseline: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    """Shares of `values` in the baseline's bins (finite values only)."""
    column = np.asarray(values, dtype=np.float64).reshape(-1)
    finite = column[np.isfinite(column)]
    edges = np.asarray(baseline["edges"], dtype=np.float64)
    if len(finite) == 0:
        return np.zeros(len(edges) + 1)
    counts = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
    return counts / len(finite)


def population_stability_index(baseline: Mapping[str, Any], values: np.ndarray) -> float:
    """PSI = sum (live - base) * ln(live / base) over the baseline's bins; ~0 when unchanged,
    > 0.2 is the usual "the population moved" threshold."""
    expected = np.maximum(np.asarray(baseline["proportions"], dtype=np.float64), PSI_FLOOR)
    actual = np.maximum(bin_proportions(baseline, values), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def library_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed versions of `packages` (and Python's), "absent" for one not installed."""
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_arrays(*arrays: np.ndarray) -> str:
    """Digest of arrays' dtypes, shapes and bytes (C order): the exact training matrix."""
    digest = hashlib.sha256()
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()


def write_model_card(directory: str | Path, card: Mapping[str, Any]) -> Path:
    """Write `metadata.json`, keys in the order given (feature order matters; same card, same bytes)."""
    missing = [key for key in REQUIRED_KEYS if key not in card]
    if missing:
        raise IncompleteModelCard(f"model card lacks {missing}; the scorer needs {list(REQUIRED_KEYS)}")
    baseline = card.get("baseline_features")
    if baseline is not None and list(baseline) != list(card["feature_names"]):
        raise IncompleteModelCard("baseline_features must list exactly feature_names, in order")
    path = Path(directory) / CARD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card, indent=1, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8")
    return path
