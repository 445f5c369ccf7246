"""Tokenise + downstream analysis + plots (issue 5, items 4, 5, 8)."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from stfield._utils import write_h5ad
from stfield.pl.vq import vq_code_map, vq_neighbourhood_map, vq_top_genes
from stfield.tl.vq import (
    VQModel,
    vq_de,
    vq_demo,
    vq_encode,
    vq_fit,
    vq_gene_attribution,
    vq_neighbourhoods,
    vq_svg,
)

SMALL = dict(pixel_size=1.0, tile=16, codebook_size=16, dim=8, hidden=16, lr=3e-3, progress=False)


@pytest.fixture(scope="module")
def model(transcripts, tmp_path_factory):
    out = tmp_path_factory.mktemp("vq") / "model"
    m = vq_fit(transcripts, epochs=3, out=out, checkpoint_every=2, **SMALL)
    assert (out / "config.json").exists()
    assert (out.parent / "model_checkpoints" / "epoch_0002" / "config.json").exists()
    return m


@pytest.fixture(scope="module")
def encoded(model, transcripts):
    return vq_encode(model, transcripts)


def test_encode_writes_codes_in_obs(encoded, transcripts, model):
    a = encoded
    n_cells = transcripts["cell_id"].dropna().nunique()
    assert a.n_obs == n_cells and a.n_vars == 6
    for m in (0, 1, 3):
        col = f"vq_code_m{m}"
        assert col in a.obs
        assert a.obs[col].between(0, 15).all()  # every centroid lies in a tile
    assert a.obsm["spatial"].shape == (n_cells, 2)
    assert a.X.sum() == transcripts["cell_id"].notna().sum()  # counts from the molecules
    vq = a.uns["stfield"]["vq"]
    n_tiles = vq["n_tiles"]
    assert vq["usage"]["m0"].sum() == n_tiles * 16 * 16
    assert vq["usage"]["m3"].sum() == n_tiles * 2 * 2
    assert max(vq["perplexity"].values()) > 1
    assert vq["code_maps"]["m1"].shape == (n_tiles, 8, 8)
    # a cell's code is the code under its centroid in its tile's map
    tile = a.obs["vq_tile"].to_numpy()
    ps, origin = vq["pixel_size"], vq["tile_origins"][tile]
    col = np.floor((a.obsm["spatial"][:, 0] - origin[:, 0]) / ps).astype(int)
    row = np.floor((a.obsm["spatial"][:, 1] - origin[:, 1]) / ps).astype(int)
    expect = vq["code_maps"]["m1"][tile, row >> 1, col >> 1]
    np.testing.assert_array_equal(a.obs["vq_code_m1"].to_numpy(), expect)


def test_encode_from_saved_model_matches_and_roundtrips(encoded, model, transcripts, tmp_path):
    out = tmp_path / "m"
    model.save(out)
    again = vq_encode(str(out), transcripts)
    for m in (0, 1, 3):
        col = f"vq_code_m{m}"
        np.testing.assert_array_equal(again.obs[col].to_numpy(), encoded.obs[col].to_numpy())
    write_h5ad(again, tmp_path / "cells.h5ad")
    back = anndata.read_h5ad(tmp_path / "cells.h5ad")
    assert "vq_code_m3" in back.obs and "perplexity" in back.uns["stfield"]["vq"]


def test_neighbourhoods_svg_de_attribution(encoded, model, transcripts):
    a = encoded.copy()
    vq_neighbourhoods(a, method="code", n_neighbourhoods=4, min_cells=2)
    assert a.obs["vq_neighbourhood"].nunique() <= 5
    vq_neighbourhoods(a, method="profile", n_neighbourhoods=2, n_neighbors=8, key_added="nb")
    assert set(a.obs["nb"].astype(str)) == {"n0", "n1"}
    svg = vq_svg(a, groupby="nb")
    assert list(svg["rank"]) == list(range(1, 7))
    assert "vq_svg_score" in a.var and svg["score"].notna().all()
    assert (svg["qval"] >= svg["pval"] - 1e-12).all()
    de = vq_de(a, "nb")
    assert set(de["group"].astype(str)) == {"n0", "n1"}
    assert "vq_rank_genes_groups" in a.uns
    top, matrix = vq_gene_attribution(model, transcripts, max_tiles=2, top=3, return_matrix=True)
    assert set(top["gene"]) <= set(model.genes) and len(top)
    assert top["fraction"].between(0, 1).all()
    sums = matrix.sum(1)
    assert np.allclose(sums[sums > 0], 1.0)
    with pytest.raises(ValueError, match="not in the model"):
        vq_gene_attribution(model, transcripts, genes=["nope"])


def test_plots_return_figures_and_save(encoded, tmp_path):
    a = encoded.copy()
    vq_neighbourhoods(a, method="profile", n_neighbourhoods=3, n_neighbors=8)
    vq_svg(a, groupby="vq_neighbourhood")
    for fn, name in (
        (lambda: vq_code_map(a, save=tmp_path / "codes.png"), "codes.png"),
        (lambda: vq_neighbourhood_map(a, save=tmp_path / "nb.png"), "nb.png"),
        (lambda: vq_top_genes(a, n_genes=3, save=tmp_path / "top.png"), "top.png"),
    ):
        assert isinstance(fn(), Figure)
        assert (tmp_path / name).stat().st_size > 0
    with pytest.raises(ValueError, match="vq_neighbourhoods"):
        vq_neighbourhood_map(a, key="missing")


def test_demo_writes_the_neighbourhood_map(transcripts, tmp_path):
    res = vq_demo(transcripts, tmp_path, epochs=2, tile=16, pixel_size=1.0, n_neighbourhoods=3)
    assert (tmp_path / "neighbourhoods.png").exists()
    assert res["n_neighbourhoods"] == 3 and res["n_cells"] > 0
    assert set(res["perplexity"]) == {"m0", "m1", "m3"}
    assert np.isfinite(res["val_mse"]) and np.isfinite(res["val_ssim"])


def test_bad_input_fails_clearly(transcripts, model):
    with pytest.raises(ValueError, match="tile"):
        vq_fit(transcripts, **{**SMALL, "tile": 12}, epochs=1)
    with pytest.raises(ValueError, match="VQModel"):
        vq_encode(object(), transcripts)
    with pytest.raises(ValueError, match="missing column"):
        vq_encode(model, pd.DataFrame({"gene": ["G0"], "x": [0.0]}))
    assert isinstance(model, VQModel)
