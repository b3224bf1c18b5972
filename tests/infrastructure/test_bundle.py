"""infra/bundle.py: what goes into each layer (read from uv.lock), pruning, and rebuild skips.
No pip here: installs are faked."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from infra import bundle
from infra.constants import REPO_ROOT


@pytest.fixture(scope="module")
def requirements() -> dict[str, dict[str, str]]:
    return bundle.layer_requirements(REPO_ROOT / "uv.lock")


def _project_pins() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^;\s]+)", requirement.strip())
        if match:
            pins[match[1].lower()] = match[2]
    return pins


def test_layers_hold_the_project_pinned_versions(requirements: dict[str, dict[str, str]]) -> None:
    # Given the versions pyproject.toml pins for the functions
    pins = _project_pins()
    core, numpy, ml = requirements["layer-core"], requirements["layer-numpy"], requirements["layer-ml"]
    # Then the layers install exactly those
    for name in ("aws-lambda-powertools", "pydantic", "pynamodb"):
        assert core[name] == pins[name]
    assert numpy["numpy"] == pins["numpy"]
    assert ml["onnxruntime"] == pins["onnxruntime"]
    # and numpy is in its own layer only (ml gets it from there; core-only functions never do)
    assert "numpy" not in core and "numpy" not in ml
    # and Tracer's X-Ray SDK comes along (Powertools imports it when tracing is active)
    assert "aws-xray-sdk" in core


def test_layers_leave_out_what_the_runtime_provides_and_never_overlap(
    requirements: dict[str, dict[str, str]],
) -> None:
    core, numpy, ml = (set(requirements[name]) for name in ("layer-core", "layer-numpy", "layer-ml"))
    assert not (core | numpy | ml) & {"boto3", "botocore", "s3transfer"}
    assert not core & ml and not core & numpy and not numpy & ml
    # heavy build-time packages never reach a function
    assert not (core | numpy | ml) & {"sagemaker", "pandas", "lightgbm", "scipy", "pyarrow", "moto"}


def test_pruning_drops_tests_caches_stubs_and_headers(tmp_path: Path) -> None:
    # Given an installed tree
    files = [
        "pkg/__init__.py",
        "pkg/tests/test_x.py",
        "pkg/__pycache__/mod.cpython-311.pyc",
        "pkg/mod.pyi",
        "pkg/include/api.h",
        "pkg/tools/convert.py",
        "pkg/core.so",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "pkg/capi").mkdir()
    for name in ("libapi.so.1.2.3", "binding.so"):
        (tmp_path / "pkg/capi" / name).write_text("x")
    # When pruned with a recipe dropping pkg/tools and the C API library by glob
    bundle.prune(tmp_path, ["pkg/tools"], ["pkg/capi/libapi.so*"])
    # Then only what runs is left
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["pkg/__init__.py", "pkg/capi/binding.so", "pkg/core.so"]


def test_a_layer_is_rebuilt_only_when_its_requirements_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installs: list[list[str]] = []

    def fake_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        installs.append(command)
        target = Path(command[command.index("--target") + 1])
        (target / "pkg").mkdir(parents=True)
        (target / "pkg" / "__init__.py").write_text("")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(bundle.subprocess, "run", fake_pip)
    recipe = bundle.LAYERS[0]
    # Given a first build
    assert bundle.build_layer(recipe, {"pkg": "1.0"}, tmp_path, force=False, python=None)
    # When nothing changed, the layer is kept
    assert not bundle.build_layer(recipe, {"pkg": "1.0"}, tmp_path, force=False, python=None)
    # When a pin changes, or on --force, it is rebuilt
    assert bundle.build_layer(recipe, {"pkg": "1.1"}, tmp_path, force=False, python=None)
    assert bundle.build_layer(recipe, {"pkg": "1.1"}, tmp_path, force=True, python=None)
    assert len(installs) == 3
    # and the install targets the Lambda platform with wheels only
    command = " ".join(installs[0])
    if installs[0][0] != "uv":
        assert "--platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64" in command
        assert "--only-binary=:all:" in command and "--python-version 3.13" in command
    assert (tmp_path / recipe.name / "python" / "pkg" / "__init__.py").exists()


def test_code_asset_is_the_functions_package_without_tests_or_caches(tmp_path: Path) -> None:
    # Given a repo with functions/ and model_artifacts/
    repo = tmp_path / "repo"
    for name in (
        "functions/__init__.py",
        "functions/handlers/ingest.py",
        "functions/__pycache__/x.cpython-311.pyc",
        "functions/tests/test_x.py",
        "model_artifacts/offers/model.onnx",
    ):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("x")
    # When the code asset is built
    bundle.build_code(repo, tmp_path / "out", python=None)
    # Then it holds the package and the models, nothing else
    code = tmp_path / "out" / "code"
    left = sorted(str(p.relative_to(code)) for p in code.rglob("*") if p.is_file())
    assert left == [
        "functions/__init__.py",
        "functions/handlers/ingest.py",
        "model_artifacts/offers/model.onnx",
    ]
