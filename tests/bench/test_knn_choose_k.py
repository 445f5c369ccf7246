"""The kNN baseline's leave-one-out choice of k is computed block by block, with the same result."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from stfield.bench import spatial_split
from stfield.bench.baselines import KNNInterpolator


def _choose_k_all_at_once(knn: KNNInterpolator) -> tuple[int, float]:
    """The previous implementation: one dense n_spots × n_genes prediction per candidate k."""
    n = knn.coords_.shape[0]
    grid = [k for k in knn.k_grid if k <= n - 1] or [1]
    dist, idx = knn.nn_.kneighbors(knn.coords_, n_neighbors=max(grid) + 1)
    dist, idx = dist[:, 1:], idx[:, 1:]
    truth = knn.X_.tocoo()
    best_k, best_err = grid[0], np.inf
    for k in grid:
        pred = knn._interpolate(dist[:, :k], idx[:, :k])
        err = float(np.mean((pred[truth.row, truth.col] - truth.data) ** 2)) if truth.nnz else 0.0
        if err < best_err:
            best_k, best_err = k, err
    return best_k, best_err


def test_blockwise_choose_k_matches_the_dense_computation(smooth_slice, monkeypatch):
    X, coords = smooth_slice.X, smooth_slice.obsm["spatial"]
    split = spatial_split(X.shape[0], 0.2, seed=0)
    # Tiny blocks (7 rows, so the last one is partial) exercise the accumulation across blocks.
    knn = KNNInterpolator(block_rows=7).fit(X[split.train], coords[split.train])
    expected_k, expected_err = _choose_k_all_at_once(knn)
    assert knn.k_ == expected_k and knn.k_ > 1
    np.testing.assert_allclose(knn.cv_mse_, expected_err, rtol=1e-5)
    # The default block size gives the same choice.
    assert KNNInterpolator().fit(X[split.train], coords[split.train]).k_ == expected_k

    # No dense prediction ever covers more than one block of rows.
    widest = []
    original = KNNInterpolator._interpolate

    def spy(self, dist, idx, bandwidth=None):
        widest.append(dist.shape[0])
        return original(self, dist, idx, bandwidth)

    monkeypatch.setattr(KNNInterpolator, "_interpolate", spy)
    KNNInterpolator(block_rows=7).fit(X[split.train], coords[split.train])
    assert max(widest) <= 7


def test_choose_k_on_an_all_zero_slice_picks_the_first_candidate():
    rng = np.random.default_rng(0)
    coords = rng.uniform(0, 100, size=(30, 2))
    knn = KNNInterpolator(block_rows=4).fit(sp.csr_matrix((30, 5), dtype=np.float32), coords)
    assert knn.k_ == knn.k_grid[0] and knn.cv_mse_ == 0.0


def test_rankwise_interpolation_equals_the_weighted_sum(smooth_slice):
    """Accumulating one neighbour rank at a time gives W @ X, the inverse-distance average."""
    X, coords = sp.csr_matrix(smooth_slice.X), np.asarray(smooth_slice.obsm["spatial"])
    knn = KNNInterpolator(k=6).fit(X, coords)
    queries = coords[:50] + 3.0
    dist, idx = knn.nn_.kneighbors(queries, n_neighbors=6)
    w = knn._weights(dist)
    reference = np.einsum("qk,qkg->qg", w, X.toarray()[idx])
    np.testing.assert_allclose(knn.predict(queries), reference, rtol=1e-5, atol=1e-5)


def test_gaussian_kernel_is_smooth_at_the_spots_where_idw_is_exact(smooth_slice):
    """On a grid twice as dense as the spots, IDW shows each spot's own value as a dot."""
    X, coords = sp.csr_matrix(smooth_slice.X), np.asarray(smooth_slice.obsm["spatial"])
    spacing = np.median(np.diff(np.unique(coords[:, 0])))
    idw = KNNInterpolator(k=8).fit(X, coords)
    gauss = KNNInterpolator(k=8, kernel="gaussian").fit(X, coords)
    assert gauss.bandwidth_ == pytest.approx(spacing)
    np.testing.assert_allclose(idw.predict(coords[:40]), X[:40].toarray(), rtol=1e-6, atol=1e-6)
    inner = coords[
        np.all((coords > coords.min(0) + spacing) & (coords < coords.max(0) - spacing), 1)
    ]
    half = 0.5 * spacing
    steps = np.array([[half, 0], [-half, 0], [0, half], [0, -half]])

    def dots(model: KNNInterpolator) -> float:
        on = model.predict(inner)
        around = np.mean([model.predict(inner + step) for step in steps], axis=0)
        return float(np.abs(on - around).mean())

    assert dots(gauss) < 0.5 * dots(idw)
    with pytest.raises(ValueError, match="kernel"):
        KNNInterpolator(kernel="box")
