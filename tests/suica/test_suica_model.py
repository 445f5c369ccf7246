"""SUICA end to end on a synthetic smooth sparse field."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from suica_helpers import QUICK_FIT, TINY, make_field

from stfield.bench.metrics import evaluate
from stfield.models.suica import SUICA, ModelDirNotFoundError


def test_loss_falls_in_each_stage(fitted):
    for stage in ("gae", "inr", "decoder"):
        losses = fitted.history[stage]
        assert len(losses) == QUICK_FIT[f"epochs_{stage}"]
        assert np.isfinite(losses).all()
        assert losses[-1] < 0.8 * losses[0], stage
    assert set(fitted.timings_) == {"gae", "inr", "decoder"}


def test_beats_per_gene_mean_on_held_out_spots(field, split, fitted):
    adata, rate = field
    train, test = split
    truth = adata.X[test].toarray()
    pred = fitted.predict(adata.obsm["spatial"][test])
    assert pred.shape == truth.shape and pred.dtype == np.float32 and (pred >= 0).all()
    mean = np.tile(np.asarray(adata.X[train].mean(axis=0)), (test.size, 1))
    ours, base = evaluate(truth, pred), evaluate(truth, mean)
    assert ours["mse_all"] < 0.75 * base["mse_all"]
    assert ours["pearson"] > base["pearson"] + 0.25
    assert ours["pearson_gene"] > 0.4
    # The field itself (noise-free rates) is recovered better than by the mean.
    assert ((pred - rate[test]) ** 2).mean() < 0.5 * ((mean - rate[test]) ** 2).mean()


def test_dice_term_raises_zero_map_iou(field, split):
    adata, _ = field
    train, test = split
    truth = adata.X[test].toarray()
    ious = {}
    for weight in (0.0, 1.0):
        # The published decoder (ReLU output, no blend): the mechanism the paper's term targets.
        model = SUICA("ffn", preset="paper", seed=0, dice_weight=weight, **TINY)
        model.fit(adata.X[train], adata.obsm["spatial"][train], progress=False, **QUICK_FIT)
        ious[weight] = evaluate(truth, model.predict(adata.obsm["spatial"][test]))["iou"]
    # λ = 0.01 (the paper's) barely moves IoU at this size; λ = 1 shows the mechanism.
    assert ious[1.0] > ious[0.0] + 0.02


def test_auto_fourier_scale_is_resolved_and_saved(tmp_path, field):
    adata, _ = field
    kwargs = {**TINY, "backbone_kwargs": {"width": 32, "depth": 1, "scale": "auto"}}
    model = SUICA("ffn", **kwargs)
    model.fit(
        adata.X,
        adata.obsm["spatial"],
        preset="fast",
        epochs_gae=1,
        epochs_inr=1,
        epochs_decoder=1,
        progress=False,
    )
    scale = model.backbone.config()["scale"]
    assert scale == pytest.approx(0.25 / (2 * 10.0 / 95.0))  # 10 µm spacing, half-range 95 µm
    model.save(tmp_path / "m")
    assert SUICA.load(tmp_path / "m", accelerator="cpu").backbone.config()["scale"] == scale


def test_save_load_round_trip(tmp_path, field, fitted):
    adata, _ = field
    fitted.save(tmp_path / "model")
    loaded = SUICA.load(tmp_path / "model", accelerator="cpu")
    query = np.random.default_rng(0).uniform(-20, 210, size=(57, 2))
    np.testing.assert_array_equal(loaded.predict(query), fitted.predict(query))
    np.testing.assert_array_equal(loaded.embed(query), fitted.embed(query))
    assert loaded.gene_names == list(adata.var_names)
    assert loaded.history == fitted.history
    np.testing.assert_allclose(loaded.coord_center, fitted.coord_center)
    assert loaded.coord_scale == fitted.coord_scale


def test_render_grid_tiles_match_predict(fitted, monkeypatch):
    calls = []
    original = SUICA._predict_batches

    def spy(self, coords, *args):
        calls.append(coords.shape[0])
        return original(self, coords, *args)

    monkeypatch.setattr(SUICA, "_predict_batches", spy)
    grid = fitted.render_grid(7.0, bounds=(0.0, 5.0, 190.0, 120.0), tile=8)
    nx, ny = (190 // 7) + 1, (115 // 7) + 1
    assert grid.uns["stfield"]["grid"]["shape"] == [ny, nx]
    assert grid.shape == (nx * ny, fitted.n_genes) and sp.issparse(grid.X)
    assert len(calls) > 1 and max(calls) <= 8 * 8  # bounded by one tile
    xy = grid.obsm["spatial"]
    np.testing.assert_allclose(xy[:nx, 0], 7.0 * np.arange(nx))
    np.testing.assert_allclose(xy[::nx, 1], 5.0 + 7.0 * np.arange(ny))
    np.testing.assert_array_equal(grid.obs["grid_row"].to_numpy(), np.arange(nx * ny) // nx)
    np.testing.assert_allclose(grid.X.toarray(), fitted.predict(xy), rtol=1e-5, atol=1e-6)


def test_predict_sparse_and_batched_agree(fitted):
    query = np.random.default_rng(1).uniform(0, 190, size=(101, 2))
    dense = fitted.predict(query)
    np.testing.assert_allclose(fitted.predict(query, batch_size=7), dense, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        fitted.predict(query, sparse=True).toarray(), dense, rtol=1e-5, atol=1e-6
    )
    assert fitted.embed(query).shape == (101, 16)


def test_deterministic_on_cpu(field):
    adata, _ = field
    preds = []
    for _ in range(2):
        model = SUICA("siren", seed=3, **{**TINY, "backbone_kwargs": {"width": 32}})
        model.fit(
            adata.X,
            adata.obsm["spatial"],
            preset="fast",
            epochs_gae=3,
            epochs_inr=5,
            epochs_decoder=5,
            batch_size_gae=128,
            progress=False,
        )
        preds.append(model.predict(adata.obsm["spatial"][:50]))
    np.testing.assert_array_equal(preds[0], preds[1])


def test_fit_in_3d_and_query_dimension_checks():
    adata, _ = make_field(n_side=8, n_genes=6)
    coords = np.column_stack([adata.obsm["spatial"], np.repeat([0.0, 8.0], adata.n_obs // 2)])
    model = SUICA(
        "hashgrid",
        backbone_kwargs={"n_levels": 4, "max_resolution": 32, "log2_hashmap_size": 8, "width": 16},
        **{k: v for k, v in TINY.items() if k != "backbone_kwargs"},
    )
    model.fit(
        adata.X, coords, preset="fast", epochs_gae=2, epochs_inr=3, epochs_decoder=3, progress=False
    )
    assert model.predict(coords[:5]).shape == (5, 6)
    with pytest.raises(ValueError, match="expects 3"):
        model.predict(coords[:5, :2])
    grid = model.render_grid(20.0, z=8.0)
    assert grid.obsm["spatial"].shape[1] == 3 and (grid.obsm["spatial"][:, 2] == 8.0).all()


def test_early_stopping_keeps_best_and_stops(field):
    adata, _ = field
    model = SUICA("ffn", seed=0, **TINY)
    model.fit(
        adata.X,
        adata.obsm["spatial"],
        preset="fast",
        epochs_gae=5,
        epochs_inr=400,
        epochs_decoder=5,
        lr_inr=3e-3,
        val_fraction=0.2,
        patience=10,
        progress=False,
    )
    assert model.val_indices_.size == 80
    assert len(model.history["inr_val"]) == len(model.history["inr"])
    assert len(model.history["inr"]) < 400  # the INR overfits the training spots: stopped early


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: m.predict(np.zeros((4, 3))), "columns"),
        (lambda m: m.predict(np.zeros(4)), "shape"),
        (lambda m: m.predict(np.array([[0.0, np.nan]])), "NaN"),
        (lambda m: m.render_grid(0.0), "positive"),
        (lambda m: m.render_grid(-2.0), "positive"),
        (lambda m: m.render_grid(1e-3), "points"),
        (lambda m: m.render_grid(5.0, bounds=(10, 0, 0, 10)), "bounds"),
    ],
)
def test_bad_queries_raise_value_error(fitted, call, match):
    with pytest.raises(ValueError, match=match):
        call(fitted)


def test_bad_fit_inputs_and_missing_model_dir(tmp_path, field):
    adata, _ = field
    model = SUICA("ffn", **TINY)
    with pytest.raises(ValueError, match=r"predict|not fitted"):
        model.predict(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="coordinate rows"):
        model.fit(adata.X, adata.obsm["spatial"][:-1], progress=False)
    with pytest.raises(ValueError, match="shape"):
        model.fit(adata.X, adata.obsm["spatial"][:, :1], progress=False)
    with pytest.raises(ValueError, match="negative"):
        model.fit(-adata.X, adata.obsm["spatial"], progress=False)
    with pytest.raises(ValueError, match="preset"):
        model.fit(adata.X, adata.obsm["spatial"], preset="nope", progress=False)
    with pytest.raises(ValueError, match=r"patience|validation"):
        # Without a blend nothing is held out unless val_fraction asks for it.
        SUICA("ffn", blend="none", **TINY).fit(
            adata.X, adata.obsm["spatial"], patience=3, progress=False
        )
    with pytest.raises(ValueError, match="backbone"):
        SUICA("nerf")
    with pytest.raises(ValueError, match="does not exist"):
        SUICA.load(tmp_path / "nowhere")
    with pytest.raises(ModelDirNotFoundError):
        SUICA.load(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a model directory"):
        SUICA.load(tmp_path / "file")


def test_failed_fit_leaves_an_unfitted_model(field, monkeypatch):
    adata, _ = field

    def boom(*args, **kwargs):
        raise ValueError("stage 'inr': loss became nan at epoch 1")

    monkeypatch.setattr(SUICA, "_fit_inr", boom)
    model = SUICA("ffn", **TINY)
    with pytest.raises(ValueError, match="inr"):
        model.fit(adata.X, adata.obsm["spatial"], preset="fast", epochs_gae=1, progress=False)
    assert not model.is_fitted
