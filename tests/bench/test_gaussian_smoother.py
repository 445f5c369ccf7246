"""Gaussian-kernel smoothing (Nadaraya-Watson) baseline: the estimator, its bandwidth choice."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from stfield.bench import evaluate, spatial_split
from stfield.bench.baselines import BASELINES, GaussianSmoother, GeneMean
from stfield.bench.baselines.gaussian import TRUNCATE


def _dense_nadaraya_watson(X: np.ndarray, coords: np.ndarray, queries: np.ndarray, h: float):
    """Kernel regression over every fitted spot within the cut-off, written out densely."""
    d2 = ((queries[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (2 * h**2)) * (np.sqrt(d2) <= TRUNCATE * h)
    return (w @ X) / w.sum(1, keepdims=True)


def _scattered_slice(n: int = 600, genes: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, 300, size=(n, 2))
    rates = np.exp(np.sin(coords[:, :1] / 40.0 + rng.uniform(0, 6, genes)) - 0.5)
    return sp.csr_matrix(rng.poisson(rates).astype(np.float32)), coords


def test_predictions_equal_kernel_regression_over_the_spots_within_the_cutoff():
    X, coords = _scattered_slice()
    model = GaussianSmoother(bandwidth=9.0).fit(X, coords)
    queries = np.random.default_rng(1).uniform(0, 300, size=(80, 2))
    expected = _dense_nadaraya_watson(X.toarray(), coords, queries, 9.0)
    np.testing.assert_allclose(model.predict(queries), expected, rtol=1e-5, atol=1e-6)
    # Leave-one-out at a fitted spot is the same sum without that spot.
    others = np.arange(1, X.shape[0])
    loo = _dense_nadaraya_watson(X.toarray()[others], coords[others], coords[:1], 9.0)
    np.testing.assert_allclose(model.predict(coords[:1], exclude_self=True), loo, rtol=1e-5)


def test_far_queries_get_the_nearest_spots_not_nan():
    X, coords = _scattered_slice(100)
    model = GaussianSmoother(bandwidth=5.0).fit(X, coords)
    far = np.array([[5000.0, 5000.0], [-800.0, 40.0]])
    pred = model.predict(far)
    assert np.isfinite(pred).all()
    nearest = model.nn_.kneighbors(far, n_neighbors=1)[1][:, 0]
    # Far from every spot, the shifted kernel is dominated by the nearest spots' values.
    assert np.all(pred.sum(1) > 0) and np.allclose(pred[0], X[nearest[0]].toarray()[0], atol=1.0)


def test_bandwidth_is_chosen_by_leave_one_out_and_follows_the_noise(smooth_slice):
    X, coords = smooth_slice.X, smooth_slice.obsm["spatial"]
    split = spatial_split(X.shape[0], 0.2, seed=0)
    model = GaussianSmoother().fit(X[split.train], coords[split.train])
    # Leave-one-out scores every candidate; the chosen one has the lowest error.
    assert set(model.cv_errors_) == set(model.bandwidth_grid)
    assert model.cv_mse_ == min(model.cv_errors_.values())
    # Noisy Poisson counts: the best bandwidth is wider than the narrowest candidate.
    assert model.bandwidth_ > min(model.bandwidth_grid) * 10.0
    # Scored on held-out spots, the smoother beats the per-gene mean and recovers gene maps.
    truth = X[split.test]
    s_smooth = evaluate(truth, model.predict(coords[split.test]))
    s_mean = evaluate(
        truth, GeneMean().fit(X[split.train], coords[split.train]).predict(coords[split.test])
    )
    assert s_smooth["mse"] < s_mean["mse"]
    assert s_smooth["pearson_gene"] > 0.3


def test_noiseless_field_prefers_a_narrow_bandwidth():
    """Without noise, averaging only blurs: leave-one-out picks a narrow kernel."""
    rng = np.random.default_rng(0)
    coords = rng.uniform(0, 100, size=(400, 2))
    X = sp.csr_matrix(
        1.0 + np.column_stack([np.sin(coords[:, 0] / 4.0), np.cos(coords[:, 1] / 3.0)])
    )
    noisy = sp.csr_matrix(rng.poisson(np.full((400, 2), 2.0)).astype(np.float32))
    sharp = GaussianSmoother().fit(X, coords)
    smooth = GaussianSmoother().fit(noisy, coords)
    assert sharp.bandwidth_ < smooth.bandwidth_


def test_exclude_self_and_sampled_cross_validation(smooth_slice):
    X, coords = smooth_slice.X, smooth_slice.obsm["spatial"]
    model = GaussianSmoother(bandwidth=10.0).fit(X, coords)
    with_self = model.predict(coords[:20])
    without = model.predict(coords[:20], exclude_self=True)
    expected = _dense_nadaraya_watson(X.toarray(), coords, coords[:20], 10.0)
    np.testing.assert_allclose(with_self, expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(with_self, without)
    # Scoring a seeded sample of the spots gives a deterministic choice.
    a = GaussianSmoother(cv_spots=150, seed=3).fit(X, coords)
    b = GaussianSmoother(cv_spots=150, seed=3).fit(X, coords)
    assert a.bandwidth_ == b.bandwidth_ and a.cv_errors_ == b.cv_errors_
    assert "gaussian" in BASELINES


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="bandwidth_grid"):
        GaussianSmoother(bandwidth_grid=(0.0, 1.0))
    with pytest.raises(ValueError, match="bandwidth"):
        GaussianSmoother(bandwidth=-1.0)
    with pytest.raises(ValueError, match="2 fitted spots"):
        GaussianSmoother().fit(sp.csr_matrix(np.ones((1, 3))), np.zeros((1, 2)))


def test_without_spatial_structure_leave_one_out_picks_the_per_gene_mean():
    """Pure noise around a common profile: the widest kernel (h = inf) is the per-gene mean."""
    rng = np.random.default_rng(4)
    coords = rng.uniform(0, 200, size=(300, 2))
    X = sp.csr_matrix(rng.poisson(np.linspace(0.2, 3.0, 8), size=(300, 8)).astype(np.float32))
    model = GaussianSmoother().fit(X, coords)
    assert np.isinf(model.bandwidth_)
    np.testing.assert_allclose(model.predict(coords[:5]), np.tile(X.mean(0).A, (5, 1)), rtol=1e-5)
    # Leaving a spot out of the mean: the mean of the other spots.
    others = np.asarray(X[1:].mean(0)).ravel()
    np.testing.assert_allclose(model.predict(coords[:1], exclude_self=True)[0], others, rtol=1e-5)
    # With local structure the same grid settles near the spot spacing.
    Xs, cs = _scattered_slice(600)
    assert np.isfinite(GaussianSmoother().fit(Xs, cs).bandwidth_)


def test_kernels_wider_than_max_neighbors_are_not_tried():
    X, coords = _scattered_slice(400)
    model = GaussianSmoother(max_neighbors=40).fit(X, coords)
    tried = set(model.cv_errors_)
    assert np.inf in tried and 0.35 in tried
    assert 16.0 not in tried  # 3 × 16 spacings would hold most of the 400 spots
