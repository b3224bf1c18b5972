"""Build the Lambda assets without Docker: `python -m infra.bundle --out build/lambda`.

    build/lambda/code/               functions/ (no tests, no caches) + model_artifacts/
    build/lambda/layer-core/python/  aws-lambda-powertools (+ aws-xray-sdk), pydantic, pynamodb:
                                     every function
    build/lambda/layer-numpy/python/ numpy: the functions that score or do batch math
                                     (FunctionSpec.needs_model / needs_numpy)
    build/lambda/layer-ml/python/    onnxruntime (+ its small dependencies): needs_model only

Layers are installed by pip for the Lambda platform (Python 3.13, arm64, manylinux wheels
only), at the exact versions uv.lock resolved, without boto3/botocore (the runtime has them).
A layer whose requirements did not change since its last build is not rebuilt.

numpy has a layer of its own (half of the old core layer): ingest, dispatch, feedback,
preferences, privacy and drift_monitor never import it (tests/infrastructure/
test_lambda_packaging.py checks every import their code can reach).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from infra import constants, spec

PYTHON_VERSION = "3.13"
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")  # onnxruntime is 2_28 only
# Provided by the Lambda Python runtime; botocore alone is ~40 MB.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
# Environment markers of the target (Lambda python3.13 on Graviton), for uv.lock's markers.
TARGET_ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": f"{PYTHON_VERSION}.0",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": f"{PYTHON_VERSION}.0",
    "python_version": PYTHON_VERSION,
    "sys_platform": "linux",
    "extra": "",
}
# Bumped when pruning or compiling changes, so existing layers are rebuilt.
BUILD_RECIPE = "3"


@dataclass(frozen=True)
class LayerRecipe:
    name: str  # directory under --out
    roots: tuple[str, ...]  # packages asked for; their dependencies come along
    prune_dirs: tuple[str, ...] = ()  # paths under python/ removed after install
    prune_files: tuple[str, ...] = ()  # globs under python/ of single files removed after install


LAYERS: tuple[LayerRecipe, ...] = (
    LayerRecipe(
        constants.CORE_LAYER_DIR,
        # aws-xray-sdk: Powertools' Tracer imports it when tracing is active (its `tracer`
        # extra); uv.lock pins it (through moto[server]), so the layer gets the same version.
        # Not pruned: aws_lambda_powertools/event_handler (2.7 MB; Fidelio's Function URLs parse
        # their events themselves) — Powertools' JSON encoder imports it to dump pydantic models.
        ("aws-lambda-powertools", "aws-xray-sdk", "pydantic", "pynamodb"),
    ),
    LayerRecipe(
        constants.NUMPY_LAYER_DIR,
        ("numpy",),
        prune_dirs=("numpy/f2py", "numpy/_core/include", "numpy/_pyinstaller", "numpy/typing/tests"),
    ),
    LayerRecipe(
        constants.ML_LAYER_DIR,
        ("onnxruntime",),
        # Model conversion/optimization tooling, never used to score.
        prune_dirs=("onnxruntime/transformers", "onnxruntime/quantization", "onnxruntime/tools"),
        # The C API library (27 MB) for other consumers: the Python binding links the runtime
        # statically and does not load it (its DT_NEEDED lists only libc/libstdc++/libm/...;
        # benchmarks/bundle_size.py re-checks that on every build).
        prune_files=("onnxruntime/capi/libonnxruntime.so*",),
    ),
)


def layers_for(function: spec.FunctionSpec) -> tuple[str, ...]:
    """The layers (directory names) a function gets, in attach order."""
    if function.needs_model:
        return (constants.CORE_LAYER_DIR, constants.NUMPY_LAYER_DIR, constants.ML_LAYER_DIR)
    if function.needs_numpy:
        return (constants.CORE_LAYER_DIR, constants.NUMPY_LAYER_DIR)
    return (constants.CORE_LAYER_DIR,)


class BundleError(RuntimeError):
    pass


# -- requirements from uv.lock ------------------------------------------------------------


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    dependencies: tuple[tuple[str, str | None, str | None], ...]  # (name, version, marker)


def read_lock(lock_path: Path) -> dict[str, list[LockedPackage]]:
    data = tomllib.loads(lock_path.read_text())
    packages: dict[str, list[LockedPackage]] = {}
    for entry in data.get("package", []):
        name = canonicalize_name(entry["name"])
        dependencies = tuple(
            (canonicalize_name(dep["name"]), dep.get("version"), dep.get("marker"))
            for dep in entry.get("dependencies", [])
        )
        packages.setdefault(name, []).append(LockedPackage(name, str(entry.get("version", "")), dependencies))
    return packages


def _applies(marker: str | None) -> bool:
    return marker is None or Marker(marker).evaluate(TARGET_ENVIRONMENT)


def pinned_requirements(
    lock: dict[str, list[LockedPackage]],
    roots: Iterable[str],
    exclude: Iterable[str] = (),
) -> dict[str, str]:
    """{name: version} of `roots` and everything they need on the target, from uv.lock."""
    excluded = {canonicalize_name(name) for name in exclude} | RUNTIME_PROVIDED
    pins: dict[str, str] = {}
    pending: list[tuple[str, str | None]] = [(canonicalize_name(root), None) for root in roots]
    while pending:
        name, version = pending.pop()
        if name in excluded or name in pins:
            continue
        candidates = lock.get(name)
        if not candidates:
            raise BundleError(f"{name} is not in uv.lock: add it to pyproject.toml and `uv lock`")
        chosen = next((c for c in candidates if version in (None, c.version)), None)
        if chosen is None:
            raise BundleError(f"uv.lock has no {name}=={version}")
        pins[name] = chosen.version
        pending.extend(
            (dep_name, dep_version)
            for dep_name, dep_version, marker in chosen.dependencies
            if _applies(marker)
        )
    return dict(sorted(pins.items()))


def layer_requirements(lock_path: Path) -> dict[str, dict[str, str]]:
    """Pinned requirements of every layer; a package is in the first layer that needs it."""
    lock = read_lock(lock_path)
    result: dict[str, dict[str, str]] = {}
    earlier: set[str] = set()
    for recipe in LAYERS:
        pins = pinned_requirements(lock, recipe.roots, exclude=earlier)
        result[recipe.name] = pins
        earlier |= set(pins)
    return result


# -- building ------------------------------------------------------------------------------


def _pip_command() -> list[str]:
    """pip of this interpreter, else the machine's pip, else uv's pip (uv-made venvs have none)."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for candidate in ("pip3", "pip"):
        found = shutil.which(candidate)
        if found:
            return [found]
    if shutil.which("uv"):
        return ["uv", "pip"]
    raise BundleError("no pip found: install pip or uv")


def _install_command(pip: list[str], requirements: Path, target: Path) -> list[str]:
    if pip[0] == "uv":
        # uv names the platform differently; manylinux_2_28 also admits manylinux2014 wheels.
        return [
            "uv", "pip", "install", "--no-deps", "--only-binary", ":all:",
            "--python-platform", "aarch64-manylinux_2_28", "--python-version", PYTHON_VERSION,
            "--target", str(target), "-r", str(requirements),
        ]  # fmt: skip
    platform_args = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    return [
        *pip, "install", "--no-deps", "--no-compile", "--only-binary=:all:", *platform_args,
        "--python-version", PYTHON_VERSION, "--implementation", "cp",
        "--target", str(target), "--quiet", "--disable-pip-version-check", "-r", str(requirements),
    ]  # fmt: skip


def _target_python() -> str | None:
    """A CPython of the runtime's minor version, to precompile bytecode the runtime will use."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    pattern = str(pyenv_root / "versions" / f"{PYTHON_VERSION}.*" / "bin" / f"python{PYTHON_VERSION}")
    candidates = [shutil.which(f"python{PYTHON_VERSION}"), *sorted(glob.glob(pattern), reverse=True)]
    for candidate in filter(None, candidates):
        # pyenv shims exist for versions that are installed but not active: ask, don't trust.
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == PYTHON_VERSION:
            return candidate
    return None


def prune(root: Path, extra_dirs: Iterable[str] = (), extra_files: Iterable[str] = ()) -> None:
    """Drop what a Lambda never runs: caches (built for the wrong Python), tests, stubs, headers."""
    for relative in extra_dirs:
        shutil.rmtree(root / relative, ignore_errors=True)
    for pattern in extra_files:
        for path in root.glob(pattern):
            if path.is_file() or path.is_symlink():
                path.unlink()
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and path.name in {"__pycache__", "tests"}:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and (path.suffix in {".pyi", ".pyc", ".h", ".hpp"}):
            path.unlink()


def precompile(root: Path, runtime_prefix: str, python: str | None) -> bool:
    """Write .pyc the runtime uses as they are (unchecked-hash: zip timestamps don't matter,
    and /var/task and /opt are read-only, so without them every cold start recompiles)."""
    if python is None:
        return False
    result = subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(root), "-p", runtime_prefix, str(root)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        print(f"  note: some files did not compile:\n{result.stdout[-2000:]}", file=sys.stderr)
    return True


def _digest(pins: dict[str, str], recipe: LayerRecipe, python: str | None) -> str:
    payload = {
        "pins": pins,
        "platforms": PLATFORMS,
        "python": PYTHON_VERSION,
        "prune": recipe.prune_dirs,
        "prune_files": recipe.prune_files,
        "precompiled": python is not None,
        "recipe": BUILD_RECIPE,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_layer(
    recipe: LayerRecipe, pins: dict[str, str], out: Path, *, force: bool, python: str | None
) -> bool:
    """Install one layer into out/<name>/python; False when it was already up to date."""
    layer_dir = out / recipe.name
    hash_file = out / f"{recipe.name}.sha256"
    digest = _digest(pins, recipe, python)
    up_to_date = (layer_dir / "python").is_dir() and hash_file.exists()
    if not force and up_to_date and hash_file.read_text().strip() == digest:
        return False
    requirements = "".join(f"{name}=={version}\n" for name, version in pins.items())
    (out / f"{recipe.name}.requirements.txt").write_text(requirements)
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        staging = Path(scratch) / "python"
        requirements_file = Path(scratch) / "requirements.txt"
        requirements_file.write_text(requirements)
        command = _install_command(_pip_command(), requirements_file, staging)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BundleError(
                f"installing {recipe.name} failed:\n{' '.join(command)}\n{result.stderr[-4000:]}"
            )
        prune(staging, recipe.prune_dirs, recipe.prune_files)
        precompile(staging, "/opt/python", python)
        shutil.rmtree(layer_dir, ignore_errors=True)
        layer_dir.mkdir(parents=True)
        staging.rename(layer_dir / "python")
    hash_file.write_text(digest + "\n")
    return True


def build_code(repo_root: Path, out: Path, python: str | None) -> None:
    """functions/ (the deployable package) and model_artifacts/ (decide's models)."""
    code_dir = out / constants.CODE_DIR
    shutil.rmtree(code_dir, ignore_errors=True)
    code_dir.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "test_*.py", ".*")
    shutil.copytree(repo_root / "functions", code_dir / "functions", ignore=ignore)
    artifacts = repo_root / "model_artifacts"
    if artifacts.is_dir():
        shutil.copytree(artifacts, code_dir / "model_artifacts", ignore=ignore)
    precompile(code_dir, constants.LAMBDA_TASK_ROOT, python)


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bundle(out: Path, *, repo_root: Path, force: bool = False) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    python = _target_python()
    if python is None:
        print(
            f"  note: no python{PYTHON_VERSION} found: bytecode not precompiled "
            "(cold starts compile it in memory)",
            file=sys.stderr,
        )
    requirements = layer_requirements(repo_root / "uv.lock")
    for recipe in LAYERS:
        built = build_layer(recipe, requirements[recipe.name], out, force=force, python=python)
        pins = ", ".join(f"{n}=={v}" for n, v in requirements[recipe.name].items())
        print(f"{recipe.name}: {'built' if built else 'unchanged, kept'} ({pins})")
    build_code(repo_root, out, python)
    sizes = {
        name: directory_size(out / name) for name in (constants.CODE_DIR, *(recipe.name for recipe in LAYERS))
    }
    for name, size in sizes.items():
        print(f"{name}: {size / 1e6:.1f} MB unzipped")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(constants.DEFAULT_LAMBDA_BUILD_DIR))
    parser.add_argument("--force", action="store_true", help="rebuild layers even if unchanged")
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else constants.REPO_ROOT / args.out
    try:
        bundle(out, repo_root=constants.REPO_ROOT, force=args.force)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
