import numpy as np
import pytest
import scipy.sparse as sp
from anndata import AnnData

from stfield.pp import auto_min_spot_counts, filter_slice, normalize_suica


def _toy():
    X = np.array(
        [
            [5, 0, 0, 300, 1],  # gene 3 exceeds 200 in one spot -> dropped
            [3, 2, 0, 10, 0],
            [0, 0, 0, 0, 1],  # tiny spot
            [4, 4, 0, 1, 2],
        ],
        dtype=np.float32,
    )
    a = AnnData(sp.csr_matrix(X))
    a.var_names = ["G0", "G1", "G2", "G3", "BLANK_1"]
    a.obsm["spatial"] = np.arange(8, dtype=float).reshape(4, 2)
    return a


def test_normalize_suica_keeps_sparsity_and_totals():
    a = _toy()
    out = normalize_suica(a, min_spot_counts=2, min_gene_counts=3, target_sum=200, copy=True)
    assert list(out.var_names) == ["G0", "G1"]  # G2 empty, G3 too high, BLANK control
    assert out.n_obs == 3  # spot 2 dropped
    assert sp.isspmatrix_csr(out.X)
    np.testing.assert_allclose(np.asarray(out.X.sum(axis=1)).ravel(), 200, rtol=1e-5)
    raw = out.layers["counts"].toarray()
    assert ((out.X.toarray() == 0) == (raw == 0)).all()  # zeros stay zeros
    np.testing.assert_allclose(out.X.toarray()[0], [200, 0])
    assert out.uns["stfield"]["normalize"]["max_gene_count"] == 200
    assert a.shape == (4, 5)  # copy=True left the input alone


def test_normalize_in_place_and_log1p():
    a = _toy()
    assert normalize_suica(a, min_spot_counts=2, log1p=True) is None
    assert a.n_vars == 2
    np.testing.assert_allclose(a.X.toarray()[0, 0], np.log1p(200), rtol=1e-5)


def test_auto_threshold_is_data_aware():
    assert auto_min_spot_counts(np.array([5000.0, 6000.0])) == 200  # paper value
    assert auto_min_spot_counts(np.array([80.0, 90.0, 100.0])) == 9  # 10% of median
    assert auto_min_spot_counts(np.array([1.0, 2.0])) == 1


def test_filter_everything_gives_a_clear_error():
    with pytest.raises(ValueError, match="filtering left 0 spots"):
        filter_slice(_toy(), min_spot_counts=10_000)


def test_rejects_negative_counts():
    a = _toy()
    a.X = a.X.copy()
    a.X.data[0] = -1
    with pytest.raises(ValueError, match="negative"):
        normalize_suica(a)
