"""A handler module's import (a Lambda function's INIT phase) runs with the garbage collector
paused, and leaves it running again, with init's objects frozen (functions/handlers/__init__.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import gc, json, sys
import functions.handlers
paused_during_import = not gc.isenabled()
import functions.handlers.feedback
print(json.dumps({"paused_during_import": paused_during_import, "enabled_after": gc.isenabled(),
                  "frozen": gc.get_freeze_count()}))
"""


def import_a_handler(extra_env: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT")}
    env.update({"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "FIDELIO_ENDPOINT_URL": "http://127.0.0.1:9",
                "POWERTOOLS_TRACE_DISABLED": "true", **extra_env})
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


@pytest.mark.parametrize("in_lambda", [True, False])
def test_the_collector_runs_after_a_handler_module_is_loaded(in_lambda: bool) -> None:
    # Given a process that imports a handler module, in a Lambda container or not
    env = {"AWS_LAMBDA_FUNCTION_NAME": "fidelio-feedback"} if in_lambda else {}
    # When the import is over
    seen = import_a_handler(env)
    # Then the collector is on; in Lambda it was off during the import and init's objects are
    # frozen (never scanned again), elsewhere nothing changed
    assert seen["enabled_after"] is True
    assert seen["paused_during_import"] is in_lambda
    assert (seen["frozen"] > 10_000) if in_lambda else (seen["frozen"] == 0)
