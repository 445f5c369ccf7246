import numpy as np
import pytest
import scipy.sparse as sp

from stfield.pp import spatial_neighbors


def test_gcn_graph_is_symmetric_normalised_and_sparse(smooth_slice):
    g = spatial_neighbors(smooth_slice, k=5)
    n = smooth_slice.n_obs
    assert sp.isspmatrix_csr(g) and g.shape == (n, n)
    assert g.nnz <= 2 * n * 5
    assert abs(g - g.T).max() < 1e-6
    assert (g.diagonal() > 0).all()
    # D^-1/2 A D^-1/2: the top eigenvalue of a normalised adjacency with self loops is 1.
    top = sp.linalg.eigsh(g.astype(np.float64), k=1, which="LA")[0][0]
    assert top == pytest.approx(1.0, abs=1e-6)
    assert "stfield_connectivities" in smooth_slice.obsp


def test_reference_graph_is_binary_directed_with_self():
    coords = np.array([[0, 0], [1, 0], [2, 0], [10, 0], [11, 0], [30, 0]], dtype=float)
    g = spatial_neighbors(coords, k=2, normalization="reference")
    dense = g.toarray()
    assert set(np.unique(dense)) <= {0.0, 1.0}
    np.testing.assert_array_equal(dense.sum(axis=1), 2)
    assert dense[0, 0] == 1 and dense[0, 1] == 1
    assert dense[5, 5] == 1 and dense[5, 4] == 1 and dense[4, 5] == 0  # directed


def test_exclude_self():
    coords = np.array([[0, 0], [1, 0], [3, 0], [7, 0]], dtype=float)
    g = spatial_neighbors(coords, k=1, include_self=False, normalization="reference").toarray()
    assert (np.diag(g) == 0).all()
    np.testing.assert_array_equal(g.argmax(axis=1), [1, 0, 1, 2])


def test_too_few_spots():
    with pytest.raises(ValueError, match="k=5"):
        spatial_neighbors(np.zeros((3, 2)), k=5)
    with pytest.raises(ValueError, match="NaN"):
        spatial_neighbors(np.array([[0, 0], [np.nan, 1], [2, 2]]), k=1)
