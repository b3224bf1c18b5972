"""Cold start of each Lambda function: a fresh Python process imports the handler module,
builds settings and clients (and, for decide, loads the offer model), measured against
`python -c pass` in the same run, rounds interleaved so machine noise hits every row alike.

    python benchmarks/cold_start.py --repeats 15 --json benchmarks/results/cold_start.json
    # --floors: also time the third-party stack alone (no Fidelio code), same rounds
    # --compare DIR: also time DIR/functions (e.g. the code before a change), interleaved

What a child process does, in order (each phase timed inside it):
  import   `import functions.handlers.<name>` (ingest/dispatch/feedback build deps() here)
  deps     `deps()`: settings from the FIDELIO_* environment, pynamodb tables bound, AwsClients
  clients  the boto3 clients and pynamodb connections the function uses on its first record
           (they are lazy in the code, so Lambda pays for them in the first invocation)
  model    decide only: the bundled offer model (`scorer_for(BUNDLED)`: onnxruntime session on
           model_artifacts/offers) + one predict; the SSM read of the serving config that picks
           it in AWS (one GetParameter on the first invocation) is a network call, not timed

Lambda-like on purpose:
  - only the packages the Lambda gets are importable: a sandbox per function of symlinks to
    exactly the packages of its layers (infra.bundle.layers_for and the recipes, resolved from
    uv.lock: no numpy for ingest/dispatch/feedback/preferences/privacy) plus what the python3.13
    runtime provides (boto3, botocore, s3transfer and their dependencies); `python -I -S`, so
    nothing else in the venv (requests, moto, ...) is seen — X-Ray's patch_all imports every
    library it can patch, so extra packages would inflate the figures;
  - LAMBDA_TASK_ROOT / AWS_LAMBDA_FUNCTION_NAME set, so Powertools' Tracer is active and
    patches like it does in AWS (the stack sets Tracing.ACTIVE);
  - bytecode cached (`-X pycache_prefix` in a temp dir, warmed once, not counted), as
    infra/bundle.py precompiles .pyc for the runtime;
  - every endpoint (FIDELIO_ENDPOINT_URL, the X-Ray daemon) points at a local listening socket
    that nobody answers: the benchmark fails if init opens a connection to it.

Wall time is what a cold start costs on this machine; CPU time (user+sys of the child, from
wait4) is much less sensitive to other load on a shared machine and is reported beside it.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import os
import platform
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _results import write_result  # noqa: E402

from infra import bundle as bundle_module  # noqa: E402
from infra import spec  # noqa: E402

FUNCTIONS = ("ingest", "decide", "dispatch", "feedback", "preferences", "privacy")
TARGET_MS = {"ingest": 300.0, "decide": 500.0, "dispatch": 300.0, "feedback": 300.0, "preferences": 300.0,
             "privacy": 300.0}
# The boto3 clients and pynamodb models each function touches (read from the handlers' code
# paths: functions/handlers/*.py and the dal modules they call).
CLIENTS = {
    "ingest": ("sqs",),
    "decide": ("sqs", "scheduler", "s3", "ssm"),
    "dispatch": ("sesv2", "sns", "events", "scheduler", "sqs"),
    "feedback": ("events", "sqs"),
    "preferences": ("events", "secretsmanager"),
    "privacy": ("s3", "scheduler", "dynamodb"),
}
TABLES = {
    "ingest": ("MemberRecord",),
    "decide": ("MemberRecord", "DecisionRecord", "OfferRecord"),
    "dispatch": ("DecisionRecord", "MemberRecord", "LedgerRecord", "OfferRecord"),
    "feedback": ("DecisionRecord",),
    "preferences": ("MemberRecord", "LedgerRecord"),
    "privacy": ("MemberRecord", "DecisionRecord", "LedgerRecord"),
}
RUNTIME_ROOTS = ("boto3",)

# --what-if: the changes proposed to the lead, applied to a copy of functions/ in the sandbox
# (functions/ itself is never touched), to measure what they would save.
WHAT_IF: tuple[tuple[str, str, str, str], ...] = (
    # (path, old text, new text, description): none pending; the last proposals were applied
)  # the python3.13 runtime ships boto3 (+ botocore, s3transfer, ...)

CHILD = r"""
import sys, time
sys.path[:0] = {paths!r}
t0, c0 = time.perf_counter(), time.process_time()
import importlib, json
name = {name!r}
module = importlib.import_module("functions.handlers." + name)
t1, c1 = time.perf_counter(), time.process_time()
from functions.handlers.deps import deps
d = deps()
t2, c2 = time.perf_counter(), time.process_time()
for service in {clients!r}:
    d.clients.client(service)
from functions.dal import tables
for model in {tables!r}:
    getattr(tables, model)._get_connection().connection.client
t3, c3 = time.perf_counter(), time.process_time()
if name == "decide":
    import numpy as np
    from functions.domain.features import FEATURE_NAMES
    scorer = module.scorer_for(module.BUNDLED)
    scorer.predict(np.zeros((1, len(FEATURE_NAMES)), dtype=np.float32))
    kind = type(scorer).__name__
else:
    kind = None
t4, c4 = time.perf_counter(), time.process_time()
from functions.observability import tracer
print(json.dumps({{"import": t1 - t0, "deps": t2 - t1, "clients": t3 - t2, "model": t4 - t3,
                  "cpu": {{"import": c1 - c0, "deps": c2 - c1, "clients": c3 - c2, "model": c4 - c3}},
                  "scorer": kind, "tracing": not tracer.disabled, "modules": len(sys.modules),
                  "requests_loaded": "requests" in sys.modules, "numpy_loaded": "numpy" in sys.modules,
                  "onnxruntime_loaded": "onnxruntime" in sys.modules}}))
sys.stdout.flush()
import os
os._exit(0)  # a Lambda never finalizes the interpreter during init: leave teardown out
"""
BASELINE = "import os; os._exit(0)"  # `python -c pass`, without interpreter teardown either
# --floors: the third-party stack alone, no Fidelio code, in the core-layer sandbox and an SQS
# function's environment (Tracer active): what an init cannot go below with these libraries.
_FLOOR_CLIENTS = """
import os, botocore.session
session = botocore.session.get_session()
for service in ("sqs", "dynamodb"):
    session.create_client(service, region_name="eu-west-1", endpoint_url=os.environ["FIDELIO_ENDPOINT_URL"])
"""
_FLOOR_STACK = """
from aws_lambda_powertools import Logger, Metrics, Tracer
import pydantic, pynamodb.models
Logger(service="floor"), Metrics(namespace="Floor", service="floor"), Tracer(service="floor")
class Settings(pydantic.BaseModel):
    region: str = "eu-west-1"
Settings()
""" + _FLOOR_CLIENTS
FLOORS = {
    "import botocore": "import botocore.session, botocore.client",
    "botocore + sqs & dynamodb clients (one session)": _FLOOR_CLIENTS,
    # (Powertools' batch utility is no longer imported by the functions: functions/handlers/sqs_batch.py)
    "stack: Powertools Logger/Metrics/Tracer, pydantic (one model), pynamodb, the two clients": _FLOOR_STACK,
    # what functions/handlers/__init__.py does during a handler module's import
    "the same stack, garbage collector paused while it loads (then gc.freeze)":
        "import gc\ngc.disable()\n" + _FLOOR_STACK + "\ngc.freeze()\ngc.enable()",
}
FLOOR_CHILD = "import sys\nsys.path[:0] = {paths!r}\n{code}\nimport os\nos._exit(0)"


class CannotMeasure(RuntimeError):
    pass


def _top_levels(distribution: str) -> set[str]:
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError as error:
        raise CannotMeasure(f"{distribution} is not installed in {sys.prefix}: run `make install`") from error
    names = set()
    for file in dist.files or ():
        first = file.parts[0]
        if first in ("..", "__pycache__") or first.endswith(".pth"):
            continue
        names.add(first)
    return names


def runtime_packages(lock: dict[str, list[Any]]) -> set[str]:
    """boto3 and everything it needs (what the Lambda runtime provides)."""
    seen: set[str] = set()
    pending = list(RUNTIME_ROOTS)
    while pending:
        name = pending.pop()
        if name in seen or name not in lock:
            continue
        seen.add(name)
        pending.extend(dep for dep, _, marker in lock[name][0].dependencies
                       if bundle_module._applies(marker))
    return seen


def layers_of(name: str) -> tuple[str, ...]:
    return bundle_module.layers_for(next(f for f in spec.FUNCTIONS if f.logical_name == name))


def build_sandbox(root: Path, layers: tuple[str, ...]) -> tuple[Path, dict[str, list[str]]]:
    """A directory of symlinks to exactly the packages a Lambda function with `layers` can import."""
    requirements = bundle_module.layer_requirements(REPO / "uv.lock")
    lock = bundle_module.read_lock(REPO / "uv.lock")
    groups = {name: sorted(requirements[name]) for name in layers}
    groups["runtime"] = sorted(runtime_packages(lock))
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    sandbox = root / ("site-" + "+".join(layers))
    sandbox.mkdir(parents=True, exist_ok=True)
    for packages in groups.values():
        for package in packages:
            for top in _top_levels(package):
                source, target = site / top, sandbox / top
                if source.exists() and not target.exists():
                    target.symlink_to(source)
    return sandbox, groups


def what_if_overlay(root: Path) -> tuple[Path, list[str]]:
    """A copy of functions/ with the WHAT_IF edits applied."""
    overlay = root / "what_if"
    shutil.rmtree(overlay, ignore_errors=True)
    shutil.copytree(REPO / "functions", overlay / "functions",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    applied = []
    for relative, old, new, description in WHAT_IF:
        path = overlay / relative
        text = path.read_text()
        if text.count(old) != 1:
            raise CannotMeasure(f"--what-if: the proposed edit to {relative} no longer applies (code changed)")
        path.write_text(text.replace(old, new))
        if description:
            applied.append(description)
    return overlay, applied


def sentinel() -> socket.socket:
    """A listening socket nobody accepts on: any connection attempt during init is seen."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server.setblocking(False)
    return server


def connections_seen(server: socket.socket) -> int:
    count = 0
    while select.select([server], [], [], 0)[0]:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            break
        conn.close()
        count += 1
    return count


def child_env(name: str, endpoint: str, daemon: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8", "TZ": "UTC",
        # What Lambda sets.
        "LAMBDA_TASK_ROOT": str(REPO), "AWS_LAMBDA_FUNCTION_NAME": f"fidelio-{name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769" if name == "decide" else "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13", "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_XRAY_DAEMON_ADDRESS": daemon, "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        # What the CDK stack sets (infra/constructs/functions.py), pointed at the sentinel.
        "POWERTOOLS_SERVICE_NAME": f"fidelio-{name}", "POWERTOOLS_METRICS_NAMESPACE": "Fidelio",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "FIDELIO_ENDPOINT_URL": endpoint, "FIDELIO_REGION": "eu-west-1",
        "FIDELIO_MEMBERS_TABLE": "fidelio-members", "FIDELIO_DECISIONS_TABLE": "fidelio-decisions",
        "FIDELIO_LEDGER_TABLE": "fidelio-ledger", "FIDELIO_OFFERS_TABLE": "fidelio-offers",
        "FIDELIO_IDEMPOTENCY_TABLE": "fidelio-idempotency", "FIDELIO_BUS_NAME": "fidelio",
        "FIDELIO_DECIDE_QUEUE_URL": f"{endpoint}/123456789012/fidelio-decide",
        "FIDELIO_DISPATCH_QUEUE_URL": f"{endpoint}/123456789012/fidelio-dispatch",
        "FIDELIO_DISPATCH_QUEUE_ARN": "arn:aws:sqs:eu-west-1:123456789012:fidelio-dispatch",
        "FIDELIO_DLQ_URL": f"{endpoint}/123456789012/fidelio-{name}-dlq",
        "FIDELIO_SCHEDULE_GROUP": "fidelio-sends",
        "FIDELIO_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/fidelio-scheduler",
        "FIDELIO_SES_CONFIGURATION_SET": "fidelio-messages", "FIDELIO_SENDER_EMAIL": "rewards@example.com",
        "FIDELIO_DATA_BUCKET": "fidelio-data", "FIDELIO_UNSUBSCRIBE_BASE_URL": "https://example.com/u",
        "FIDELIO_MODEL_DIR": str(REPO / "model_artifacts" / "offers"),
    }
    if name in ("dispatch", "preferences"):
        env["FIDELIO_LINK_SIGNING_KEYS"] = "k1:bench-secret"
    return env


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall ms, child CPU ms, stdout) of one fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    wall = (time.perf_counter() - started) * 1000
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]
    if process.returncode != 0:
        raise CannotMeasure(f"child failed ({process.returncode}): {' '.join(args[:4])} ...\n"
                            f"{err.decode(errors='replace')[-3000:]}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, out.decode()


def importtime_top(python: list[str], code: str, env: dict[str, str], top: int, runs: int = 3) -> list[dict[str, Any]]:
    """Import time by top-level package: the sum of its modules' own times (module bodies
    included, e.g. X-Ray's recorder building a botocore session), median of `runs` runs."""
    args = [*python[:1], "-X", "importtime", *python[1:], "-c", code]
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        process = subprocess.run(args, env=env, cwd="/", capture_output=True, text=True, check=False)
        by_package: dict[str, float] = {}
        for line in process.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            self_part, _, module = line.removeprefix("import time:").split("|")
            package = module.strip().split(".")[0]
            by_package[package] = by_package.get(package, 0.0) + int(self_part) / 1000
        samples.append(by_package)
    packages = {p for sample in samples for p in sample}
    medians = {p: statistics.median(sample.get(p, 0.0) for sample in samples) for p in packages}
    ranked = sorted(medians.items(), key=lambda kv: -kv[1])[:top]
    return [{"package": name, "self_ms": round(ms, 1)} for name, ms in ranked]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument("--importtime", type=int, default=10, metavar="N",
                        help="also record the N heaviest imports of each function (0: skip)")
    parser.add_argument("--what-if", type=int, default=0, metavar="N",
                        help="also time the proposed functions/ edits on a copy, N rounds (0: skip)")
    parser.add_argument("--floors", action="store_true",
                        help="also time the third-party stack alone (FLOORS), interleaved with the functions")
    parser.add_argument("--compare", default=None, metavar="DIR",
                        help="also time DIR/functions (e.g. the code before a change, from `git archive`) in "
                             "--compare-rounds rounds interleaved with the current code, same sandbox and env")
    parser.add_argument("--compare-rounds", type=int, default=9, metavar="N")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.compare and not (Path(args.compare) / "functions" / "handlers").is_dir():
        print(f"error: --compare {args.compare}: no functions/handlers/ in it", file=sys.stderr)
        return 2
    names = [n for n in args.functions.split(",") if n]
    unknown = set(names) - set(FUNCTIONS)
    if unknown or args.repeats < 1:
        print(f"error: unknown functions {sorted(unknown)} or --repeats < 1", file=sys.stderr)
        return 2
    if not (REPO / "model_artifacts" / "offers" / "model.onnx").exists():
        print("error: model_artifacts/offers/model.onnx is missing: decide's cold start would time the "
              "prior scorer, not a model load (run `make models`)", file=sys.stderr)
        return 1
    # Stable paths, so the bytecode cache (keyed by source path) is reused from run to run.
    work = Path(tempfile.gettempdir()) / f"fidelio-bench-sandbox-{platform.python_version()}"
    shutil.rmtree(work, ignore_errors=True)
    pycache = Path(tempfile.gettempdir()) / f"fidelio-bench-pycache-{platform.python_version()}"
    server, daemon_socket = sentinel(), sentinel()
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    daemon = f"127.0.0.1:{daemon_socket.getsockname()[1]}"
    try:
        sandboxes = {layers: build_sandbox(work, layers) for layers in {layers_of(n) for n in names}}
        sandbox = {n: sandboxes[layers_of(n)][0] for n in names}
        groups = {n: sandboxes[layers_of(n)][1] for n in names}
        python = [sys.executable, "-I", "-S", "-X", f"pycache_prefix={pycache}"]
        codes = {n: CHILD.format(paths=[str(REPO), str(sandbox[n])], name=n, clients=CLIENTS[n], tables=TABLES[n])
                 for n in names}
        envs = {n: child_env(n, endpoint, daemon) for n in names}
        baseline_env = child_env("ingest", endpoint, daemon)
        # Warm the bytecode cache (compiles once; not counted), and check what each child sees.
        first: dict[str, dict[str, Any]] = {}
        for n in names:
            run_child([*python, "-c", codes[n]], envs[n])
            first[n] = json.loads(run_child([*python, "-c", codes[n]], envs[n])[2])
        if first.get("decide", {}).get("scorer") not in (None, "OnnxScorer"):
            raise CannotMeasure(f"decide loaded {first['decide']['scorer']}, not the ONNX model")
        core_sandbox = build_sandbox(work, ("layer-core",))[0]
        floor_codes = {label: FLOOR_CHILD.format(paths=[str(core_sandbox)], code=code)
                       for label, code in (FLOORS.items() if args.floors else ())}
        for code in floor_codes.values():
            run_child([*python, "-c", code], baseline_env)  # compile
        floor_samples: dict[str, list[tuple[float, float]]] = {label: [] for label in floor_codes}
        baseline_wall: list[float] = []
        baseline_cpu: list[float] = []
        wall: dict[str, list[float]] = {n: [] for n in names}
        cpu: dict[str, list[float]] = {n: [] for n in names}
        phases: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        started = time.perf_counter()
        for _ in range(args.repeats):
            w, c, _ = run_child([*python, "-c", BASELINE], baseline_env)
            baseline_wall.append(w)
            baseline_cpu.append(c)
            for label, code in floor_codes.items():
                w, c, _ = run_child([*python, "-c", code], baseline_env)
                floor_samples[label].append((w, c))
            for n in names:
                w, c, out = run_child([*python, "-c", codes[n]], envs[n])
                wall[n].append(w)
                cpu[n].append(c)
                phases[n].append(json.loads(out))
        elapsed = time.perf_counter() - started
        contacted = connections_seen(server) + connections_seen(daemon_socket)
        if contacted:
            raise CannotMeasure(f"init opened {contacted} connection(s) to the endpoints: init is not call-free")
        top = {n: importtime_top(python, codes[n], envs[n], args.importtime) for n in names} if args.importtime else {}
        what_if: dict[str, Any] = {}
        if args.what_if:
            overlay, applied = what_if_overlay(work)
            alt = {n: CHILD.format(paths=[str(overlay), str(sandbox[n])], name=n, clients=CLIENTS[n], tables=TABLES[n])
                   for n in names}
            for n in names:
                run_child([*python, "-c", alt[n]], envs[n])  # compile the copy
            samples: dict[str, list[tuple[float, float, float, float, bool]]] = {n: [] for n in names}
            for _ in range(args.what_if):  # interleaved with the current code, same conditions
                for n in names:
                    w0, c0, _ = run_child([*python, "-c", codes[n]], envs[n])
                    w1, c1, out = run_child([*python, "-c", alt[n]], envs[n])
                    samples[n].append((w0, c0, w1, c1, json.loads(out)["numpy_loaded"]))
            what_if = {"edits": applied, "rounds": args.what_if, "functions": {
                n: {"init_ms_median_now": round(statistics.median(x[0] for x in samples[n]), 1),
                    "init_ms_median_after": round(statistics.median(x[2] for x in samples[n]), 1),
                    "init_cpu_ms_median_now": round(statistics.median(x[1] for x in samples[n]), 1),
                    "init_cpu_ms_median_after": round(statistics.median(x[3] for x in samples[n]), 1),
                    "numpy_loaded_after": samples[n][0][4]}
                for n in names}}
        compared: dict[str, Any] = {}
        if args.compare:
            other = {n: CHILD.format(paths=[str(Path(args.compare).resolve()), str(sandbox[n])], name=n,
                                     clients=CLIENTS[n], tables=TABLES[n]) for n in names}
            for n in names:
                run_child([*python, "-c", other[n]], envs[n])  # compile the other code
            pairs: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in names}
            for _ in range(args.compare_rounds):  # interleaved with the current code, same conditions
                for n in names:
                    w0, c0, _ = run_child([*python, "-c", codes[n]], envs[n])
                    w1, c1, _ = run_child([*python, "-c", other[n]], envs[n])
                    pairs[n].append((w0, c0, w1, c1))
            compared = {"code": str(args.compare), "rounds": args.compare_rounds, "functions": {
                n: {"init_ms_median_other": round(statistics.median(x[2] for x in pairs[n]), 1),
                    "init_ms_median_now": round(statistics.median(x[0] for x in pairs[n]), 1),
                    "init_cpu_ms_median_other": round(statistics.median(x[3] for x in pairs[n]), 1),
                    "init_cpu_ms_median_now": round(statistics.median(x[1] for x in pairs[n]), 1)}
                for n in names}}
        if connections_seen(server) + connections_seen(daemon_socket):
            raise CannotMeasure("init opened a connection to the endpoints (--compare rounds)")
    finally:
        server.close()
        daemon_socket.close()
        shutil.rmtree(work, ignore_errors=True)

    base_wall, base_cpu = statistics.median(baseline_wall), statistics.median(baseline_cpu)
    # Lambda's own init phase today: interpreter + handler import (ingest/dispatch/feedback also
    # run deps() at import); clients and decide's model are built lazily, in the first invocation.
    result: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpu": _cpu_model(), "nproc": os.cpu_count(),
                    "loadavg_1m": os.getloadavg()[0], "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "repeats": args.repeats, "seconds": round(elapsed, 1),
        "method": "fresh `python -I -S` per sample, Lambda-only packages, Tracer active, .pyc cached; "
                  "wall = spawn to exit; cpu = user+sys of the child",
        "packages_visible": groups,
        "python_baseline_ms": round(base_wall, 1), "python_baseline_cpu_ms": round(base_cpu, 1),
        "network_connections_during_init": 0,
        "functions": {},
    }
    print(f"{'':<10}{'--------- wall ms ---------':>33}{'---------- cpu ms (phases) ----------':>46}")
    print(f"{'function':<10}{'init':>9}{'max':>9}{'python':>8}{'ratio':>7}{'total':>8}"
          f"{'import':>8}{'deps':>7}{'clients':>8}{'model':>7}{'target':>8}  met(wall/cpu)")
    for n in names:
        median_wall, median_cpu = statistics.median(wall[n]), statistics.median(cpu[n])
        ph = {k: round(statistics.median(p[k] for p in phases[n]) * 1000, 1)
              for k in ("import", "deps", "clients", "model")}
        ph_cpu = {k: round(statistics.median(p["cpu"][k] for p in phases[n]) * 1000, 1)
                  for k in ("import", "deps", "clients", "model")}
        entry = {
            "init_ms_median": round(median_wall, 1), "init_ms_max": round(max(wall[n]), 1),
            "init_ms_min": round(min(wall[n]), 1),
            "python_baseline_ms": round(base_wall, 1),
            "init_over_baseline_ms": round(median_wall - base_wall, 1),
            "ratio_to_baseline": round(median_wall / base_wall, 1),
            "init_cpu_ms_median": round(median_cpu, 1), "init_cpu_ms_max": round(max(cpu[n]), 1),
            "python_baseline_cpu_ms": round(base_cpu, 1),
            "phases_ms_median": ph, "phases_cpu_ms_median": ph_cpu, "target_ms": TARGET_MS[n],
            "met_wall": median_wall <= TARGET_MS[n], "met_cpu": median_cpu <= TARGET_MS[n],
            "tracing_active": first[n]["tracing"], "modules_loaded": first[n]["modules"],
            "numpy_loaded": first[n]["numpy_loaded"], "onnxruntime_loaded": first[n]["onnxruntime_loaded"],
        }
        if top:
            entry["top_imports"] = top[n]
        result["functions"][n] = entry
        print(f"{n:<10}{median_wall:>9.0f}{max(wall[n]):>9.0f}{base_wall:>8.0f}{median_wall / base_wall:>7.1f}"
              f"{median_cpu:>8.0f}{ph_cpu['import']:>8.0f}{ph_cpu['deps']:>7.0f}{ph_cpu['clients']:>8.0f}{ph_cpu['model']:>7.0f}"
              f"{TARGET_MS[n]:>8.0f}  {'yes' if entry['met_wall'] else 'NO'}/{'yes' if entry['met_cpu'] else 'NO'}")
    print(f"python -c pass: {base_wall:.0f} ms wall, {base_cpu:.0f} ms cpu (median of {args.repeats}); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; no connection opened during init")
    if top:
        for n in names:
            heavy = ", ".join(f"{r['package']} {r['self_ms']:.0f}" for r in top[n][:8])
            print(f"  import ms by package, {n} (-X importtime, median of 3): {heavy}")
    if what_if:
        result["what_if"] = what_if
        print(f"what-if (proposed edits on a copy of functions/, {what_if['rounds']} interleaved rounds):")
        for edit in what_if["edits"]:
            print(f"  - {edit}")
        print(f"  {'function':<10}{'wall now':>10}{'after':>8}{'cpu now':>9}{'after':>8}  numpy imported after")
        for n, row in what_if["functions"].items():
            print(f"  {n:<10}{row['init_ms_median_now']:>10.0f}{row['init_ms_median_after']:>8.0f}"
                  f"{row['init_cpu_ms_median_now']:>9.0f}{row['init_cpu_ms_median_after']:>8.0f}  "
                  f"{'yes' if row['numpy_loaded_after'] else 'no'}")
    if floor_samples:
        result["floors"] = {label: {"init_ms_median": round(statistics.median(x[0] for x in xs), 1),
                                    "init_cpu_ms_median": round(statistics.median(x[1] for x in xs), 1)}
                            for label, xs in floor_samples.items()}
        print("floors (no Fidelio code; core layer only; same rounds):")
        for label, row in result["floors"].items():
            print(f"  {row['init_ms_median']:>6.0f} ms wall {row['init_cpu_ms_median']:>6.0f} ms cpu  {label}")
    if compared:
        result["compare"] = compared
        print(f"compared with {compared['code']}/functions ({compared['rounds']} interleaved rounds, "
              f"load average {os.getloadavg()[0]:.1f}):")
        print(f"  {'function':<10}{'wall other':>11}{'now':>7}{'cpu other':>11}{'now':>7}")
        for n, row in compared["functions"].items():
            print(f"  {n:<10}{row['init_ms_median_other']:>11.0f}{row['init_ms_median_now']:>7.0f}"
                  f"{row['init_cpu_ms_median_other']:>11.0f}{row['init_cpu_ms_median_now']:>7.0f}")
    write_result(args.json, result)
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (CannotMeasure, bundle_module.BundleError) as error:
        print(f"error: cannot measure cold starts: {error}", file=sys.stderr)
        sys.exit(1)
