"""Each handler imports nothing beyond the standard library, the Lambda runtime's boto3 and
the layers the stack gives its function (a missing package fails only in AWS otherwise): at
import (a subprocess that hides everything else), and on every path its code can take (every
import statement of every Fidelio module it can reach, lazy ones included)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.utils import canonicalize_name

from infra import bundle, spec
from infra.constants import REPO_ROOT

# What the python3.13 Lambda runtime ships besides the standard library.
RUNTIME_MODULES = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
# Imported on purpose where absent: functions/dal/privacy.py rewrites Parquet training exports
# only where pyarrow is installed (the CLI); in Lambda pyarrow_available() is False and an
# erasure says where to run it. Nothing else may be missing.
OPTIONAL_MODULES = {"pyarrow"}

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
        layers = bundle.layers_for(function_spec)
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


# -- every path: the import statements of every reachable module ---------------------------


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_file(module: str) -> Path | None:
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Modules named by any import statement in the file, at any depth (function bodies too),
    except under `if TYPE_CHECKING:` (never run)."""
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if _is_type_checking(node.test):
                for child in node.orelse:
                    self.visit(child)
            else:
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            assert node.level == 0 and node.module, f"relative import in {path}"
            found.add(node.module)
            # `from package import module` names a module, not an attribute
            found.update(f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}"))

    Visitor().visit(ast.parse(path.read_text(), filename=str(path)))
    return found


def reachable_packages(handler_module: str) -> tuple[set[str], set[str]]:
    """(Fidelio modules reachable from the handler, top-level packages they import outside
    the standard library and Fidelio's own code)."""
    seen: set[str] = set()
    third_party: set[str] = set()
    pending = [handler_module]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(module)
        assert path is not None, f"{module} is imported but not in the code asset"
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        for name in [*imported_modules(path), *parents]:
            top = name.partition(".")[0]
            if top == "functions":
                if _module_file(name):
                    pending.append(name)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    return seen, third_party


def test_every_path_of_a_function_imports_only_what_its_layers_provide() -> None:
    requirements = bundle.layer_requirements(REPO_ROOT / "uv.lock")
    missing = {}
    for function_spec in spec.FUNCTIONS:
        # Given every import statement a function's code can reach, lazy ones included
        _, packages = reachable_packages(function_spec.handler.rsplit(".", 1)[0])
        distributions = {name for layer in bundle.layers_for(function_spec) for name in requirements[layer]}
        provided = _modules_of(distributions) | RUNTIME_MODULES | OPTIONAL_MODULES
        # Then its layers (or the runtime) provide each package
        if packages - provided:
            missing[function_spec.logical_name] = sorted(packages - provided)
    assert missing == {}


def test_functions_that_neither_score_nor_crunch_get_no_numpy() -> None:
    for name in ("ingest", "dispatch", "feedback", "preferences", "privacy", "drift_monitor"):
        function_spec = next(f for f in spec.FUNCTIONS if f.logical_name == name)
        # Given a function that only reads, writes and sends
        modules, packages = reachable_packages(function_spec.handler.rsplit(".", 1)[0])
        # Then nothing it can import needs numpy, and its bundle leaves numpy out
        assert "numpy" not in packages and "onnxruntime" not in packages, name
        assert "functions.domain.features" not in modules, name
        assert bundle.layers_for(function_spec) == ("layer-core",), name


def test_the_reachability_check_sees_lazy_imports_and_skips_type_checking_ones(tmp_path: Path) -> None:
    # Given a module importing numpy only inside a function, and pandas only for type checking
    source = tmp_path / "example.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import pandas\n"
        "def f():\n    import numpy as np\n    from functions.domain import features as ft\n"
    )
    # Then the lazy imports count and the type-checking one does not
    found = imported_modules(source)
    assert {"numpy", "functions.domain", "functions.domain.features"} <= found
    assert "pandas" not in found
