"""Issue #8 pieces: a decoder output that cannot die, and the blend with interpolation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from suica_helpers import TINY, make_field

from stfield.models.blend import CRITERIA, choose_weight, rescale_to_field
from stfield.models.gae import MLPDecoder
from stfield.models.suica import SUICA


@pytest.mark.parametrize(("activation", "revives"), [("relu", False), ("leaky", True)])
def test_leaky_output_revives_a_dead_gene(activation, revives):
    """A gene whose output is negative on every input stays at 0 under ReLU, not under leaky."""
    torch.manual_seed(0)
    dec = MLPDecoder(n_genes=3, hidden=(8,), latent_dim=4, activation=activation)
    last = dec.net[-2]
    with torch.no_grad():
        last.bias[1] = -5.0  # gene 1 is dead on every input
    z, target = torch.randn(64, 4), torch.full((64, 3), 2.0)
    opt = torch.optim.Adam(dec.parameters(), lr=0.05)
    dec.train()
    for _ in range(300):
        opt.zero_grad()
        torch.mean((dec(z) - target) ** 2).backward()
        opt.step()
    dec.eval()
    with torch.no_grad():
        out = dec(z)
    assert (out >= 0).all()  # inference is a ReLU either way
    assert bool(out[:, 1].mean() > 1.0) == revives


def test_choose_weight_never_scores_below_interpolation():
    rng = np.random.default_rng(0)
    truth = rng.poisson(2.0, size=(200, 30)).astype(np.float32)
    interpolated = truth + rng.normal(0, 1.5, truth.shape).astype(np.float32)
    field = truth + rng.normal(0, 1.5, truth.shape).astype(np.float32)  # independent errors
    w, rescaled, scores = choose_weight(sp.csr_matrix(truth), field, interpolated)
    assert 0.0 < w < 1.0  # averaging independent errors helps every measure
    ref = scores[(1.0, False)]
    for key, sign in CRITERIA.items():
        assert sign * (scores[(w, rescaled)][key] - ref[key]) > 0, key
    # A field of pure noise is not mixed in: every mix lowers some measure.
    noise = rng.permutation(truth.ravel()).reshape(truth.shape)
    w_bad, rescaled_bad, _ = choose_weight(sp.csr_matrix(truth), noise, interpolated)
    assert (w_bad, rescaled_bad) == (1.0, False)


@pytest.fixture(scope="module")
def blended():
    adata, _ = make_field(n_side=14, n_genes=12)
    perm = np.random.default_rng(2).permutation(adata.n_obs)
    test, train = np.sort(perm[:40]), np.sort(perm[40:])
    model = SUICA(
        "siren", **{**TINY, "backbone_kwargs": {"width": 64}}, decoder_activation="leaky",
        blend="knn", seed=0,
    )  # fmt: skip
    X, C = adata.X.tocsr(), adata.obsm["spatial"]
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the chosen weight must not depend on the machine's threads
    try:
        model.fit(X[train], C[train], preset="fast", epochs_gae=50, epochs_inr=200,
                  epochs_decoder=200, progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(before)
    return model, X, C, train, test


def test_blend_is_fitted_saved_and_reloaded(blended, tmp_path):
    model, _, C, train, test = blended
    assert model.blend_ is not None and model.val_indices_.size > 0
    w = model.blend_.weight
    assert 0.0 < w < 1.0  # both the field and the interpolation contribute here
    interpolator = model.blend_.interpolator
    assert model.fit_params["blend"] == {
        "weight": w,
        "rescale": model.blend_.rescale,
        "bandwidth_spacings": round(interpolator.bandwidth_ / interpolator.spacing_, 4),
        "val_spots": model.val_indices_.size,
    }
    # The interpolation part uses every fitted spot (in the field's normalised frame, Gaussian
    # kernel with a leave-one-out bandwidth), the field part is the network.
    np.testing.assert_array_equal(model.blend_.coords, model._blend_space(C[train]))
    config = model.blend_.config()
    assert config["kernel"] == "nadaraya-watson" and config["normalized"]
    assert config["bandwidth"] == interpolator.bandwidth_ > 0
    pred = model.predict(C[test])
    model.save(tmp_path / "m")
    loaded = SUICA.load(tmp_path / "m", accelerator="cpu")
    assert (
        loaded.blend_ is not None
        and loaded.blend_.weight == w
        and loaded.blend_.interpolator.bandwidth_ == interpolator.bandwidth_
    )
    np.testing.assert_allclose(loaded.predict(C[test]), pred, rtol=1e-6, atol=1e-6)
    grid = loaded.render_grid(5.0)
    assert grid.X.shape[1] == 12 and np.isfinite(grid.X.data).all()


def test_exclude_self_leaves_the_fitted_spot_out(blended):
    model, _, C, train, _ = blended
    at_spots = model.predict(C[train[:10]])
    left_out = model.predict(C[train[:10]], exclude_self=True)
    assert not np.allclose(at_spots, left_out)
    field_only = SUICA.__new__(SUICA)
    field_only.__dict__.update({**model.__dict__, "blend_": None})
    w = model.blend_.weight
    knn_self = model.blend_.interpolator.predict(model._blend_space(C[train[:10]]))
    field = field_only.predict(C[train[:10]])
    expected = (1 - w) * field + w * knn_self
    if model.blend_.rescale:
        expected = rescale_to_field(expected, field.sum(1), expected.sum(1))
    np.testing.assert_allclose(at_spots, expected, atol=1e-5)


def test_bad_options_are_clear():
    with pytest.raises(ValueError, match="decoder_activation"):
        SUICA(decoder_activation="tanh")
    with pytest.raises(ValueError, match="blend"):
        SUICA(blend="kriging")


def test_gathered_choice_equals_the_dense_one():
    """The fit scores candidates from values at the truth's non-zeros only: same numbers."""
    from stfield.bench.metrics import evaluate

    rng = np.random.default_rng(1)
    truth = sp.random(80, 25, density=0.3, random_state=1, format="csr", dtype=np.float32)
    truth.data = rng.poisson(3.0, truth.nnz).astype(np.float32) + 1
    field = rng.gamma(2.0, 1.0, truth.shape).astype(np.float32)
    interpolated = truth.toarray() + rng.normal(0, 1.0, truth.shape).astype(np.float32)
    w, _, scores = choose_weight(truth, field, interpolated)
    for cand in (0.0, 0.35, 1.0):
        mix = (1 - cand) * field + cand * interpolated
        rescaled = rescale_to_field(mix, field.sum(1), mix.sum(1))
        for values, flag in ((mix, False), (rescaled, True)):
            dense = evaluate(truth, values)
            for key in CRITERIA:
                got = scores[(cand, flag)][key]
                assert got == pytest.approx(dense[key], rel=1e-5, abs=1e-9), (cand, flag, key)
    assert 0.0 < w <= 1.0


def test_rescaling_keeps_the_profile_at_the_field_level():
    """Per-spot cosine and Pearson are those of the mix; each spot's total is the field's."""
    from stfield.bench.metrics import evaluate

    rng = np.random.default_rng(3)
    truth = sp.random(50, 20, density=0.4, random_state=3, format="csr", dtype=np.float32)
    truth.data = rng.gamma(2.0, 3.0, truth.nnz).astype(np.float32)
    field = truth.toarray() * 1.3 + rng.gamma(1.0, 0.5, truth.shape).astype(np.float32)
    interpolated = 0.3 * truth.toarray() + rng.gamma(1.0, 0.2, truth.shape).astype(np.float32)
    mix = 0.5 * field + 0.5 * interpolated
    out = rescale_to_field(mix, field.sum(1), mix.sum(1))
    np.testing.assert_allclose(out.sum(1), field.sum(1), rtol=1e-5)
    a, b = evaluate(truth, mix), evaluate(truth, out)
    assert a["cosine"] == pytest.approx(b["cosine"]) and a["pearson"] == pytest.approx(b["pearson"])
    zero = rescale_to_field(np.zeros((2, 3), np.float32), np.ones(2), np.zeros(2))
    assert np.array_equal(zero, np.zeros((2, 3)))  # nothing to scale: left as it is


def test_a_rescaled_mix_is_chosen_when_only_the_level_is_off():
    """Rescaling ties on the scale-free measures; the next-weakest gain must decide for it."""
    rng = np.random.default_rng(4)
    truth = sp.random(200, 30, density=0.3, random_state=4, format="csr", dtype=np.float32)
    truth.data = rng.gamma(2.0, 3.0, truth.nnz).astype(np.float32)
    dense = truth.toarray()
    field = dense + rng.normal(0, 1.0, dense.shape).astype(np.float32)
    # The interpolation has each spot's profile, at a level off by a different factor per spot.
    level = rng.uniform(0.3, 1.0, (dense.shape[0], 1)).astype(np.float32)
    interpolated = level * (dense + rng.normal(0, 1.0, dense.shape).astype(np.float32))
    w, rescaled, scores = choose_weight(truth, field, interpolated)
    assert rescaled and 0.0 < w < 1.0
    plain = scores[(w, False)]
    assert scores[(w, True)]["mse"] < plain["mse"]
    assert scores[(w, True)]["cosine"] == pytest.approx(plain["cosine"], abs=1e-6)
    # The rescaled mix beats every plain mix on MSE, not only the one at its own weight.
    assert scores[(w, True)]["mse"] < min(s["mse"] for (_, r), s in scores.items() if not r)


def test_blend_configs_round_trip_including_older_folders():
    """The per-gene-mean limit survives JSON; folders from before store a kNN interpolator."""
    import json

    from stfield.bench.baselines import GaussianSmoother, KNNInterpolator
    from stfield.models.blend import InterpolationBlend

    rng = np.random.default_rng(0)
    coords = rng.uniform(-1, 1, size=(60, 2))
    X = sp.csr_matrix(rng.poisson(1.5, size=(60, 5)).astype(np.float32))
    queries = rng.uniform(-1, 1, size=(7, 2))
    for interpolator in (
        GaussianSmoother(bandwidth=np.inf).fit(X, coords),
        GaussianSmoother().fit(X, coords),
        KNNInterpolator(k=4, kernel="gaussian").fit(X, coords),
        KNNInterpolator(k=3).fit(X, coords),
    ):
        for rescale in (False, True):
            blend = InterpolationBlend(interpolator, 0.4, normalized=True, rescale=rescale)
            config = json.loads(json.dumps(blend.config()))  # what a model folder stores
            again = InterpolationBlend.from_arrays(blend.to_arrays(), config)
            assert again.rescale == rescale
            field = rng.gamma(2.0, 1.0, (7, 5)).astype(np.float32)
            mixed = blend.mix(field, queries)
            np.testing.assert_allclose(again.mix(field, queries), mixed, rtol=1e-6)
            if rescale:
                np.testing.assert_allclose(mixed.sum(1), field.sum(1), rtol=1e-5)
    # A folder written before the rescale option has none.
    old = InterpolationBlend(GaussianSmoother().fit(X, coords), 0.4, normalized=True).config()
    old.pop("rescale")
    assert not InterpolationBlend.from_arrays(blend.to_arrays(), old).rescale
