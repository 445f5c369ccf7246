"""SUICA ``tl`` verbs (AnnData in, AnnData out) and the ``stfield fit`` / ``predict`` commands."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from suica_helpers import TINY, make_field

from stfield.tl import suica as tl_suica

#: TINY sizes an FFN; tl options go to the model (the default preset's backbone is SIREN).
TINY_FFN = {**TINY, "backbone": "ffn"}
FEW = {"preset": "fast", "epochs_gae": 3, "epochs_inr": 10, "epochs_decoder": 10, "progress": False}


@pytest.fixture(scope="module")
def small():
    adata, _ = make_field(n_side=10, n_genes=8)
    return adata


def test_fit_suica_writes_embedding_and_params(small, caplog, tmp_path):
    adata = small.copy()
    with caplog.at_level(logging.INFO, logger="stfield"):
        model = tl_suica.fit_suica(adata, **TINY_FFN, **FEW)
    assert adata.obsm["stfield_suica_embedding"].shape == (adata.n_obs, 16)
    params = adata.uns["stfield"]["suica"]
    assert params["backbone"] == "ffn" and params["fit"]["epochs_inr"] == 10
    assert "stfield_suica_embedding" in caplog.text
    assert model.gene_names == list(adata.var_names)
    _, copy = tl_suica.fit_suica(small, copy=True, **TINY_FFN, **FEW)
    assert "stfield_suica_embedding" in copy.obsm and "stfield_suica_embedding" not in small.obsm
    np.testing.assert_array_equal(
        copy.obsm["stfield_suica_embedding"], adata.obsm["stfield_suica_embedding"]
    )
    copy.write_h5ad(tmp_path / "fit.h5ad")  # everything written to uns is h5ad-serialisable
    assert ad.read_h5ad(tmp_path / "fit.h5ad").uns["stfield"]["suica"]["backbone"] == "ffn"


def test_impute_spots_genes_denoise(small, caplog, tmp_path):
    adata = small.copy()
    with caplog.at_level(logging.INFO, logger="stfield"):
        assert tl_suica.impute_spots(adata, test_fraction=0.25, **TINY_FFN, **FEW) is None
    layer = adata.layers["stfield_imputed"]
    assert sp.issparse(layer) and layer.shape == adata.shape
    assert (adata.obs["stfield_split"] == "test").sum() == 25
    np.testing.assert_array_equal(
        np.flatnonzero(adata.obs["stfield_split"] == "test"),
        adata.uns["stfield"]["suica_impute_spots"]["test_indices"],
    )
    assert "stfield_imputed" in caplog.text

    out = tl_suica.impute_genes(adata, fraction=0.5, copy=True, **TINY_FFN, **FEW)
    assert "stfield_gene_imputed" in out.layers and "stfield_gene_imputed" not in adata.layers
    info = out.uns["stfield"]["suica_impute_genes"]
    assert info["muted_rows"].size == round(0.5 * small.X.nnz)

    tl_suica.denoise(adata, noise_sigma=1.0, **TINY_FFN, **FEW)
    assert adata.layers["stfield_denoised"].shape == adata.shape
    assert adata.uns["stfield"]["suica_denoise"]["noise_sigma"] == 1.0
    adata.write_h5ad(tmp_path / "verbs.h5ad")
    out.write_h5ad(tmp_path / "genes.h5ad")


def test_verbs_reuse_a_model_and_validate(small):
    adata = small.copy()
    model = tl_suica.fit_suica(adata, **TINY_FFN, **FEW)
    tl_suica.denoise(adata, model=model)
    # Denoising is the field's reconstruction: the model's kNN blend is left out.
    assert model.blend_ is not None and model.blend_.weight > 0
    field_only = model.predict(adata.obsm["spatial"], interpolate=False)
    np.testing.assert_allclose(
        adata.layers["stfield_denoised"].toarray(), field_only, rtol=1e-6, atol=1e-7
    )
    assert not np.allclose(field_only, model.predict(adata.obsm["spatial"]))
    with pytest.raises(ValueError, match="genes"):
        tl_suica.denoise(adata[:, :4].copy(), model=model)
    bad = adata.copy()
    del bad.obsm["spatial"]
    with pytest.raises(ValueError, match="spatial"):
        tl_suica.fit_suica(bad, **TINY_FFN, **FEW)
    with pytest.raises(ValueError, match="unknown SUICA option"):
        tl_suica.fit_suica(adata, epochs=3, **TINY_FFN, **FEW)
    with pytest.raises(ValueError, match=r"overlap|range|no training"):
        tl_suica.impute_spots(adata, model=model, split=np.arange(adata.n_obs))


@pytest.fixture()
def cli_main():
    from stfield import cli
    from stfield.cli import suica as cli_suica

    for command in (cli_suica.fit, cli_suica.predict):  # registered by the lead in cli._optional
        if command.name not in cli.cli.commands:
            cli.cli.add_command(command)
    return cli.main


def test_cli_fit_predict_round_trip(tmp_path, small, cli_main, capsys):
    src = tmp_path / "slice.h5ad"
    small.write_h5ad(src)
    model_dir = tmp_path / "model"
    rc = cli_main(
        [
            "fit",
            str(src),
            "--out",
            str(model_dir),
            "--backbone",
            "siren",
            "--epochs-gae",
            "1",
            "--epochs-inr",
            "2",
            "--epochs-decoder",
            "2",
            "--seed",
            "1",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert (model_dir / "config.json").exists()

    from stfield.models.suica import SUICA

    model = SUICA.load(model_dir, accelerator="cpu")
    assert model.backbone_name == "siren" and model.n_genes == small.n_vars

    like_out = tmp_path / "like.h5ad"
    assert cli_main(["predict", str(model_dir), "--out", str(like_out), "--like", str(src)]) == 0
    like = ad.read_h5ad(like_out)
    assert list(like.obs_names) == list(small.obs_names)
    np.testing.assert_allclose(like.X.toarray(), model.predict(small.obsm["spatial"]), rtol=1e-6)

    csv = tmp_path / "q.csv"
    pd.DataFrame({"x": [0.0, 15.5, 90.0], "y": [3.0, 40.0, 90.0]}).to_csv(csv, index=False)
    csv_out = tmp_path / "q.h5ad"
    assert cli_main(["predict", str(model_dir), "--out", str(csv_out), "--coords", str(csv)]) == 0
    assert ad.read_h5ad(csv_out).shape == (3, small.n_vars)

    grid_out = tmp_path / "grid.h5ad"
    assert cli_main(["predict", str(model_dir), "--out", str(grid_out), "--grid-step", "5"]) == 0
    grid = ad.read_h5ad(grid_out)
    assert list(grid.uns["stfield"]["grid"]["shape"]) == [19, 19]

    # Bad input: one line, exit 2.
    capsys.readouterr()
    assert cli_main(["predict", str(model_dir), "--out", str(grid_out), "--grid-step", "0"]) == 2
    assert "grid step" in capsys.readouterr().err
    assert (
        cli_main(["predict", str(tmp_path / "none"), "--out", str(grid_out), "--grid-step", "5"])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["predict", str(model_dir), "--out", str(grid_out)]) == 2
    assert "exactly one" in capsys.readouterr().err
    bad_csv = tmp_path / "bad.csv"
    pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}).to_csv(bad_csv, index=False)
    assert (
        cli_main(["predict", str(model_dir), "--out", str(grid_out), "--coords", str(bad_csv)]) == 2
    )
    assert cli_main(["fit", str(tmp_path / "missing.h5ad"), "--out", str(model_dir)]) == 2


def test_cli_help_documents_every_option(cli_main, capsys):
    for command in ("fit", "predict"):
        assert cli_main([command, "--help"]) == 0
        text = capsys.readouterr().out
        for option in {
            "fit": [
                "--out",
                "--backbone",
                "--bin-size",
                "--epochs-gae",
                "--epochs-inr",
                "--epochs-decoder",
                "--seed",
            ],
            "predict": ["--out", "--coords", "--grid-step", "--like"],
        }[command]:
            assert option in text


def test_cli_fit_resume_after_interruption(tmp_path, small, cli_main, capsys, monkeypatch):
    from stfield.models.suica import SUICA
    from stfield.train.checkpoint import Checkpointer

    src = tmp_path / "slice.h5ad"
    small.write_h5ad(src)
    args = ["--backbone", "siren", "--epochs-gae", "2", "--epochs-inr", "4"]
    args += ["--epochs-decoder", "4", "--checkpoint-every", "2"]
    assert cli_main(["fit", str(src), "--out", str(tmp_path / "ref"), *args]) == 0
    assert not (tmp_path / "ref_checkpoints").exists()  # removed once the model is saved

    class Interrupted(Exception):
        pass

    real, calls = Checkpointer._write, []

    def write(self, *a, **k):
        real(self, *a, **k)
        calls.append(1)
        if len(calls) == 3:  # mid-INR
            raise Interrupted

    out = tmp_path / "model"
    with monkeypatch.context() as m:
        m.setattr(Checkpointer, "_write", write)
        with pytest.raises(Interrupted):
            cli_main(["fit", str(src), "--out", str(out), *args])
    assert not out.exists() and (tmp_path / "model_checkpoints" / "checkpoint.pt").exists()
    assert cli_main(["fit", str(src), "--out", str(out), *args, "--resume"]) == 0
    ref, resumed = SUICA.load(tmp_path / "ref"), SUICA.load(out)
    for key, value in ref.state_dict().items():
        np.testing.assert_allclose(resumed.state_dict()[key].numpy(), value.numpy(), atol=1e-6)

    capsys.readouterr()
    rc = cli_main(["fit", str(src), "--out", str(tmp_path / "other"), *args, "--resume"])
    assert rc == 2 and "no checkpoint to resume from" in capsys.readouterr().err
