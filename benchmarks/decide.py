"""Decide hot path, in-process with storage faked: decisions/s and batch latency for batches
of members with ~N candidates each, against a naive baseline measured in the same run (the
same engine, but scoring one candidate at a time — what a per-candidate loop costs).

    python benchmarks/decide.py --members-per-batch 100 --candidates 60 --json PATH

Also, unless --skip-native / --skip-vw:
  - onnxruntime against native LightGBM on the same model and the same batch (`ort_vs_native`).
    model_artifacts/offers ships no native model, so a surrogate is trained in the run: LightGBM
    with the model card's params and rounds, on the candidate rows this benchmark's own decide
    batches score, with labels drawn from the shipped model's probabilities; it is exported to
    ONNX (onnxmltools, zipmap=False, target_opset=15) and both runtimes time that one model.
  - `speedup_vs_naive`: the engine with that ONNX model (one batched call) against the same engine
    calling native LightGBM once per candidate. The previous figure (shipped model, batched vs one
    ONNX call per row) is kept as `speedup_vs_naive_onnx_rows`.
  - `vs_vw`: like for like, the whole engine against the same engine with Vowpal Wabbit as its
    scorer and chooser: same candidates, guardrails, features and decision records, but instead
    of onnxruntime + expected value + choice, each member's candidate rows become one multiline
    ADF example for VW `cb_explore_adf` (shared = member features, one action line per candidate,
    -q sa; trained briefly on the same rows and labels), VW predicts the pmf and the action is
    sampled from it. Both engines timed batch by batch, interleaved, in this run. Two ways to hand
    VW the examples are timed (text lines + `Workspace.parse`, and `pyvw.Example` objects built
    from feature lists with pre-hashed feature ids); `vs_vw` uses the faster for VW.
    The previous definitions are kept: `vs_vw_predict_only` (the old `vs_vw`: the whole engine
    against VW's predict call alone, examples parsed before the clock), `vs_vw_incl_parse` (the
    same with VW's parsing inside the clock) and `vs_vw_scoring_only` (VW predict against
    onnxruntime scoring the same rows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _results import write_result  # noqa: E402

from functions.domain import events as ev  # noqa: E402
from functions.domain.decision import (  # noqa: E402
    PolicyConfig,
    PriorScorer,
    ScoredCandidates,
    _draw,
    _rng,
    candidate_batch,
    decide_batch,
    decision_id_for,
    decision_record,
)
from functions.domain.features import FEATURE_NAMES, FEATURE_VERSION, N_MEMBER, CatalogArrays  # noqa: E402
from functions.domain.offers import Offer  # noqa: E402
from functions.domain.profile import MemberProfile, apply_event  # noqa: E402
from functions.domain.scoring import OnnxScorer  # noqa: E402
from functions.domain.triggers import DEFAULT_TRIGGERS, DecisionRequest  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CATEGORIES = ["coffee", "bakery", "wine", "produce", "dairy", "snacks", "frozen", "household"]


def catalog_for(candidates: int, slots: int) -> CatalogArrays:
    """Enough offers that each member has about `candidates` allowed candidates
    (offers × 2 channels × `slots` send hours)."""
    offers = max(1, round(candidates / (2 * slots)))
    return CatalogArrays.build([
        Offer(offer_id=f"offer-{i}", title=f"Offer {i}", categories=[CATEGORIES[i % len(CATEGORIES)]],
              value=2.0 + i % 7, channels=[ev.Channel.EMAIL, ev.Channel.PUSH])
        for i in range(offers)
    ])


def member(index: int, rng: np.random.Generator) -> MemberProfile:
    member_id = f"bench-{index}"
    profile = MemberProfile(member_id=member_id)
    apply_event(profile, ev.MemberEnrolled(event_id="e", member_id=member_id, occurred_at=NOW - timedelta(days=300),
                                           time_zone="UTC", email="m@example.com", push_endpoint_arn="arn:e"))
    for channel in ("email", "push"):
        apply_event(profile, ev.ConsentChanged(event_id=f"c-{channel}", member_id=member_id,
                                               occurred_at=NOW - timedelta(days=300), channel=channel,
                                               topic="offers", granted=True, source="bench"))
    for k in range(int(rng.integers(3, 30))):
        category = CATEGORIES[int(rng.integers(0, len(CATEGORIES)))]
        apply_event(profile, ev.PurchaseCompleted(
            event_id=f"b{k}", member_id=member_id, occurred_at=NOW - timedelta(hours=float(rng.uniform(1, 5000))),
            order_id=f"o{k}", amount=float(rng.uniform(3, 90)),
            line_items=[ev.LineItem(product_id="p", category=category, unit_price=float(rng.uniform(1, 30)))]))
    return profile


class OneAtATime:
    """The naive baseline: the same model, called once per candidate."""

    def __init__(self, scorer):
        self.scorer, self.version = scorer, scorer.version

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.scorer.predict(rows[i : i + 1])[0] for i in range(len(rows))])


class Recording:
    """Scores with `inner` and keeps every matrix it was asked to score."""

    def __init__(self, inner):
        self.inner, self.version, self.blocks = inner, inner.version, []

    def predict(self, rows: np.ndarray) -> np.ndarray:
        self.blocks.append(rows.copy())
        return self.inner.predict(rows)


class NativeBatched:
    """Native LightGBM, one call per batch (single thread)."""

    def __init__(self, booster, version: str):
        self.booster, self.version = booster, version

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.booster.predict(rows, num_threads=1)


class NativePerCandidate(NativeBatched):
    """The naive baseline: native LightGBM called once per candidate."""

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.booster.predict(rows[i : i + 1], num_threads=1)[0] for i in range(len(rows))])


def run(scorer, profiles, catalog, config, batch: int, repeats: int,
        cpu: list[float] | None = None) -> tuple[list[float], int, int]:
    """Time `repeats` batches (wall ms; CPU ms of the process appended to `cpu` if given);
    `scorer` is a Scorer (the engine's decide_batch with it) or an engine object with
    `decide(requests, profiles, catalog, now, config)`."""
    trigger = next(t for t in DEFAULT_TRIGGERS if t.name == "app_engagement")
    ids = list(profiles)
    latencies, decisions, candidates = [], 0, 0
    for r in range(repeats):
        chunk = ids[(r * batch) % len(ids):][:batch] or ids[:batch]
        requests = [DecisionRequest(member_id=m, trigger=trigger, cause_id=f"c{r}", occurred_at=NOW) for m in chunk]
        started, cpu_started = time.perf_counter(), time.process_time()
        if hasattr(scorer, "decide"):
            out = scorer.decide(requests, profiles, catalog, NOW, config)
        else:
            out = decide_batch(requests, profiles, catalog, scorer, NOW, config)
        latencies.append((time.perf_counter() - started) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - cpu_started) * 1000)
        decisions += len(out)
        candidates += sum(d.candidates_allowed for d in out)
    return latencies, decisions, candidates


def candidate_rows(scorer, profiles, catalog, config) -> tuple[np.ndarray, list[int]]:
    """Every candidate row decide scores for every benchmark member, and rows per member."""
    trigger = next(t for t in DEFAULT_TRIGGERS if t.name == "app_engagement")
    recorder = Recording(scorer)
    requests = [DecisionRequest(member_id=m, trigger=trigger, cause_id="rows", occurred_at=NOW) for m in profiles]
    out = decide_batch(requests, profiles, catalog, recorder, NOW, config)
    return np.vstack(recorder.blocks), [d.candidates_allowed for d in out]


def tree_count(onnx_path: Path) -> int | None:
    try:
        import onnx
    except ImportError:
        return None
    for node in onnx.load(str(onnx_path)).graph.node:
        for attribute in node.attribute:
            if attribute.name in ("nodes_treeids", "class_treeids"):
                return len(set(attribute.ints))
    return None


def surrogate(model_dir: Path, rows: np.ndarray, labels: np.ndarray, work: Path):
    """(booster, OnnxScorer of the same booster, notes): the native model and its ONNX export."""
    import lightgbm as lgb
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    card = json.loads((model_dir / "metadata.json").read_text()) if (model_dir / "metadata.json").exists() else {}
    algorithm = card.get("algorithm", {})
    native_file = next((model_dir / n for n in ("model.txt", "booster.txt", "model.lgb") if (model_dir / n).exists()),
                       None)
    if native_file is not None:
        booster = lgb.Booster(model_file=str(native_file))
        how = f"native model shipped ({native_file.name}); ONNX exported from it in this run"
    else:
        params = dict(algorithm.get("params") or {"objective": "binary", "num_leaves": 7, "learning_rate": 0.03,
                                                  "num_threads": 1, "verbose": -1, "seed": 7})
        params["num_threads"], params["verbose"] = 1, -1
        rounds = int(algorithm.get("num_boost_round", 250))
        booster = lgb.train(params, lgb.Dataset(rows, label=labels), num_boost_round=rounds)
        how = (f"no native model in {model_dir.name}/: surrogate LightGBM trained in this run with the card's params "
               f"and {rounds} rounds on {len(rows)} of this benchmark's candidate rows, labels ~ Bernoulli(shipped "
               f"model's P); exported to ONNX (onnxmltools, zipmap=False, opset 15); both runtimes time that model")
    model = onnxmltools.convert_lightgbm(booster, initial_types=[("input", FloatTensorType([None, rows.shape[1]]))],
                                         zipmap=False, target_opset=15)
    target = work / "surrogate"
    target.mkdir(parents=True, exist_ok=True)
    (target / "model.onnx").write_bytes(model.SerializeToString())
    surrogate_card = {**card, "name": card.get("name", "offers"), "model_version": "surrogate-native-parity",
                      "feature_version": FEATURE_VERSION, "feature_names": list(FEATURE_NAMES)}
    (target / "metadata.json").write_text(json.dumps(surrogate_card))
    scorer = OnnxScorer(target, FEATURE_NAMES, FEATURE_VERSION)
    return booster, scorer, how, target / "model.onnx"


def median_seconds(fn, rows: np.ndarray, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(rows)
        samples.append(time.perf_counter() - started)
    return float(np.median(samples))


def interleaved_rates(scorers: list, profiles, catalog, config, batch: int, rounds: int) -> list[float]:
    """decisions/s of each scorer, one batch each in turn, so load changes hit them alike."""
    totals = [[0.0, 0] for _ in scorers]
    for _ in range(rounds):
        for k, scorer in enumerate(scorers):
            latencies, decisions, _ = run(scorer, profiles, catalog, config, batch, 1)
            totals[k][0] += sum(latencies) / 1000
            totals[k][1] += decisions
    return [d / t for t, d in totals]


def vw_lines(rows: np.ndarray, chosen: int | None = None, cost: float = 0.0, probability: float = 1.0) -> list[str]:
    """One multiline ADF example: shared member features, one action line per candidate."""
    member = rows[0, :N_MEMBER].tolist()
    lines = ["shared |s " + " ".join([f"m{j}:{v:.6g}" for j, v in enumerate(member) if v != 0.0])]
    for i, row in enumerate(rows[:, N_MEMBER:].tolist()):
        features = " ".join([f"c{j}:{v:.6g}" for j, v in enumerate(row) if v != 0.0])
        label = f"0:{cost:.6g}:{probability:.6g} " if chosen == i else ""
        lines.append(f"{label}|a {features}")
    return lines


VW_OPTIONS = "--cb_explore_adf --epsilon 0.1 -q sa -b 20 --quiet"


def vw_members(counts: list[int]) -> list[tuple[int, int]]:
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(int)
    return [(int(offsets[k]), int(offsets[k + 1])) for k in range(len(counts)) if counts[k] > 0]


def vw_trained(rows: np.ndarray, counts: list[int], labels: np.ndarray, rng):
    """VW cb_explore_adf after a short training pass on the benchmark's rows: logged uniformly
    random actions, cost = -label, two passes."""
    from vowpalwabbit import Workspace

    vw = Workspace(VW_OPTIONS)
    for _ in range(2):
        for start, end in vw_members(counts):
            chosen = int(rng.integers(0, end - start))
            vw.learn(vw_lines(rows[start:end], chosen, -float(labels[start + chosen]), 1.0 / (end - start)))
    return vw


class VwEngine:
    """The same engine with VW as scorer and chooser: Fidelio's candidates, guardrails, features
    (`candidate_batch`) and decision records (`decision_record`, reasons for the chosen candidate
    only); for each member, its candidate rows as one multiline ADF example, VW's pmf, and an
    action sampled from the pmf with the same per-decision seeded draw as the engine's.

    `builder`: "text" = one text line per action, `Workspace.parse` (VW's documented input);
    "examples" = `pyvw.Example` objects from feature lists with feature ids hashed once up front
    (no text, no per-feature string hashing). Same features, same hashes, same pmf."""

    def __init__(self, vw, builder: str):
        from vowpalwabbit import pyvw

        self.vw, self.builder, self.pyvw = vw, builder, pyvw
        self.label_type = pyvw.LabelType.CONTEXTUAL_BANDIT
        shared_ns, action_ns = vw.hash_space("s"), vw.hash_space("a")
        self.shared_ids = [vw.hash_feature(f"m{j}", shared_ns) for j in range(N_MEMBER)]
        self.action_ids = [vw.hash_feature(f"c{j}", action_ns) for j in range(len(FEATURE_NAMES) - N_MEMBER)]

    def pmf(self, rows: np.ndarray) -> np.ndarray:
        vw = self.vw
        if self.builder == "text":
            examples = vw.parse(vw_lines(rows))
        else:
            example = self.pyvw.Example
            member = rows[0, :N_MEMBER].tolist()
            shared = example(vw, {"s": [(f, v) for f, v in zip(self.shared_ids, member, strict=True) if v != 0.0]},
                             labelType=self.label_type)
            shared.set_label_string("shared")
            examples = [shared]
            for row in rows[:, N_MEMBER:].tolist():
                examples.append(example(vw, {"a": [(f, v) for f, v in zip(self.action_ids, row, strict=True)
                                                   if v != 0.0]}, labelType=self.label_type))
            for item in examples:
                item.setup_example()
        pmf = vw.predict(examples)
        vw.finish_example(examples)
        return np.asarray(pmf, dtype=np.float64)

    def decide(self, requests, profiles, catalog, now, config) -> list:
        batch = candidate_batch(requests, profiles, catalog, now, config)
        decisions = []
        for member, window, affinity in zip(batch.members, batch.windows, batch.hour_affinity, strict=True):
            decision_id = decision_id_for(member.profile.member_id, member.request.cause_id,
                                          member.request.trigger.name)
            pmf = self.pmf(batch.rows[window]) if window.stop > window.start else np.zeros(0)
            # VW's action set is the candidates (no "send nothing" action): index 0 gets p = 0.
            probabilities = np.concatenate([[0.0], pmf]) if len(pmf) else np.ones(1)
            chosen = _draw(_rng(config, decision_id), probabilities)
            scored = ScoredCandidates(batch.offer_index[window], batch.channel_index[window], batch.send_at[window],
                                      pmf, np.zeros(len(pmf)), pmf)
            decisions.append(decision_record(member, scored, decision_id, chosen, probabilities,
                                             chosen != int(np.argmax(probabilities)), affinity, catalog,
                                             f"vw {VW_OPTIONS}", now, config, "vw"))
        return decisions


def vw_comparison(vw, rows: np.ndarray, counts: list[int], ort_scorer, repeats: int) -> dict:
    """The previous figures: VW's predict call alone (and with its parsing) per decision, and
    onnxruntime scoring the same rows."""
    options = VW_OPTIONS
    members = vw_members(counts)
    texts = [vw_lines(rows[start:end]) for start, end in members]
    predict_s = parse_s = 0.0
    decisions = 0
    for _ in range(repeats):
        for lines in texts:
            started = time.perf_counter()
            examples = vw.parse(lines)
            parsed = time.perf_counter()
            pmf = vw.predict(examples)
            predict_s += time.perf_counter() - parsed
            parse_s += parsed - started
            vw.finish_example(examples)
            decisions += 1
            assert len(pmf) == len(lines) - 1
    # The same rows scored by onnxruntime (scoring only, one call per member as VW gets).
    ort_s = 0.0
    for _ in range(repeats):
        for start, end in members:
            started = time.perf_counter()
            ort_scorer.predict(rows[start:end])
            ort_s += time.perf_counter() - started
    return {"vw_options": options, "vw_decisions": decisions,
            "vw_decisions_per_s": decisions / predict_s, "vw_decisions_per_s_incl_parse": decisions / (predict_s + parse_s),
            "vw_predict_ms_per_decision": predict_s / decisions * 1000,
            "ort_scoring_ms_per_decision": ort_s / decisions * 1000,
            "vw_actions_per_decision": float(np.mean([e - s for s, e in members]))}


def vw_figures(rate: float, rows: np.ndarray, counts: list[int], labels: np.ndarray, ort_for_scoring, scorer,
               profiles, catalog, config, args) -> tuple[dict, list[str]]:
    """vs_vw (engine against engine-with-VW, interleaved) and the previous VW figures."""
    vw = vw_trained(rows, counts, labels, np.random.default_rng(2))
    try:
        old = vw_comparison(vw, rows, counts, ort_for_scoring, args.vw_repeats)
        text, examples = VwEngine(vw, "text"), VwEngine(vw, "examples")
        start, end = vw_members(counts)[0]
        same_pmf = float(np.max(np.abs(text.pmf(rows[start:end]) - examples.pmf(rows[start:end]))))
        fidelio, vw_text, vw_examples = interleaved_rates([scorer, text, examples], profiles, catalog, config,
                                                          args.members_per_batch, args.vw_engine_rounds)
    finally:
        vw.finish()
    best, builder = max((vw_text, "text"), (vw_examples, "examples"))
    figures = {
        "vs_vw": round(fidelio / best, 3),
        "fidelio_engine_decisions_per_s_vs_vw_run": round(fidelio, 1),
        "vw_engine_decisions_per_s": round(best, 1),
        "vw_engine_builder": builder,
        "vw_engine_decisions_per_s_text": round(vw_text, 1),
        "vw_engine_decisions_per_s_examples": round(vw_examples, 1),
        "vw_builders_max_abs_pmf_diff": float(f"{same_pmf:.3g}"),
        "vs_vw_predict_only": round(rate / old["vw_decisions_per_s"], 3),
        "vs_vw_incl_parse": round(rate / old["vw_decisions_per_s_incl_parse"], 3),
        "vs_vw_scoring_only": round(old["vw_predict_ms_per_decision"] / old["ort_scoring_ms_per_decision"], 2),
        "vw_decisions_per_s": round(old["vw_decisions_per_s"], 1),
        "vw_decisions_per_s_incl_parse": round(old["vw_decisions_per_s_incl_parse"], 1),
        "vw_predict_ms_per_decision": round(old["vw_predict_ms_per_decision"], 3),
        "ort_scoring_ms_per_decision": round(old["ort_scoring_ms_per_decision"], 3),
        "vw_options": old["vw_options"],
    }
    notes = [
        f"vs_vw (definition changed): Fidelio's engine ({fidelio:.0f} decisions/s in the interleaved run) ÷ the same "
        f"engine with VW ({old['vw_options']}) as scorer and chooser ({best:.0f}/s, {builder} builder; text "
        f"{vw_text:.0f}/s, examples {vw_examples:.0f}/s): same candidates ({old['vw_actions_per_decision']:.0f} "
        f"per decision), guardrails, features and records; VW formats, parses, predicts the pmf and samples",
        "vs_vw_predict_only (the previous vs_vw): the whole engine ÷ VW's predict call alone, examples parsed "
        "outside the clock — engine against model evaluation, not like for like",
        "vs_vw_incl_parse: the same with VW's text parsing inside the clock (formatting still outside)",
        "vs_vw_scoring_only: VW predict per decision ÷ onnxruntime scoring the same rows (< 1: VW's linear CB "
        "model is cheaper to evaluate than 250 trees)",
    ]
    return figures, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members-per-batch", type=int, default=100)
    parser.add_argument("--candidates", type=int, default=60)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--model", default=str(REPO / "model_artifacts" / "offers"))
    parser.add_argument("--native-rounds", type=int, default=5, help="batches per side for speedup_vs_naive")
    parser.add_argument("--vw-repeats", type=int, default=2, help="predict passes over every member for VW")
    parser.add_argument("--vw-engine-rounds", type=int, default=6,
                        help="batches per engine (Fidelio, VW text, VW examples), interleaved, for vs_vw")
    parser.add_argument("--skip-native", action="store_true", help="no LightGBM comparisons")
    parser.add_argument("--skip-vw", action="store_true", help="no Vowpal Wabbit comparison")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    slots = 6
    config = PolicyConfig(slot_hours=slots, max_per_day=10, max_per_week=50, quiet_start_hour=0, quiet_end_hour=0,
                          holdout_share=0.0)
    catalog = catalog_for(args.candidates, slots)
    profiles = {p.member_id: p for p in (member(i, rng) for i in range(args.members_per_batch * 4))}
    model_dir = Path(args.model)
    if (model_dir / "model.onnx").exists():
        scorer = OnnxScorer(model_dir, FEATURE_NAMES, FEATURE_VERSION)
    else:
        print(f"warning: no model in {model_dir}; timing the prior scorer", file=sys.stderr)
        scorer = PriorScorer()
    run(scorer, profiles, catalog, config, args.members_per_batch, 3)  # warm up
    cpu_ms: list[float] = []
    latencies, decisions, candidates = run(scorer, profiles, catalog, config, args.members_per_batch, args.batches,
                                           cpu=cpu_ms)
    naive_batches = max(3, args.batches // 8)
    naive_lat, naive_decisions, _ = run(OneAtATime(scorer), profiles, catalog, config, args.members_per_batch,
                                        naive_batches)
    rate = decisions / (sum(latencies) / 1000)
    naive_rate = naive_decisions / (sum(naive_lat) / 1000)
    result = {
        "machine": platform.platform(), "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "model_version": scorer.version,
        "members_per_batch": args.members_per_batch, "candidates_per_member": round(candidates / decisions, 1),
        "batches": args.batches, "decisions_per_s": round(rate, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2), "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "per_member_p50_ms": round(float(np.percentile(latencies, 50)) / args.members_per_batch, 3),
        "per_member_p99_ms": round(float(np.percentile(latencies, 99)) / args.members_per_batch, 3),
        # CPU time of the process per batch: what other load on a shared machine barely changes.
        "decisions_per_cpu_s": round(decisions / (sum(cpu_ms) / 1000), 1),
        "cpu_p50_ms": round(float(np.percentile(cpu_ms, 50)), 2), "cpu_p99_ms": round(float(np.percentile(cpu_ms, 99)), 2),
        "naive_decisions_per_s": round(naive_rate, 1), "speedup_vs_naive": round(rate / naive_rate, 2),
    }
    # The definition above (one ONNX call per row) is kept under its own key; speedup_vs_naive is
    # redefined below against a per-candidate native LightGBM loop when LightGBM can be used.
    result["speedup_vs_naive_onnx_rows"] = result["speedup_vs_naive"]
    result["load_average_1m"] = round(os.getloadavg()[0], 2)
    notes: list[str] = []
    if not (args.skip_native and args.skip_vw):
        rng_labels = np.random.default_rng(1)
        rows, counts = candidate_rows(scorer, profiles, catalog, config)
        labels = (rng_labels.random(len(rows)) < scorer.predict(rows)).astype(np.int32)
        result["training_rows"], result["training_positive_rate"] = len(rows), round(float(labels.mean()), 4)
    if not args.skip_native:
        try:
            with tempfile.TemporaryDirectory() as work:
                booster, ort_same, how, _ = surrogate(model_dir, rows, labels, Path(work))
                notes.append(how)
                native_same = NativeBatched(booster, ort_same.version)
                parity = float(np.max(np.abs(ort_same.predict(rows) - native_same.predict(rows))))
                batch_rows = rows[: sum(counts[: args.members_per_batch])]
                member_rows = rows[: counts[0]] if counts and counts[0] else rows[:60]
                ort_batch = median_seconds(ort_same.predict, batch_rows, 15)
                native_batch = median_seconds(native_same.predict, batch_rows, 15)
                ort_member = median_seconds(ort_same.predict, member_rows, 200)
                native_member = median_seconds(native_same.predict, member_rows, 200)
                same_rate, naive_native_rate = interleaved_rates(
                    [ort_same, NativePerCandidate(booster, ort_same.version)], profiles, catalog, config,
                    args.members_per_batch, args.native_rounds)
                result.update({
                    "native_model": "shipped" if "shipped (" in how else "surrogate",
                    "surrogate_trees": booster.num_trees(), "shipped_onnx_trees": tree_count(model_dir / "model.onnx"),
                    "ort_native_max_abs_diff": float(f"{parity:.3g}"),
                    "ort_vs_native_batch_rows": len(batch_rows),
                    "ort_us_per_row": round(ort_batch / len(batch_rows) * 1e6, 2),
                    "native_us_per_row": round(native_batch / len(batch_rows) * 1e6, 2),
                    "ort_vs_native": round(native_batch / ort_batch, 2),
                    "ort_vs_native_per_member_batch": round(native_member / ort_member, 2),
                    "ort_vs_native_per_member_rows": len(member_rows),
                    "same_model_decisions_per_s": round(same_rate, 1),
                    "naive_native_decisions_per_s": round(naive_native_rate, 1),
                    "speedup_vs_naive": round(same_rate / naive_native_rate, 2),
                })
                if not args.skip_vw:
                    figures, vw_notes = vw_figures(rate, rows, counts, labels, ort_same, scorer, profiles, catalog,
                                                   config, args)
                    result.update(figures)
                    notes.extend(vw_notes)
        except ImportError as error:
            print(f"error: cannot compare with LightGBM/VW: {error} (uv sync --all-extras)", file=sys.stderr)
            return 1
    elif not args.skip_vw:
        notes.append("--skip-native: vs_vw_scoring_only compares VW with the shipped model, not the surrogate")
        figures, vw_notes = vw_figures(rate, rows, counts, labels, scorer, scorer, profiles, catalog, config, args)
        result.update(figures)
        notes.extend(vw_notes)
    if notes:
        result["notes"] = notes
    print(f"{'metric':<32}{'value':>16}")
    for key, value in result.items():
        if key in ("notes", "vw_options"):
            continue
        print(f"{key:<32}{value!s:>16}")
    for note in notes:
        print(f"note: {note}")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
