import math

import numpy as np
import pytest
import scipy.sparse as sp

from stfield.bench import metrics

TRUTH = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
PRED = np.array([[2.0, 1.0, 2.0], [0.0, 1.0, 1.0]])


def test_hand_computed_values():
    # Non-zero truth entries: (0,0)=1, (0,2)=2, (1,1)=3; prediction there: 2, 2, 1.
    assert metrics.mae(TRUTH, PRED) == pytest.approx((0.5 + 2.0) / 2)
    assert metrics.mse(TRUTH, PRED) == pytest.approx((0.5 + 4.0) / 2)
    assert metrics.mae(TRUTH, PRED, axis="gene") == pytest.approx((1 + 2 + 0) / 3)
    assert metrics.mse(TRUTH, PRED, axis=None) == pytest.approx((1 + 0 + 4) / 3)
    cos0 = 6 / math.sqrt(5 * 8)
    assert metrics.cosine(TRUTH, PRED) == pytest.approx((cos0 + 1.0) / 2)
    # Spot 0's prediction is constant (2, 2) and spot 1 has one entry: Pearson is undefined.
    assert math.isnan(metrics.pearson(TRUTH, PRED))
    # Exact-zero maps: truth {(0,1),(1,0),(1,2)}, pred {(1,0)} -> IoU 1/3.
    assert metrics.zero_iou(TRUTH, PRED) == pytest.approx(1 / 3)


def test_correlations_on_a_known_case():
    truth = np.array([[1.0, 2.0, 3.0, 0.0]])
    pred = np.array([[1.0, 3.0, 2.0, 9.0]])  # the zero-truth entry is ignored
    assert metrics.pearson(truth, pred) == pytest.approx(0.5)
    assert metrics.spearman(truth, pred) == pytest.approx(0.5)
    assert metrics.pearson(truth, -pred) == pytest.approx(-0.5)
    # Spearman sees only ranks: a monotone transform gives 1.
    assert metrics.spearman(truth, truth**3) == pytest.approx(1.0)


def test_evaluate_matches_single_metrics_and_sparse_inputs():
    rng = np.random.default_rng(0)
    truth = rng.poisson(0.7, size=(40, 12)).astype(float)
    pred = np.maximum(truth + rng.normal(0, 0.5, truth.shape), 0)
    res = metrics.evaluate(sp.csr_matrix(truth), pred)
    for name in metrics.NONZERO_METRICS:
        assert res[name] == pytest.approx(getattr(metrics, name)(truth, pred))
        assert res[f"{name}_gene"] == pytest.approx(getattr(metrics, name)(truth, pred, "gene"))
    assert res["mse_all"] == pytest.approx(np.mean((pred - truth) ** 2))
    assert res["mae_all"] == pytest.approx(np.mean(np.abs(pred - truth)))
    assert res["iou"] == pytest.approx(metrics.zero_iou(truth, pred))
    sparse_res = metrics.evaluate(truth, sp.csr_matrix(pred))
    for key, value in res.items():
        if not math.isnan(value):
            assert sparse_res[key] == pytest.approx(value)
    assert math.isnan(res["ari"])


def test_perfect_prediction():
    rng = np.random.default_rng(1)
    truth = rng.poisson(1.0, size=(30, 8)).astype(float)
    res = metrics.evaluate(truth, truth.copy())
    assert res["mse"] == 0 and res["mae_all"] == 0 and res["iou"] == 1
    assert res["cosine"] == pytest.approx(1) and res["pearson_gene"] == pytest.approx(1)


def test_ari_recovers_separated_clusters():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 30)
    centres = rng.uniform(0, 20, size=(3, 10))
    X = rng.poisson(centres[labels]).astype(float)
    assert metrics.ari(labels, X) > 0.9
    res = metrics.evaluate(X, X, labels=labels)
    assert res["ari"] > 0.9


def test_shape_mismatch_and_nan_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        metrics.mse(TRUTH, PRED[:1])
    bad = PRED.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.evaluate(TRUTH, bad)
