"""`python infra/app.py` works from the repo root, and says what to do when assets are missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.constants import REPO_ROOT


def _run_app(build_dir: Path, outdir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),  # as the CLI passes it
        "CDK_CONTEXT_JSON": json.dumps({"fidelio:lambdaBuildDir": str(build_dir)}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    return subprocess.run(
        [sys.executable, "infra/app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def test_app_py_writes_the_template_with_cdk_nag_passing(placeholder_build: Path, tmp_path: Path) -> None:
    # Given Lambda assets in the build folder
    # When app.py runs as the CDK CLI runs it
    result = _run_app(placeholder_build, tmp_path)
    # Then it succeeds (cdk-nag included) and writes FidelioStack's template
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "FidelioStack.template.json").read_text())
    assert "AWS::Events::EventBus" in {r["Type"] for r in template["Resources"].values()}


def test_app_py_without_a_bundle_says_to_run_make_bundle(tmp_path: Path) -> None:
    # Given no Lambda assets
    # When app.py runs
    result = _run_app(tmp_path / "no-build", tmp_path / "out")
    # Then it fails with one line saying what to do
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "run `make bundle` first" in lines[0]
