import numpy as np
import pytest

from stfield.bench import evaluate, spatial_split
from stfield.bench.baselines import BASELINES, GeneMean, KNNInterpolator


def test_knn_is_exact_at_fitted_spots_and_excludes_self(smooth_slice):
    X, coords = smooth_slice.X, smooth_slice.obsm["spatial"]
    knn = KNNInterpolator(k=4).fit(X, coords)
    np.testing.assert_allclose(knn.predict(coords[:7]), X[:7].toarray())
    loo = knn.predict(coords[:7], exclude_self=True)
    assert not np.allclose(loo, X[:7].toarray())


def test_knn_chooses_k_on_training_spots_and_beats_the_mean(smooth_slice):
    X, coords = smooth_slice.X, smooth_slice.obsm["spatial"]
    split = spatial_split(X.shape[0], 0.2, seed=0)
    knn = KNNInterpolator().fit(X[split.train], coords[split.train])
    assert knn.k_ > 1  # noisy Poisson counts: averaging several neighbours wins
    mean = GeneMean().fit(X[split.train], coords[split.train])
    s_knn = evaluate(X[split.test], knn.predict(coords[split.test]))
    s_mean = evaluate(X[split.test], mean.predict(coords[split.test]))
    assert s_knn["pearson_gene"] > 0.3
    assert s_knn["mse"] < s_mean["mse"]


def test_registry_and_input_checks(smooth_slice):
    assert set(BASELINES) == {"knn", "gaussian", "mean", "ffn", "siren", "hashgrid", "stage"}
    for name in ("knn", "gaussian", "mean"):
        m = BASELINES[name]().fit(smooth_slice.X, smooth_slice.obsm["spatial"])
        assert m.predict(smooth_slice.obsm["spatial"][:3]).shape == (3, smooth_slice.n_vars)
    with pytest.raises(ValueError, match="coordinate rows"):
        KNNInterpolator().fit(smooth_slice.X, smooth_slice.obsm["spatial"][:5])


SMALL = {
    "ffn": {"backbone_kwargs": {"width": 64, "depth": 2, "scale": 2.0}, "lr": 1e-2},
    "siren": {"backbone_kwargs": {"width": 64, "depth": 2}, "lr": 1e-3},
    "hashgrid": {"lr": 1e-2},
    "stage": {"hidden": (64, 16), "lr": 1e-2, "batch_size": 128},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_neural_baselines_learn_spatial_structure(name, smooth_slice):
    import torch

    torch.set_num_threads(1)
    X, coords = smooth_slice.X, smooth_slice.obsm["spatial"]
    model = BASELINES[name](epochs=150, seed=0, **SMALL[name]).fit(X, coords)
    assert model.history_[-1] < model.history_[0]  # the loss falls
    pred = model.predict(coords)
    assert pred.shape == X.shape and (pred >= 0).all()
    # Fitted spots: the field follows the smooth rates better than the constant mean does.
    fit_scores = evaluate(X, pred)
    mean_scores = evaluate(X, GeneMean().fit(X, coords).predict(coords))
    assert fit_scores["mse"] < mean_scores["mse"]
    again = BASELINES[name](epochs=150, seed=0, **SMALL[name]).fit(X, coords).predict(coords)
    np.testing.assert_allclose(again, pred, rtol=1e-5, atol=1e-6)  # seeded


def test_morans_i_ranks_structured_genes_and_can_leave_adata_untouched(smooth_slice):
    from stfield.tl import morans_i

    rng = np.random.default_rng(0)
    noisy = smooth_slice.copy()
    X = noisy.X.toarray()
    X[:, 0] = rng.permutation(X[:, 0])  # gene0 loses its spatial structure
    noisy.X = X
    before_var, before_obsp = list(noisy.var.columns), list(noisy.obsp.keys())
    scores = morans_i(noisy, key_added=None)
    assert list(noisy.var.columns) == before_var and list(noisy.obsp.keys()) == before_obsp
    assert scores["gene0"] < scores.drop("gene0").median()
    assert scores.drop("gene0").median() > 0.3
    morans_i(noisy)
    assert "stfield_morans_i" in noisy.var
