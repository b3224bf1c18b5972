"""Deployment size of each Lambda function as built for arm64 (python3.13): the code asset plus
the layers the function gets (infra.bundle.layers_for: core for all, numpy for the functions
that score or do batch math, ml for the model scorers), unzipped and zipped, with what
infra/bundle.py pruned.

    python benchmarks/bundle_size.py --json benchmarks/results/bundle_size.json

The assets are built fresh by infra.bundle into a temporary directory (layers already built in
--seed, build/lambda by default, are copied in first so that unchanged layers are not
reinstalled); build/lambda itself is never modified. "Unpruned" is the same pip install
without infra.bundle's pruning and bytecode, to show what pruning removed.
Zipped = deflate level 9 of each asset directory (each asset is its own zip); Lambda's limit is
250 MB unzipped for a function and all its layers together.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _results import write_result  # noqa: E402

from infra import bundle as bundle_module  # noqa: E402
from infra import constants, spec  # noqa: E402

MB = 1e6
TARGET_MB = {"ml": 120.0, "other": 30.0}
LAMBDA_UNZIPPED_LIMIT_MB = 250.0
CODE, CORE, ML = constants.CODE_DIR, constants.CORE_LAYER_DIR, constants.ML_LAYER_DIR
LAYER_NAMES = tuple(recipe.name for recipe in bundle_module.LAYERS)


class CannotMeasure(RuntimeError):
    pass


def tree_bytes(path: Path, suffix: str | None = None) -> int:
    return sum(p.stat().st_size for p in path.rglob("*")
               if p.is_file() and not p.is_symlink() and (suffix is None or p.name.endswith(suffix)))


def zipped_bytes(path: Path, scratch: Path) -> int:
    target = scratch / f"{path.name}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(path))
    size = target.stat().st_size
    target.unlink()
    return size


def top_entries(python_dir: Path, count: int) -> list[dict[str, Any]]:
    rows = []
    for entry in python_dir.iterdir():
        size = tree_bytes(entry) if entry.is_dir() else entry.stat().st_size
        rows.append({"entry": entry.name, "mb": round(size / MB, 2)})
    return sorted(rows, key=lambda r: -r["mb"])[:count]


def build(out: Path, seed: Path | None) -> str:
    """Build every asset into `out` with infra.bundle (its own printout is returned)."""
    if seed and seed.is_dir():
        for recipe in bundle_module.LAYERS:
            if (seed / recipe.name / "python").is_dir() and (seed / f"{recipe.name}.sha256").exists():
                shutil.copytree(seed / recipe.name, out / recipe.name, symlinks=True)
                shutil.copy2(seed / f"{recipe.name}.sha256", out / f"{recipe.name}.sha256")
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        bundle_module.bundle(out, repo_root=REPO)
    return captured.getvalue()


def unpruned_bytes(requirements: Path, scratch: Path) -> int | None:
    """The same install infra.bundle makes, without pruning or bytecode (None if pip fails)."""
    target = scratch / f"unpruned-{requirements.stem}"
    command = bundle_module._install_command(bundle_module._pip_command(), requirements, target)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(f"  note: unpruned install of {requirements.name} failed; pruned bytes unknown", file=sys.stderr)
        return None
    size = tree_bytes(target)
    shutil.rmtree(target, ignore_errors=True)
    return size


def needed_libraries(shared_object: Path) -> list[str] | None:
    """DT_NEEDED entries of an ELF file (readelf works across architectures), None if unknown."""
    readelf = shutil.which("readelf") or shutil.which("llvm-readelf")
    if not readelf:
        return None
    result = subprocess.run([readelf, "-d", os.fspath(shared_object)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        return None
    return [line.split("[", 1)[1].rstrip("]") for line in result.stdout.splitlines() if "(NEEDED)" in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=Path, default=REPO / constants.DEFAULT_LAMBDA_BUILD_DIR,
                        help="already-built assets to start from (copied, never modified)")
    parser.add_argument("--skip-unpruned", action="store_true", help="don't install unpruned layers")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="fidelio-bundle-"))
    try:
        out = scratch / "lambda"
        out.mkdir()
        try:
            log = build(out, args.seed)
        except bundle_module.BundleError as error:
            raise CannotMeasure(f"infra.bundle failed: {error}") from error
        for name in (CODE, *LAYER_NAMES):
            if not (out / name).is_dir():
                raise CannotMeasure(f"infra.bundle did not produce {name}/")
        pins = bundle_module.layer_requirements(REPO / "uv.lock")
        assets: dict[str, dict[str, Any]] = {}
        for name in (CODE, *LAYER_NAMES):
            path = out / name
            size, pyc = tree_bytes(path), tree_bytes(path, ".pyc")
            entry: dict[str, Any] = {
                "unzipped_mb": round(size / MB, 2), "zipped_mb": round(zipped_bytes(path, scratch) / MB, 2),
                "files": sum(1 for p in path.rglob("*") if p.is_file()), "pyc_mb": round(pyc / MB, 2),
            }
            if name != CODE:
                recipe = next(r for r in bundle_module.LAYERS if r.name == name)
                entry["requirements"] = [f"{n}=={v}" for n, v in pins[name].items()]
                entry["pruned_dirs"] = list(recipe.prune_dirs)
                entry["pruned_files"] = list(recipe.prune_files)
                entry["top_entries"] = top_entries(path / "python", 8)
                if not args.skip_unpruned:
                    requirements = scratch / f"{name}.txt"
                    requirements.write_text("\n".join(entry["requirements"]) + "\n")
                    raw = unpruned_bytes(requirements, scratch)
                    if raw is not None:
                        entry["unpruned_mb"] = round(raw / MB, 2)
                        entry["pruned_mb"] = round((raw - (size - pyc)) / MB, 2)
            assets[name] = entry

        # Safety of the C API prune, re-checked on the built aarch64 binding: it must not need the
        # library infra/bundle.py removed.
        capi = out / ML / "python" / "onnxruntime" / "capi"
        bindings = sorted(capi.glob("onnxruntime_pybind11_state*.so"))
        needed = needed_libraries(bindings[0]) if bindings else None
        checks = {
            "onnxruntime_binding_needs": needed,
            "c_api_library_present": bool(sorted(capi.glob("libonnxruntime.so*"))),
            "c_api_prune_safe": needed is not None and not any(n.startswith("libonnxruntime.so") for n in needed),
        }
        if not checks["c_api_prune_safe"]:
            print(f"  WARNING: the onnxruntime binding may need the pruned C API library: {needed}", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    functions: dict[str, Any] = {}
    for fn in spec.FUNCTIONS:
        parts = [CODE, *bundle_module.layers_for(fn)]
        unzipped = sum(assets[p]["unzipped_mb"] for p in parts)
        zipped = sum(assets[p]["zipped_mb"] for p in parts)
        target = TARGET_MB["ml" if fn.needs_model else "other"]
        functions[fn.logical_name] = {
            "assets": parts, "unzipped_mb": round(unzipped, 2), "zipped_mb": round(zipped, 2),
            "target_unzipped_mb": target, "met": unzipped <= target,
            "over_target_mb": round(max(0.0, unzipped - target), 2),
            "lambda_limit_unzipped_mb": LAMBDA_UNZIPPED_LIMIT_MB,
        }
    result = {
        "machine": {"platform": platform.platform(), "nproc": os.cpu_count(), "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": f"python{bundle_module.PYTHON_VERSION} {'/'.join(bundle_module.PLATFORMS)}",
        "build_log": [line for line in log.splitlines() if line.strip()],
        "assets": assets, "functions": functions, "checks": checks,
        "generic_pruning": "__pycache__/ and tests/ directories, *.pyi, *.pyc (rebuilt for the target), *.h, *.hpp; "
                           "boto3/botocore/s3transfer left to the runtime",
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"{'asset':<12}{'unzipped MB':>12}{'zipped MB':>11}{'files':>7}{'pyc MB':>8}{'unpruned MB':>13}{'pruned MB':>11}")
    for name, a in assets.items():
        print(f"{name:<12}{a['unzipped_mb']:>12.1f}{a['zipped_mb']:>11.1f}{a['files']:>7}{a['pyc_mb']:>8.1f}"
              f"{a.get('unpruned_mb', float('nan')):>13.1f}{a.get('pruned_mb', float('nan')):>11.1f}")
    print()
    print(f"{'function':<14}{'assets':<42}{'unzipped MB':>12}{'zipped MB':>11}{'target':>8}{'met':>5}")
    for name, f in functions.items():
        print(f"{name:<14}{'+'.join(f['assets']):<42}{f['unzipped_mb']:>12.1f}{f['zipped_mb']:>11.1f}"
              f"{f['target_unzipped_mb']:>8.0f}{'yes' if f['met'] else 'NO':>5}")
    print()
    for layer in LAYER_NAMES:
        print(f"largest in {layer}: " + ", ".join(f"{e['entry']} {e['mb']:.1f}" for e in assets[layer]["top_entries"][:6]))
        pruned = [*assets[layer]["pruned_dirs"], *assets[layer]["pruned_files"]]
        print(f"  pruned by recipe: {', '.join(pruned) or '-'}")
    print(f"pruned in every layer: {result['generic_pruning']}")
    print(f"onnxruntime binding needs {checks['onnxruntime_binding_needs']}: C API library pruned "
          f"{'safely' if checks['c_api_prune_safe'] else 'UNSAFELY?'}")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CannotMeasure as error:
        print(f"error: cannot measure bundle sizes: {error}", file=sys.stderr)
        sys.exit(1)
