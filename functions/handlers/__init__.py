"""The Lambda entry points, one module per function.

Cold start: importing a handler module builds 115-160k objects that live as long as the
container (pydantic models, botocore service models, Powertools, X-Ray). Python's cyclic
garbage collector would scan them again and again while they are built (~150 young and ~15
middle-generation passes and a full one: 40-75 ms of an ingest init's CPU on the benchmark
machine) and find ~700 unreachable objects among them. So in a Lambda container the collector
is paused while the handler module loads, and the module's last line, `init_done()`, freezes
what init built (gc.freeze: left out of every later collection, so warm invocations' full
collections stay cheap too) and resumes collection. The price: the few hundred objects of
init garbage are kept for the container's life instead of freed. Outside Lambda (tests,
CLI, local runner) nothing changes.
"""

from __future__ import annotations

import gc
import os

_paused = "AWS_LAMBDA_FUNCTION_NAME" in os.environ and gc.isenabled()
if _paused:
    gc.disable()


def init_done() -> None:
    """The handler module is loaded: keep its objects out of later collections, collect again."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
