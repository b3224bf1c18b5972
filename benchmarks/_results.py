"""The one way a benchmark writes its JSON result (imported by the scripts beside it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_result(path: str | Path | None, result: dict[str, Any]) -> None:
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
