import numpy as np
import pytest
import scipy.sparse as sp

from stfield.bench import GeneMask, SpatialSplit, add_gaussian_noise, mute_entries, spatial_split


def test_spatial_split_is_seeded_disjoint_and_reloadable(tmp_path):
    s = spatial_split(101, 0.2, seed=3)
    assert s.test.size == 20 and s.train.size == 81
    assert np.intersect1d(s.train, s.test).size == 0
    assert np.array_equal(np.union1d(s.train, s.test), np.arange(101))
    assert np.array_equal(spatial_split(101, 0.2, seed=3).test, s.test)
    assert not np.array_equal(spatial_split(101, 0.2, seed=4).test, s.test)
    back = SpatialSplit.load(s.save(tmp_path / "split.npz"))
    assert np.array_equal(back.test, s.test) and back.seed == 3


def test_mute_entries(tmp_path, smooth_slice):
    X = smooth_slice.X
    m = mute_entries(X, 0.7, seed=0)
    assert sp.isspmatrix_csr(m.X_input)
    assert m.rows.size == round(0.7 * X.nnz)
    assert m.X_input.nnz == X.nnz - m.rows.size
    # Observed + muted = clean; muted entries were non-zero.
    muted_vals = np.asarray(X[m.rows, m.cols]).ravel()
    assert (muted_vals > 0).all()
    restored = m.X_input + sp.csr_matrix((muted_vals, (m.rows, m.cols)), shape=X.shape)
    assert abs(restored - X).max() == 0
    back = GeneMask.load(m.save(tmp_path / "mask.npz"), X)
    assert abs(back.X_input - m.X_input).max() == 0
    with pytest.raises(ValueError, match="shape"):
        GeneMask.load(tmp_path / "mask.npz", X[:10])
    with pytest.raises(ValueError, match="spatial_split"):
        SpatialSplit.load(tmp_path / "mask.npz")


def test_gaussian_noise_is_clipped_seeded_and_blockwise(smooth_slice):
    X = smooth_slice.X
    noisy = add_gaussian_noise(X, 1.0, seed=0, block_rows=64)
    assert sp.isspmatrix_csr(noisy) and noisy.shape == X.shape
    assert noisy.data.min() >= 0
    again = add_gaussian_noise(X, 1.0, seed=0, block_rows=64)
    assert abs(noisy - again).max() == 0
    # Where the clean value is large, clipping is rare: the noise is N(0, 1) there.
    dense, clean = noisy.toarray(), X.toarray()
    big = clean >= 4
    diff = (dense - clean)[big]
    assert abs(diff.mean()) < 0.3 and 0.7 < diff.std() < 1.3
    assert add_gaussian_noise(X, 0.0).nnz == X.nnz


def test_bad_arguments():
    with pytest.raises(ValueError, match="test_fraction"):
        spatial_split(10, 1.5)
    with pytest.raises(ValueError, match="no non-zero"):
        mute_entries(sp.csr_matrix((3, 3)))
