"""Fidelio's CDK app.

Run from the repo root, either by the CDK CLI (`npx cdk synth`, cdk.json says
`python infra/app.py`) or directly: `.venv/bin/python infra/app.py` writes cdk.out/.
Lambda assets come from `python -m infra.bundle --out build/lambda` (`make bundle`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# `python infra/app.py` puts infra/ first on the path, where infra/constructs/ would shadow
# the `constructs` library: import from the repo root instead.
_INFRA_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _INFRA_DIR]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from infra import constants  # noqa: E402  (plain Python: no CDK import yet)

if TYPE_CHECKING:
    from aws_cdk import App

    from infra.constructs.functions import LambdaAssets
    from infra.stack import FidelioStack


class MissingLambdaAssets(RuntimeError):
    pass


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context, so a synth without the CLI (and the tests) sees the same flags."""
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def context_value(key: str, context: dict[str, Any] | None = None) -> Any:
    """A context value as the App will see it: CLI/env context over cdk.json."""
    cli_context = json.loads(os.environ.get("CDK_CONTEXT_JSON") or "{}")
    return {**cdk_json_context(), **(context or {}), **cli_context}.get(key)


def lambda_build_dir(context: dict[str, Any] | None = None) -> Path:
    build_dir = Path(
        context_value(constants.CTX_LAMBDA_BUILD_DIR, context) or constants.DEFAULT_LAMBDA_BUILD_DIR
    )
    return build_dir if build_dir.is_absolute() else REPO_ROOT / build_dir


def check_lambda_assets(build_dir: Path) -> None:
    """Fail before loading the CDK (seconds) when `make bundle` has not run."""
    required = [
        build_dir / constants.CODE_DIR,
        build_dir / constants.CORE_LAYER_DIR / "python",
        build_dir / constants.NUMPY_LAYER_DIR / "python",
        build_dir / constants.ML_LAYER_DIR / "python",
    ]
    missing = [path for path in required if not path.is_dir()]
    if missing:
        raise MissingLambdaAssets(
            f"Lambda assets missing ({', '.join(str(p) for p in missing)}): run `make bundle` first"
        )


def build_app(
    *,
    assets: LambdaAssets | None = None,
    outdir: str | None = None,
    context: dict[str, Any] | None = None,
    with_nag: bool = True,
) -> tuple[App, FidelioStack]:
    """The app with its one stack; cdk-nag's AWS Solutions pack runs at synth when `with_nag`."""
    from aws_cdk import App, Environment, Validations
    from cdk_nag import AwsSolutionsChecks

    from infra import spec
    from infra.constructs.functions import LambdaAssets
    from infra.stack import FidelioStack

    if assets is None:
        build_dir = lambda_build_dir(context)
        check_lambda_assets(build_dir)
        assets = LambdaAssets.from_build_dir(build_dir)
    app = App(outdir=outdir, context={**cdk_json_context(), **(context or {})})

    def ctx(key: str, default: str) -> str:
        return str(app.node.try_get_context(key) or default)

    stack = FidelioStack(
        app,
        constants.STACK_NAME,
        description="Fidelio: AI-personalized notifications for loyalty programs",
        # TableV2 with a customer-managed key needs a concrete region; the account may stay
        # unresolved (the CLI fills both from the deploying profile).
        env=Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=ctx(
                constants.CTX_REGION,
                os.environ.get("CDK_DEFAULT_REGION") or constants.DEFAULT_REGION,
            ),
        ),
        assets=assets,
        names=spec.Names(prefix=ctx(constants.CTX_NAME_PREFIX, "fidelio")),
        sender_email=ctx(constants.CTX_SENDER_EMAIL, constants.DEFAULT_SENDER_EMAIL),
        unsubscribe_base_url=ctx(constants.CTX_UNSUBSCRIBE_BASE_URL, constants.DEFAULT_UNSUBSCRIBE_BASE_URL),
        log_level=ctx(constants.CTX_LOG_LEVEL, constants.DEFAULT_LOG_LEVEL),
    )
    if with_nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def _use_project_venv() -> None:
    """cdk.json runs `python infra/app.py`: when that `python` is not the project's venv (no
    aws-cdk-lib), hand over to .venv/bin/python rather than fail on the first import."""
    import importlib.util

    venv = REPO_ROOT / ".venv"
    venv_python = venv / "bin" / "python"
    in_venv = Path(sys.prefix).resolve() == venv.resolve()
    if importlib.util.find_spec("aws_cdk") is None and venv_python.exists() and not in_venv:
        os.execv(venv_python, [str(venv_python), *sys.argv])


def main() -> int:
    _use_project_venv()
    # The CLI tells the app where to write (CDK_OUTDIR); run by hand, write ./cdk.out.
    outdir = None if "CDK_OUTDIR" in os.environ else str(REPO_ROOT / "cdk.out")
    try:
        check_lambda_assets(lambda_build_dir())
    except MissingLambdaAssets as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    app, _ = build_app(outdir=outdir)
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
