"""Serving the churn/CLV model: features from the live profile, the committed artifact, CLV."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from functions.domain.churn import (
    CHURN_FEATURE_VERSION,
    CHURN_FEATURES,
    ChurnModel,
    ChurnModelInvalid,
    GammaGammaParams,
    bgnbd_summary,
    churn_feature_matrix,
    expected_spend_per_purchase,
)
from functions.domain.events import PurchaseCompleted
from functions.domain.profile import new_profile, replay
from functions.domain.scoring import ModelMismatch

ARTIFACT = Path(__file__).resolve().parents[2] / "model_artifacts" / "churn"
NOW = datetime(1997, 10, 1, tzinfo=UTC)


def _purchases(member_id: str, days_before_now: list[int], amount: float = 20.0) -> list[PurchaseCompleted]:
    return [
        PurchaseCompleted(event_id=f"{member_id}-{i}", member_id=member_id, order_id=f"{member_id}-{i}",
                          occurred_at=NOW - timedelta(days=d), amount=amount, currency="USD")
        for i, d in enumerate(days_before_now)
    ]


def _column(matrix: np.ndarray, name: str) -> np.ndarray:
    return matrix[:, CHURN_FEATURES.index(name)]


def test_features_are_read_from_the_replayed_profile():
    # Given a member who bought 70, 35 and 7 days ago, $20, $20 and $50
    events = _purchases("m1", [70, 35]) + _purchases("m1b", [7], amount=50.0)
    events = [e.model_copy(update={"member_id": "m1"}) for e in events]
    profile = replay("m1", events)
    # When the churn columns are built at NOW
    row = churn_feature_matrix([profile], NOW)
    # Then RFM and the BG/NBD summary (weeks) are what the history says
    assert row.shape == (1, len(CHURN_FEATURES)) and row.dtype == np.float32
    assert _column(row, "recency_days")[0] == pytest.approx(7.0)
    assert _column(row, "frequency")[0] == 3.0
    assert _column(row, "monetary_avg")[0] == pytest.approx(30.0)
    assert _column(row, "tenure_days")[0] == pytest.approx(70.0)
    assert _column(row, "repeat_purchases")[0] == 2.0
    assert _column(row, "repeat_span_weeks")[0] == pytest.approx(9.0)
    assert _column(row, "age_weeks")[0] == pytest.approx(10.0)


def test_a_member_who_never_bought_has_an_empty_summary():
    assert bgnbd_summary(new_profile("m0"), NOW) == (0.0, 0.0, 0.0)
    row = churn_feature_matrix([new_profile("m0")], NOW)
    assert _column(row, "frequency")[0] == 0.0 and _column(row, "recency_days")[0] == 365.0


def test_expected_spend_shrinks_a_members_mean_toward_the_population():
    params = GammaGammaParams(p=6.0, q=4.0, v=15.0)  # population mean p v / (q - 1) = 30
    spend = expected_spend_per_purchase(params, [0, 1, 10, 10], [80.0, 80.0, 80.0, 0.0])
    assert spend[0] == pytest.approx(30.0)  # one purchase: the population mean
    assert 30.0 < spend[1] < spend[2] < 80.0  # more purchases, more weight on the member's own mean
    assert spend[3] == pytest.approx(30.0)  # zero-value purchases say nothing about spend
    with pytest.raises(ChurnModelInvalid):
        expected_spend_per_purchase(GammaGammaParams(1.0, 0.9, 1.0), [1], [10.0])


@pytest.fixture(scope="module")
def model() -> ChurnModel:
    if not (ARTIFACT / "model.onnx").exists():
        pytest.fail(f"{ARTIFACT} has no model.onnx: run `make models`")
    try:
        return ChurnModel(ARTIFACT)
    except ModelMismatch as error:
        pytest.fail(f"the committed churn model is stale ({error}): run `make models`")


def test_the_committed_model_scores_an_active_member_safer_and_more_valuable_than_a_lapsed_one(model):
    # Given a frequent recent buyer and a one-time buyer from eight months ago
    active = replay("active", _purchases("active", [200, 150, 120, 90, 60, 30, 10, 3], amount=40.0))
    lapsed = replay("lapsed", _purchases("lapsed", [240], amount=40.0))
    # When the daily batch scores them
    scores = {s.member_id: s for s in model.score([active, lapsed], NOW)}
    # Then the lapsed member is the churn risk and the active one carries the value
    assert 0.0 <= scores["active"].churn_risk < scores["lapsed"].churn_risk <= 1.0
    assert scores["active"].clv > scores["lapsed"].clv >= 0.0
    assert scores["active"].clv == pytest.approx(scores["active"].expected_purchases * scores["active"].expected_spend)
    assert model.horizon_weeks > 0


def test_the_model_card_describes_what_was_served(model):
    card = model.scorer.card.raw
    assert card["name"] == "churn"
    assert card["feature_names"] == list(CHURN_FEATURES)
    assert card["feature_version"] == CHURN_FEATURE_VERSION
    assert len(card["training_data"]["sha256"]) == 64
    assert card["metrics"]["onnx_parity_max_abs"]["probabilities"] <= 1e-5
    assert card["metrics"]["onnx_parity_max_abs"]["expected_purchases_rel"] <= 1e-5
    for name in CHURN_FEATURES:
        baseline = card["baseline_distributions"][name]
        assert len(baseline["proportions"]) == len(baseline["cuts"]) + 1
        assert sum(baseline["proportions"]) == pytest.approx(1.0, abs=1e-5)
    assert set(card["clv"]["gamma_gamma"]) == {"p", "q", "v"}
    assert set(card["clv"]["bgnbd"]) == {"r", "alpha", "a", "b"}


def test_a_card_listing_other_features_is_refused(tmp_path):
    # Given the artifact whose card lists the features in another order
    shutil.copytree(ARTIFACT, tmp_path / "churn")
    card_path = tmp_path / "churn" / "metadata.json"
    card = json.loads(card_path.read_text())
    card["feature_names"] = list(reversed(card["feature_names"]))
    card_path.write_text(json.dumps(card))
    # Then loading it fails with a reason, rather than scoring shuffled columns
    with pytest.raises(ModelMismatch, match="other order"):
        ChurnModel(tmp_path / "churn")


def test_a_card_without_the_spend_model_is_refused(tmp_path):
    shutil.copytree(ARTIFACT, tmp_path / "churn")
    card_path = tmp_path / "churn" / "metadata.json"
    card = json.loads(card_path.read_text())
    del card["clv"]["gamma_gamma"]
    card_path.write_text(json.dumps(card))
    with pytest.raises(ChurnModelInvalid, match="gamma_gamma"):
        ChurnModel(tmp_path / "churn")


def test_serving_code_imports_no_training_library():
    # The scoring Lambda carries numpy + onnxruntime only
    probe = ("import sys, functions.domain.churn; "
             "print([m for m in ('scipy', 'pandas', 'lightgbm', 'sklearn', 'onnxmltools') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
