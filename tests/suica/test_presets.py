"""Model presets: the measured default ("stfield") and the published configuration ("paper")."""

from __future__ import annotations

import json

import numpy as np
import pytest
from suica_helpers import make_field

from stfield.bench.baselines.suica import SUICA_METHODS
from stfield.models.suica import ARCHITECTURES, PRESETS, SUICA

FEW = {"epochs_gae": 2, "epochs_inr": 2, "epochs_decoder": 2, "progress": False}


def test_default_is_the_stfield_architecture():
    model = SUICA()
    assert model.preset == "stfield"
    assert model.backbone_name == "siren" and model.backbone_kwargs == {"width": 256, "w0": "auto"}
    assert model.latent_dim == 64 and SUICA(preset="paper").latent_dim == 32
    assert model.gae_hidden == (512, 128, 64)
    assert (model.decoder_activation, model.blend) == ("leaky", "knn")


def test_paper_preset_is_the_published_configuration():
    model = SUICA(preset="paper")
    assert model.backbone_name == "ffn" and model.backbone_kwargs == {}
    assert model.gae_hidden == (2048, 512, 64)
    assert (model.decoder_activation, model.blend) == ("relu", "none")
    # The published training: Adam 1e-5 GAE, 200 / 1,000 / 1,000 epochs.
    assert PRESETS["paper"]["lr_gae"] == 1e-5 and PRESETS["paper"]["epochs_inr"] == 1000


def test_explicit_arguments_override_the_preset():
    model = SUICA("ffn", decoder_activation="relu", blend="none", gae_hidden=(64, 32, 16))
    # A backbone other than the preset's takes its own class defaults, not SIREN's width.
    assert model.backbone_kwargs == {}
    assert (model.decoder_activation, model.blend, model.gae_hidden) == (
        "relu",
        "none",
        (64, 32, 16),
    )
    assert SUICA("siren", preset="paper").backbone_kwargs == {}
    with pytest.raises(ValueError, match="preset"):
        SUICA(preset="nope")


def test_fit_trains_with_the_model_preset_and_saves_it(tmp_path):
    adata, _ = make_field(n_side=8, n_genes=6)
    small = {"gae_hidden": (16, 8, 4), "latent_dim": 4, "backbone_kwargs": {"width": 16}}
    model = SUICA(preset="paper", accelerator="cpu", **small)
    model.fit(adata.X, adata.obsm["spatial"], **FEW)
    assert model.fit_params["preset"] == "paper"
    assert model.fit_params["lr_gae"] == PRESETS["paper"]["lr_gae"]
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())["config"]
    assert config["preset"] == "paper"
    again = SUICA.load(tmp_path / "m")
    assert again.preset == "paper" and again.blend_ is None
    np.testing.assert_array_equal(
        again.predict(adata.obsm["spatial"]), model.predict(adata.obsm["spatial"])
    )
    # An explicit fit preset still wins over the model's.
    other = SUICA(accelerator="cpu", **small).fit(
        adata.X, adata.obsm["spatial"], preset="paper", **FEW
    )
    assert other.fit_params["preset"] == "paper" and other.blend_ is not None


def test_harness_names_map_to_the_presets():
    default = SUICA_METHODS["suica"](seed=0).model_options
    paper = SUICA_METHODS["suica-paper"](seed=0).model_options
    assert default["preset"] == "stfield" and "blend" not in default
    assert paper["preset"] == "paper"
    knn = SUICA_METHODS["suica-knn"](seed=0).model_options
    arch = ARCHITECTURES["stfield"]
    assert (knn["backbone"], knn["decoder_activation"], knn["blend"]) == (
        arch["backbone"],
        arch["decoder_activation"],
        arch["blend"],
    )


def test_denoise_task_fits_the_default_without_a_blend():
    adata, _ = make_field(n_side=8, n_genes=6)
    epochs = {k: v for k, v in FEW.items() if k.startswith("epochs")}
    method = SUICA_METHODS["suica"](
        seed=0, gae_hidden=(16, 8, 4), latent_dim=4, backbone_kwargs={"width": 16}, **epochs
    )
    method.set_task("denoise")
    method.fit(adata.X, adata.obsm["spatial"])
    assert method.model_.blend_ is None and method.model_.val_indices_.size == 0
    pred = method.predict(adata.obsm["spatial"], exclude_self=True)
    np.testing.assert_array_equal(pred, method.model_.predict(adata.obsm["spatial"]))


def test_siren_w0_auto_follows_the_spot_spacing(tmp_path):
    """w0 'auto' is 2π × a quarter of the Nyquist frequency, resolved at fit and saved as a number."""
    import math

    from stfield.models.backbones import nyquist_scale

    small = {"gae_hidden": (16, 8, 4), "latent_dim": 4, "accelerator": "cpu"}
    resolved = {}
    for n_side in (8, 16):
        adata, _ = make_field(n_side=n_side, n_genes=6)
        raw = adata.obsm["spatial"]
        coords = (raw - raw.min(0)) / np.ptp(raw, axis=0).max() * 160.0  # same 160 µm extent
        model = SUICA(backbone_kwargs={"width": 16, "w0": "auto"}, **small)
        model.fit(adata.X, coords, **FEW)
        w0 = model.backbone.config()["w0"]
        expected = 2 * math.pi * nyquist_scale(model.normalize_coords(coords))
        assert w0 == pytest.approx(expected)
        resolved[n_side] = w0
        model.save(tmp_path / f"m{n_side}")
        again = SUICA.load(tmp_path / f"m{n_side}")
        assert again.backbone_kwargs["w0"] == pytest.approx(w0)
        np.testing.assert_array_equal(again.predict(coords), model.predict(coords))
    # Twice the spots per side over the same extent: twice the frequency.
    assert resolved[16] / resolved[8] == pytest.approx(2.0, rel=0.15)


def test_cli_help_epochs_match_the_presets():
    from stfield.cli._common import PRESET_EPOCHS

    for preset, epochs in PRESET_EPOCHS.items():
        assert {k: PRESETS[preset][k] for k in epochs} == epochs
