"""Matrix readers -> AnnData with CSR float32 counts and obsm["spatial"] in µm."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

import stfield.io as sio

WINDOW = (1070.0, 380.0, 60.0)
VISIUM_MPP = 65.0 / 89.44476048022638  # 65 µm / spot_diameter_fullres of the real sample


def assert_contract(adata: ad.AnnData, fmt: str) -> None:
    assert sp.isspmatrix_csr(adata.X) or isinstance(adata.X, sp.csr_array)
    assert adata.X.dtype == np.float32
    assert adata.obs_names.is_unique and adata.var_names.is_unique
    xy = adata.obsm["spatial"]
    assert xy.dtype == np.float64 and xy.shape == (adata.n_obs, 2)
    assert np.isfinite(xy).all()
    rec = adata.uns["stfield"]
    assert rec["spatial_unit"] == "um" and rec["format"] == fmt and rec["source"]
    assert not adata.var_names.str.match(r"(?i)^(blank|negcontrol|unassigned)").any()


def total(adata: ad.AnnData) -> float:
    return float(adata.X.sum())


# ---------------------------------------------------------------------------------------------
# Xenium cells


def test_xenium_cells_h5_and_mtx(io_data: Path, xenium_genes: pd.DataFrame) -> None:
    a = sio.read_xenium(io_data / "xenium")
    assert_contract(a, "xenium_cells")
    assigned = xenium_genes.loc[xenium_genes.cell_id >= 0]
    assert a.n_obs == assigned.cell_id.nunique()
    assert a.n_vars == xenium_genes.feature_name.nunique()  # controls dropped
    assert total(a) == len(assigned)
    # per-cell, per-gene counts equal the molecules of that cell
    ref = pd.crosstab(assigned.cell_id.astype(str), assigned.feature_name)
    dense = a.to_df().loc[ref.index, ref.columns]
    np.testing.assert_array_equal(dense.to_numpy(), ref.to_numpy())
    np.testing.assert_array_equal(a.obs["transcript_counts"], a.X.sum(axis=1).A1)
    # the mtx folder gives the same matrix
    b = sio.read_xenium(io_data / "xenium" / "cell_feature_matrix")
    assert (a.obs_names == b.obs_names).all() and (a.var_names == b.var_names).all()
    assert (a.X != b.X).nnz == 0
    np.testing.assert_array_equal(a.obsm["spatial"], b.obsm["spatial"])


def test_xenium_keep_controls(io_data: Path, xenium_raw: pd.DataFrame) -> None:
    a = sio.read_xenium(io_data / "xenium" / "cell_feature_matrix.h5", keep_controls=True)
    assert set(a.var["feature_types"]) > {"Gene Expression", "Negative Control Probe"}
    assert total(a) == int((xenium_raw.cell_id >= 0).sum())
    np.testing.assert_array_equal(a.obs["total_counts"], a.X.sum(axis=1).A1)


# ---------------------------------------------------------------------------------------------
# MERSCOPE cells


def test_merscope_cells(io_data: Path) -> None:
    a = sio.read_merscope(io_data / "merscope")
    assert_contract(a, "merscope_cells")
    raw = pd.read_csv(io_data / "merscope" / "cell_by_gene.csv", dtype={"cell": str}, index_col=0)
    meta = pd.read_csv(io_data / "merscope" / "cell_metadata.csv", dtype={0: str}, index_col=0)
    blanks = raw.columns.str.startswith("Blank-")
    assert blanks.sum() == 12 and a.n_vars == (~blanks).sum()
    assert (a.obs_names == raw.index).all()  # 128-bit ids kept exactly
    np.testing.assert_array_equal(a.X.toarray(), raw.loc[:, ~blanks].to_numpy())
    np.testing.assert_allclose(a.obsm["spatial"], meta.loc[a.obs_names, ["center_x", "center_y"]])
    assert {"fov", "volume", "min_x"} <= set(a.obs.columns)
    b = sio.read_merscope(io_data / "merscope" / "cell_by_gene.csv", keep_controls=True)
    assert b.n_vars == raw.shape[1] and total(b) == raw.to_numpy().sum()


def test_merscope_cells_unnamed_index_and_shuffled_metadata(tmp_path: Path, io_data: Path) -> None:
    raw = pd.read_csv(io_data / "merscope" / "cell_by_gene.csv", dtype={"cell": str})
    raw.rename(columns={"cell": ""}).to_csv(tmp_path / "cell_by_gene.csv", index=False)
    meta = pd.read_csv(io_data / "merscope" / "cell_metadata.csv", dtype=str)
    meta.iloc[::-1].to_csv(tmp_path / "cell_metadata.csv", index=False)
    a = sio.read(tmp_path)
    ref = sio.read_merscope(io_data / "merscope")
    assert (a.obs_names == ref.obs_names).all()
    np.testing.assert_allclose(a.obsm["spatial"], ref.obsm["spatial"])


# ---------------------------------------------------------------------------------------------
# Visium / Visium HD


def test_visium_space_ranger(io_data: Path) -> None:
    a = sio.read_visium(io_data / "visium")
    assert_contract(a, "visium")
    pos = pd.read_csv(io_data / "visium" / "outs" / "spatial" / "tissue_positions.csv")
    pos = pos.set_index("barcode").loc[a.obs_names]
    assert a.uns["stfield"]["pixel_size_um"] == pytest.approx(VISIUM_MPP)
    np.testing.assert_allclose(a.obsm["spatial"][:, 0], pos.pxl_col_in_fullres * VISIUM_MPP)
    np.testing.assert_allclose(a.obsm["spatial"][:, 1], pos.pxl_row_in_fullres * VISIUM_MPP)
    # Visium spots are 100 µm apart centre to centre (55 µm / spot_diameter_fullres gives 84)
    d = np.linalg.norm(a.obsm["spatial"][:, None] - a.obsm["spatial"][None], axis=-1)
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(d.min(axis=1), 100.0, rtol=0.01)
    # counts recovered from the real sample are integers; the h5ad has log1p(normalised)
    assert np.all(a.X.data == np.round(a.X.data)) and a.X.data.min() >= 1
    src = ad.read_h5ad(io_data / "h5ad" / "visium_mouse_brain.h5ad")
    assert list(a.var_names[:300]) == list(src.var_names)
    np.testing.assert_array_equal(a.X[:, :300].toarray() > 0, src.X.toarray() > 0)
    lib = a.uns["stfield"]["library_id"]
    sf = a.uns["spatial"][lib]["scalefactors"]
    assert sf["spot_diameter_fullres"] == pytest.approx(65.0)
    assert set(a.uns["spatial"][lib]["images"]) == {"hires", "lowres"}


def test_visium_old_positions_mtx_and_in_tissue(tmp_path: Path, io_data: Path) -> None:
    outs = tmp_path / "sample" / "outs"
    shutil.copytree(io_data / "visium" / "outs", outs)
    ref = sio.read_visium(outs, load_images=False)
    # Space Ranger 1.x: tissue_positions_list.csv without header; three spots off tissue
    pos = pd.read_csv(outs / "spatial" / "tissue_positions.csv")
    pos.loc[:2, "in_tissue"] = 0
    (outs / "spatial" / "tissue_positions.csv").unlink()
    pos.to_csv(outs / "spatial" / "tissue_positions_list.csv", header=False, index=False)
    # Matrix Market folder instead of the h5
    mtx = outs / "filtered_feature_bc_matrix"
    mtx.mkdir()
    scipy.io.mmwrite(mtx / "matrix.mtx", sp.coo_matrix(ref.X.T), field="integer")
    pd.DataFrame({"id": ref.var["gene_ids"], "name": ref.var_names, "t": "Gene Expression"}).to_csv(
        mtx / "features.tsv", sep="\t", header=False, index=False
    )
    pd.Series(ref.obs_names).to_csv(mtx / "barcodes.tsv", header=False, index=False)
    (outs / "filtered_feature_bc_matrix.h5").unlink()
    assert sio.detect_format(tmp_path / "sample") == "visium"
    a = sio.read(tmp_path / "sample", load_images=False)
    assert a.n_obs == ref.n_obs - 3
    assert a.uns["stfield"]["library_id"] == "sample"
    np.testing.assert_allclose(a.obsm["spatial"], ref.obsm["spatial"][3:])
    assert (a.X != ref.X[3:]).nnz == 0
    b = sio.read_visium(outs, in_tissue_only=False, load_images=False)
    assert b.n_obs == ref.n_obs and (b.obs["in_tissue"] == 0).sum() == 3


def test_visium_hd_bins(io_data: Path, xenium_genes: pd.DataFrame) -> None:
    a = sio.read_visium_hd(io_data / "visium_hd")
    assert_contract(a, "visium_hd")
    assert a.uns["stfield"]["bin_size_um"] == 8.0
    assert total(a) == len(xenium_genes)
    # bin centres in µm: (array_col + 0.5) * 8
    np.testing.assert_allclose(a.obsm["spatial"][:, 0], (a.obs["array_col"] + 0.5) * 8.0)
    np.testing.assert_allclose(a.obsm["spatial"][:, 1], (a.obs["array_row"] + 0.5) * 8.0)
    b = sio.read(io_data / "visium_hd", bin_size=16)
    assert b.uns["stfield"]["bin_size_um"] == 16.0 and b.n_obs < a.n_obs
    assert total(b) == total(a)
    c = sio.read(io_data / "visium_hd" / "outs" / "binned_outputs" / "square_016um")
    assert (c.X != b.X).nnz == 0
    with pytest.raises(FileNotFoundError, match=r"bin_size=2.*square_008um"):
        sio.read_visium_hd(io_data / "visium_hd", bin_size=2)


# ---------------------------------------------------------------------------------------------
# Stereo-seq, Slide-seq, generic


def test_stereoseq_gem_binning(io_data: Path, xenium_genes: pd.DataFrame) -> None:
    gem = io_data / "stereoseq" / "xenium_breast_crop.gem.gz"
    a = sio.read_stereoseq_gem(gem)
    assert_contract(a, "stereoseq_gem")
    raw = pd.read_csv(gem, sep="\t", comment="#")
    assert total(a) == raw.MIDCount.sum() == len(xenium_genes)
    assert a.uns["stfield"]["bin_size_um"] == 25.0 and a.uns["stfield"]["pixel_size_um"] == 0.5
    # centre of bin b: (b * 50 + 24.5) DNB * 0.5 µm
    np.testing.assert_allclose(a.obsm["spatial"][:, 0], (a.obs["bin_x"] * 50 + 24.5) * 0.5)
    # each molecule's bin matches the Xenium position it came from (DNB = floor(x / 0.5))
    bx = np.floor(np.floor(xenium_genes.x_location / 0.5) / 50).astype(int)
    assert set(a.obs["bin_x"]) == set(bx)
    b = sio.read(gem, bin_size=20, dnb_pitch_um=0.5)
    assert b.n_obs > a.n_obs and total(b) == total(a)
    per_gene = raw.groupby("geneID").MIDCount.sum()
    np.testing.assert_array_equal(b[:, per_gene.index].X.sum(axis=0).A1, per_gene.to_numpy())


def test_slideseq(io_data: Path, xenium_genes: pd.DataFrame) -> None:
    a = sio.read_slideseq(io_data / "slideseq")
    assert_contract(a, "slideseq")
    dge = pd.read_csv(
        io_data / "slideseq" / "xenium_breast_crop.digital_expression.txt.gz", sep="\t", index_col=0
    )
    locs = pd.read_csv(io_data / "slideseq" / "xenium_breast_crop_BeadLocationsForR.csv")
    assert a.shape == dge.T.shape and len(locs) > a.n_obs  # beads without counts are ignored
    np.testing.assert_array_equal(
        a.to_df().loc[dge.columns, dge.index].to_numpy(), dge.T.to_numpy()
    )
    xy = locs.set_index("barcodes").loc[a.obs_names, ["xcoord", "ycoord"]].to_numpy() * 0.65
    np.testing.assert_allclose(a.obsm["spatial"], xy)
    x0, y0, w = WINDOW
    assert (a.obsm["spatial"].min(0) > [x0 - 3, y0 - 3]).all()
    assert (a.obsm["spatial"].max(0) < [x0 + w + 3, y0 + w + 3]).all()
    assert total(a) == len(xenium_genes)


def test_generic_matrix(tmp_path: Path, io_data: Path) -> None:
    m, c = io_data / "generic" / "matrix.csv", io_data / "generic" / "coordinates.csv"
    a = sio.read(m, coordinates=c)
    assert_contract(a, "generic_matrix")
    raw = pd.read_csv(m, index_col=0)
    coords = pd.read_csv(c, index_col=0)
    np.testing.assert_array_equal(a.X.toarray(), raw.to_numpy())
    np.testing.assert_allclose(a.obsm["spatial"], coords.loc[a.obs_names].to_numpy())
    # shuffled coordinates are matched by id; without ids, by order
    coords.iloc[::-1].to_csv(tmp_path / "c.csv")
    b = sio.read_matrix_table(m, tmp_path / "c.csv")
    np.testing.assert_allclose(b.obsm["spatial"], a.obsm["spatial"])
    coords.to_csv(tmp_path / "noid.csv", index=False)
    np.testing.assert_allclose(
        sio.read_matrix_table(m, tmp_path / "noid.csv").obsm["spatial"], a.obsm["spatial"]
    )
    # parquet matrix with embedded pixel coordinates
    both = raw.join(coords * 2.0)
    both.to_parquet(tmp_path / "m.parquet")
    d = sio.read(tmp_path / "m.parquet", spatial_unit="px", pixel_size_um=0.5)
    assert d.uns["stfield"]["pixel_size_um"] == 0.5
    np.testing.assert_allclose(d.obsm["spatial"], a.obsm["spatial"])
    assert (d.X != a.X).nnz == 0


# ---------------------------------------------------------------------------------------------
# h5ad


def test_h5ad_visium_layout_converted(io_data: Path) -> None:
    path = io_data / "h5ad" / "visium_mouse_brain.h5ad"
    src = ad.read_h5ad(path)
    a = sio.read_h5ad(path)
    assert_contract(a, "h5ad")
    assert a.uns["stfield"]["unit_source"] == "visium_scalefactors"
    assert a.uns["stfield"]["pixel_size_um"] == pytest.approx(VISIUM_MPP)
    np.testing.assert_allclose(a.obsm["spatial"], src.obsm["spatial"] * VISIUM_MPP)
    # same µm as the Space Ranger folder written from the same sample
    sr = sio.read_visium(io_data / "visium", load_images=False)
    np.testing.assert_allclose(a.obsm["spatial"], sr[a.obs_names].obsm["spatial"])
    lib = a.uns["stfield"]["library_id"]
    sf, sf0 = a.uns["spatial"][lib]["scalefactors"], src.uns["spatial"][lib]["scalefactors"]
    # image pixel of a spot is unchanged: µm * new scalef == px * old scalef
    np.testing.assert_allclose(
        a.obsm["spatial"] * sf["tissue_lowres_scalef"],
        src.obsm["spatial"] * sf0["tissue_lowres_scalef"],
    )


def test_h5ad_declared_unit_blanks_and_roundtrip(tmp_path: Path, io_data: Path) -> None:
    path = io_data / "h5ad" / "merfish_u2os.h5ad"
    src = ad.read_h5ad(path)
    a = sio.read(path)
    assert_contract(a, "h5ad")
    assert a.uns["stfield"]["unit_source"] == "declared"
    assert a.n_vars == src.n_vars - 10  # Blank-* codewords dropped
    np.testing.assert_array_equal(a.obsm["spatial"], src.obsm["spatial"])
    assert sio.read_h5ad(path, keep_controls=True).n_vars == src.n_vars
    # an stfield-written file is trusted as is
    a.write_h5ad(tmp_path / "again.h5ad")
    b = sio.read_h5ad(tmp_path / "again.h5ad")
    np.testing.assert_array_equal(b.obsm["spatial"], a.obsm["spatial"])
    assert b.uns["stfield"]["unit_source"] == "declared"


def test_h5ad_assumed_um_warns_on_pixels(tmp_path: Path, io_data: Path) -> None:
    src = ad.read_h5ad(io_data / "h5ad" / "visium_mouse_brain.h5ad")
    del src.uns["spatial"]
    src.X = src.X.toarray().astype(np.float64)  # dense float64 -> CSR float32 on read
    src.obsm["spatial"] = src.obsm["spatial"] * 20  # whole-number pixels over > 1000 units
    src.write_h5ad(tmp_path / "px.h5ad")
    with pytest.warns(UserWarning, match="pixel_size_um"):
        a = sio.read_h5ad(tmp_path / "px.h5ad")
    assert a.uns["stfield"]["unit_source"] == "assumed"
    assert sp.isspmatrix_csr(a.X) and a.X.dtype == np.float32
    b = sio.read_h5ad(tmp_path / "px.h5ad", pixel_size_um=0.5)
    np.testing.assert_allclose(b.obsm["spatial"], a.obsm["spatial"] * 0.5)
    src.obsm["spatial"] = src.obsm["spatial"] / 20 + 0.25  # plausible µm: no warning
    src.write_h5ad(tmp_path / "um.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        sio.read_h5ad(tmp_path / "um.h5ad")


def test_h5ad_xenium_h5_roundtrip(io_data: Path) -> None:
    """A 10x h5 read as Xenium keeps its attributes after writing and re-reading."""
    with h5py.File(io_data / "xenium" / "cell_feature_matrix.h5") as f:
        types = set(np.char.decode(f["matrix/features/feature_type"][:]))
    assert "Negative Control Probe" in types
    rec = json.loads(json.dumps(sio.read_xenium(io_data / "xenium").uns["stfield"]))
    assert rec["format"] == "xenium_cells"
