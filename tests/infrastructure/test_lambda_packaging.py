"""Each handler imports nothing beyond the standard library, the Lambda runtime's boto3 and
the layers the stack gives its function (a missing package fails only in AWS otherwise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import packages_distributions

from packaging.utils import canonicalize_name

from infra import bundle, spec
from infra.constants import CORE_LAYER_DIR, ML_LAYER_DIR, REPO_ROOT

# What the python3.13 Lambda runtime ships besides the standard library.
RUNTIME_MODULES = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}

GATE = """
import importlib, json, sys
allowed = set(json.loads(sys.argv[1])) | {"functions"}

class LayerGate:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top.startswith("_sysconfigdata") or top in allowed:
            return None
        raise ImportError(f"{name!r} is in none of this function's layers")

sys.meta_path.insert(0, LayerGate())
for module in sys.argv[2:]:
    importlib.import_module(module)
"""


def _modules_of(distributions: set[str]) -> set[str]:
    return {
        module
        for module, dists in packages_distributions().items()
        if any(canonicalize_name(d) in distributions for d in dists)
    }


def test_every_handler_imports_only_what_its_layers_provide() -> None:
    requirements = bundle.layer_requirements(REPO_ROOT / "uv.lock")
    env = {
        **os.environ,
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_LAMBDA_FUNCTION_NAME": "layer-check",  # Powertools behaves as in Lambda
    }
    # Functions with the same layers are checked together (one interpreter each).
    by_layers: dict[tuple[str, ...], list[str]] = {}
    for function_spec in spec.FUNCTIONS:
        # Given the layers the stack attaches to a function
        layers = (CORE_LAYER_DIR, ML_LAYER_DIR) if function_spec.needs_model else (CORE_LAYER_DIR,)
        modules = by_layers.setdefault(layers, [])
        modules.append(function_spec.handler.rsplit(".", 1)[0])
        if function_spec.needs_model:
            modules.append("onnxruntime")  # imported when a model is scored
    runs = {}
    for layers, modules in by_layers.items():
        distributions = {name for layer in layers for name in requirements[layer]}
        allowed = sorted(_modules_of(distributions) | RUNTIME_MODULES)
        # When its handler module is imported with everything else hidden
        runs[layers] = subprocess.Popen(
            [sys.executable, "-c", GATE, json.dumps(allowed), *modules],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    failures = {}
    for name, process in runs.items():
        _, stderr = process.communicate(timeout=120)
        if process.returncode != 0:
            failures[name] = stderr.strip().splitlines()[-1:]
    # Then every import is satisfied
    assert failures == {}
