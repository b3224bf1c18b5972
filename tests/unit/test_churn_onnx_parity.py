"""The churn model exported to ONNX predicts what LightGBM predicts, on held-out CDNOW rows."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from fidelio.datasets import DatasetUnavailable
from fidelio.importers import cdnow
from fidelio.models import churn
from functions.domain.churn import CHURN_FEATURES

SEED = 0


@pytest.fixture(scope="module")
def panel() -> churn.ChurnPanel:
    """Customers 00001-03000 of CDNOW (an eighth of it: the test stays fast), 39 weeks."""
    try:
        rows, _ = cdnow.load_master()
    except DatasetUnavailable as error:
        pytest.skip(f"CDNOW (lifetimes==0.11.3 wheel) unavailable: {error}")
    subset = [r for r in rows if int(r.customer_id) <= 3000]
    return churn.build_panel(churn.purchase_histories(subset), 39, SEED)


@pytest.fixture(scope="module")
def trained(panel: churn.ChurnPanel) -> churn.GbdtPair:
    train = ~panel.is_test
    return churn.fit_gbdt_pair(panel.features[train], panel.holdout_purchases[train],
                               np.asarray(panel.member_ids)[train], CHURN_FEATURES, SEED, n_jobs=1)


def test_onnx_export_matches_native_lightgbm_on_held_out_customers(panel, trained):
    # Given the classifier and the Poisson regressor trained on the train half
    # When both are exported into one ONNX graph and run by onnxruntime on the test half
    model = churn.export_onnx(trained)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    held_out = panel.features[panel.is_test]
    probabilities, purchases = session.run(["probabilities", "expected_purchases"], {"input": held_out})
    native_p, native_n = trained.predict(held_out)
    # Then P(any purchase) agrees to 1e-5 and expected purchases to 1e-5 relative (float32 output)
    assert held_out.shape[0] > 1000
    assert np.max(np.abs(probabilities[:, 1] - native_p)) <= 1e-5
    assert np.max(np.abs(purchases[:, 0] - native_n) / np.maximum(native_n, 1.0)) <= 1e-5
    # And the graph declares the served contract: one float input, the two named outputs
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert session.get_inputs()[0].shape[1] == len(CHURN_FEATURES)


def test_snapping_thresholds_to_float32_changes_no_prediction_on_float32_rows(panel, trained):
    import lightgbm as lgb

    # Given a booster trained without snapping
    data = panel.features.astype(np.float64)
    raw = lgb.train({**churn.GBDT_PARAMS, "objective": "binary", "seed": SEED, "num_threads": 1},
                    lgb.Dataset(data, (panel.holdout_purchases > 0).astype(float)), num_boost_round=60)
    # When its thresholds are snapped down to float32
    snapped = churn._float32_thresholds(raw)
    # Then every prediction on float32-valued rows is bit-for-bit the same
    np.testing.assert_array_equal(raw.predict(data), snapped.predict(data))


def test_the_models_beat_chance_and_the_regressor_keeps_the_total(panel, trained):
    # A sanity check on a small slice, not the benchmark: the classifier ranks buyers above
    # non-buyers, and the Poisson regressor's test total is near the actual total
    held_out = panel.features[panel.is_test]
    p, n = trained.predict(held_out)
    actual = panel.holdout_purchases[panel.is_test]
    assert churn.roc_auc(actual > 0, p) > 0.7
    assert n.sum() == pytest.approx(actual.sum(), rel=0.15)
