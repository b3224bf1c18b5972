"""The load test, run small: N events published concurrently with duplicates and poison mixed
in; nothing is lost (published = processed + dead-lettered, in unique events) and no decision
sends twice."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "reliability.py"


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("reliability_benchmark", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_plan_publishes_exactly_what_it_says() -> None:
    bench = _load_benchmark()
    setup, phase2, injected = bench.plan(200, 0.2, 0.05, seed=1)
    # Given 200 entries, 20% duplicates and 5% poison
    assert len(setup) + len(phase2) == 200
    assert injected["duplicates_injected"] == 40 and injected["poison_injected"] == 10
    # Then the duplicates are exact copies of valid events, and the poison is unique
    ids = [detail["event_id"] for _, detail in setup + phase2]
    assert len(ids) - len(set(ids)) == 40
    assert len(injected["valid_ids"]) + len(injected["poison_ids"]) == len(set(ids)) == 160


def test_the_load_test_loses_nothing_and_never_sends_twice(tmp_path: Path) -> None:
    # When the load test runs with 200 events (20% duplicates, 5% poison), as `make bench` would
    result_path = tmp_path / "reliability.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--events", "200", "--duplicate-share", "0.2",
                           "--poison-share", "0.05", "--seed", "3", "--json", str(result_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    result = json.loads(result_path.read_text())
    # Then every entry was published, and the accounting identity holds with nothing lost
    assert result["published"] == 200
    assert result["unique_events"] == result["processed"] + result["dead_lettered"]
    assert result["lost"] == 0
    # and every poison event is on a DLQ with its reason, and nothing else is
    assert result["dead_lettered"] == result["poison_injected"] == 10
    assert result["dead_letters_without_reason"] == 0 and result["unexpected_dead_letters"] == []
    # and every trigger was decided, and no decision sent twice
    assert result["triggers_decided"] == result["triggers"]
    assert result["duplicate_sends"] == 0
    assert result["sends"] > result["triggers"] // 2  # the sends did happen
    assert "accounting identity" in done.stdout and "holds" in done.stdout
