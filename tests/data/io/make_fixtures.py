"""Regenerate every reader fixture in this folder from the real data in ``../shared/data``.

Run from the repository root::

    python tests/data/io/make_fixtures.py [--source ../shared/data]

The output is deterministic (seeded, gzip mtime 0). See README.md here for what each fixture is
and how it was derived. The tests read only the committed fixtures.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import shutil
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.io
import scipy.sparse as sp
from PIL import Image
from scipy.spatial import ConvexHull, cKDTree

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
SEED = 0
#: The 60 x 60 µm window of the Xenium crop every molecule-derived fixture is cut from.
WINDOW = (1070.0, 380.0, 60.0)
#: Smaller window (top-left 30 x 30 µm of WINDOW) for MERSCOPE's uncompressed CSV.
MERSCOPE_WINDOW = (1070.0, 380.0, 30.0)
#: Real molecules relabelled as control probes, per platform naming.
CONTROLS = {
    "xenium": [
        ("NegControlProbe_00042", "Negative Control Probe"),
        ("NegControlCodeword_0502", "Negative Control Codeword"),
        ("BLANK_0006", "Blank Codeword"),
        ("UnassignedCodeword_0007", "Unassigned Codeword"),
    ],
    "merscope": ["Blank-0", "Blank-1", "Blank-2", "Blank-3"],
    "cosmx": ["NegPrb1", "NegPrb2", "NegPrb3", "SystemControl1"],
}
N_CONTROL_MOLECULES = 40
MERSCOPE_PX_UM = 0.108
MERSCOPE_Z_STEP_UM = 1.5
COSMX_PX_UM = 0.12028
COSMX_Z_STEP_UM = 0.8
HD_MICRONS_PER_PIXEL = 0.2738
SLIDESEQ_PX_UM = 0.65


def gz_bytes(path: Path, data: bytes) -> None:
    """Write gzip with mtime 0 so the fixture bytes are reproducible."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(data)


def in_window(df: pd.DataFrame, window: tuple[float, float, float]) -> pd.Series:
    x0, y0, w = window
    return (
        (df.x_location >= x0)
        & (df.x_location < x0 + w)
        & (df.y_location >= y0)
        & (df.y_location < y0 + w)
    )


def write_10x_h5(
    path: Path,
    X: sp.csr_matrix,
    barcodes: list[str],
    ids: list[str],
    names: list[str],
    types: list[str],
    genome: str,
) -> None:
    """Write a 10x HDF5 feature-barcode matrix (v3 layout: genes x barcodes CSC)."""
    X = sp.csr_matrix(X, dtype=np.int32)
    X.sort_indices()
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "matrix"
        f.attrs["version"] = 2
        g = f.create_group("matrix")
        kw = {"compression": "gzip", "compression_opts": 9}
        g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"), **kw)
        g.create_dataset("data", data=X.data, **kw)
        g.create_dataset("indices", data=X.indices.astype(np.int64), **kw)
        g.create_dataset("indptr", data=X.indptr.astype(np.int64), **kw)
        g.create_dataset("shape", data=np.array([X.shape[1], X.shape[0]], dtype=np.int32))
        feats = g.create_group("features")
        feats.create_dataset("id", data=np.array(ids, dtype="S"), **kw)
        feats.create_dataset("name", data=np.array(names, dtype="S"), **kw)
        feats.create_dataset("feature_type", data=np.array(types, dtype="S"), **kw)
        feats.create_dataset("genome", data=np.array([genome] * len(ids), dtype="S"), **kw)
        feats.create_dataset("_all_tag_keys", data=np.array([b"genome"]))


def write_10x_mtx(
    folder: Path,
    X: sp.csr_matrix,
    barcodes: list[str],
    ids: list[str],
    names: list[str],
    types: list[str],
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    scipy.io.mmwrite(buf, sp.coo_matrix(X.T.astype(np.int64)), field="integer")
    gz_bytes(folder / "matrix.mtx.gz", buf.getvalue())
    feats = "".join(f"{i}\t{n}\t{t}\n" for i, n, t in zip(ids, names, types, strict=True))
    gz_bytes(folder / "features.tsv.gz", feats.encode())
    gz_bytes(folder / "barcodes.tsv.gz", "".join(f"{b}\n" for b in barcodes).encode())


def count_matrix(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> sp.csr_matrix:
    ones = np.ones(len(rows), dtype=np.int64)
    return sp.coo_matrix((ones, (rows, cols)), shape=(n_rows, n_cols)).tocsr()


def hull_area(points: np.ndarray) -> float:
    if len(points) < 3:
        return float("nan")
    try:
        return float(ConvexHull(points).volume)
    except Exception:  # collinear points
        return float("nan")


# ---------------------------------------------------------------------------------------------


def xenium(src: Path, out: Path) -> pd.DataFrame:
    """Xenium output folder: transcripts.parquet (real rows), cells.parquet, cell_feature_matrix."""
    table = pq.read_table(src / "xenium_breast_crop" / "transcripts.parquet")
    df = table.to_pandas()
    df = df.loc[in_window(df, WINDOW)].sort_values("transcript_id").reset_index(drop=True)
    rng = np.random.default_rng(SEED)
    pick = np.sort(rng.choice(len(df), N_CONTROL_MOLECULES, replace=False))
    names = [c for c, _ in CONTROLS["xenium"]]
    df.loc[pick, "feature_name"] = [names[i % len(names)] for i in range(len(pick))]
    folder = out / "xenium"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pandas(df, schema=table.schema, preserve_index=False),
        folder / "transcripts.parquet",
        compression="zstd",
    )

    cells = df.loc[df.cell_id >= 0]
    cell_ids = np.sort(cells.cell_id.unique())
    genes = sorted(set(df.feature_name) - set(names))
    features = genes + names
    types = ["Gene Expression"] * len(genes) + [t for _, t in CONTROLS["xenium"]]
    fidx = {f: i for i, f in enumerate(features)}
    cidx = {c: i for i, c in enumerate(cell_ids)}
    X = count_matrix(
        cells.cell_id.map(cidx).to_numpy(),
        cells.feature_name.map(fidx).to_numpy(),
        len(cell_ids),
        len(features),
    )
    rows = []
    for cid in cell_ids:
        mol = cells.loc[cells.cell_id == cid]
        nuc = mol.loc[mol.overlaps_nucleus == 1]
        centre = (nuc if len(nuc) else mol)[["x_location", "y_location"]].mean()
        name = mol.feature_name
        rows.append(
            {
                "cell_id": int(cid),
                "x_centroid": float(centre.x_location),
                "y_centroid": float(centre.y_location),
                "transcript_counts": int((~name.isin(names)).sum()),
                "control_probe_counts": int(name.str.startswith("NegControlProbe").sum()),
                "control_codeword_counts": int(
                    name.str.match("NegControlCodeword|BLANK|Unassigned").sum()
                ),
                "total_counts": len(mol),
                "cell_area": hull_area(mol[["x_location", "y_location"]].to_numpy()),
                "nucleus_area": hull_area(nuc[["x_location", "y_location"]].to_numpy()),
            }
        )
    pd.DataFrame(rows).to_parquet(folder / "cells.parquet", index=False, compression="zstd")
    barcodes = [str(c) for c in cell_ids]
    write_10x_h5(
        folder / "cell_feature_matrix.h5", X, barcodes, features, features, types, "Unknown"
    )
    write_10x_mtx(folder / "cell_feature_matrix", X, barcodes, features, features, types)
    return df


def merscope_transcripts(df: pd.DataFrame, out: Path) -> None:
    """detected_transcripts.csv from the Xenium molecules of MERSCOPE_WINDOW."""
    sub = df.loc[in_window(df, MERSCOPE_WINDOW)].reset_index(drop=True)
    ctrl = dict(zip([c for c, _ in CONTROLS["xenium"]], CONTROLS["merscope"], strict=True))
    gene = sub.feature_name.map(lambda g: ctrl.get(g, g))
    codebook = {g: i for i, g in enumerate(sorted(gene.unique()))}
    fov_size = 15.0  # µm; several FOVs in the small window
    fx = np.floor(sub.x_location / fov_size).astype(int)
    fy = np.floor(sub.y_location / fov_size).astype(int)
    fov_keys = sorted(set(zip(fy, fx, strict=True)))
    fov = np.array([fov_keys.index(k) for k in zip(fy, fx, strict=True)])
    zplane = np.clip(np.round((sub.z_location - df.z_location.min()) / MERSCOPE_Z_STEP_UM), 0, 6)
    cell = np.where(sub.cell_id < 0, "-1", [f"{10**37 + 7919 * int(c)}" for c in sub.cell_id])
    table = pd.DataFrame(
        {
            "barcode_id": gene.map(codebook).to_numpy(),
            "global_x": sub.x_location.round(4),
            "global_y": sub.y_location.round(4),
            "global_z": zplane,
            "x": ((sub.x_location - fx * fov_size) / MERSCOPE_PX_UM).round(2),
            "y": ((sub.y_location - fy * fov_size) / MERSCOPE_PX_UM).round(2),
            "fov": fov,
            "gene": gene.to_numpy(),
            "cell_id": cell,
        }
    ).sort_values(["fov", "barcode_id"], kind="stable")
    # MERSCOPE writes a per-FOV running index as an unnamed first column
    table.index = table.groupby("fov").cumcount().to_numpy()
    folder = out / "merscope"
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "detected_transcripts.csv")


def merscope_cells(src: Path, out: Path) -> ad.AnnData:
    """cell_by_gene.csv + cell_metadata.csv from a cut of the real MERFISH U2OS cells."""
    a = ad.read_h5ad(src / "merfish_u2os" / "batch1.h5ad")
    rng = np.random.default_rng(SEED)
    cells = np.sort(rng.choice(a.n_obs, 30, replace=False))
    a = a[cells]
    totals = np.asarray(a.X.sum(axis=0)).ravel()
    is_blank = a.var_names.str.startswith("Blank-")
    genes = np.flatnonzero(~is_blank)[np.argsort(-totals[~is_blank], kind="stable")[:120]]
    blanks = np.flatnonzero(is_blank)[:12]
    keep = np.sort(np.concatenate([genes, blanks]))
    a = a[:, keep].copy()
    ids = [f"{10**37 + 104729 * (int(i) + 1)}" for i in cells]
    counts = pd.DataFrame(
        a.X.toarray().astype(np.int64), index=pd.Index(ids, name="cell"), columns=a.var_names
    )
    folder = out / "merscope"
    folder.mkdir(parents=True, exist_ok=True)
    counts.to_csv(folder / "cell_by_gene.csv")
    xy = a.obsm["spatial"]
    fov = (np.floor(xy[:, 0] / 200.0) * 100 + np.floor(xy[:, 1] / 200.0)).astype(int)
    meta = pd.DataFrame(
        {
            "fov": fov - fov.min(),
            "volume": np.nan,
            "center_x": xy[:, 0],
            "center_y": xy[:, 1],
            "min_x": xy[:, 0] - 10.0,
            "max_x": xy[:, 0] + 10.0,
            "min_y": xy[:, 1] - 10.0,
            "max_y": xy[:, 1] + 10.0,
        },
        index=ids,
    )
    meta.to_csv(folder / "cell_metadata.csv")
    return a


def cosmx(df: pd.DataFrame, out: Path) -> None:
    """*_tx_file.csv.gz from the Xenium molecules of WINDOW (pixels of 0.12028 µm)."""
    ctrl = dict(zip([c for c, _ in CONTROLS["xenium"]], CONTROLS["cosmx"], strict=True))
    fov_size = 30.0
    fx = np.floor((df.x_location - WINDOW[0]) / fov_size).astype(int)
    fy = np.floor((df.y_location - WINDOW[1]) / fov_size).astype(int)
    fov = 1 + fy * 2 + fx
    # cells are numbered per FOV (1..n); 0 = not in a cell
    cell = np.zeros(len(df), dtype=np.int64)
    for f in np.unique(fov):
        m = (fov == f) & (df.cell_id.to_numpy() >= 0)
        ranks = {c: i + 1 for i, c in enumerate(np.sort(df.cell_id[m].unique()))}
        cell[m] = df.cell_id[m].map(ranks).to_numpy()
    comp = np.where(cell == 0, "None", np.where(df.overlaps_nucleus == 1, "Nuclear", "Cytoplasm"))
    zplane = np.round((df.z_location - df.z_location.min()) / COSMX_Z_STEP_UM).astype(int)
    table = pd.DataFrame(
        {
            "fov": fov,
            "cell_ID": cell,
            "x_global_px": (df.x_location / COSMX_PX_UM).round(3),
            "y_global_px": (df.y_location / COSMX_PX_UM).round(3),
            "x_local_px": ((df.x_location - WINDOW[0] - fx * fov_size) / COSMX_PX_UM).round(3),
            "y_local_px": ((df.y_location - WINDOW[1] - fy * fov_size) / COSMX_PX_UM).round(3),
            "z": zplane,
            "target": df.feature_name.map(lambda g: ctrl.get(g, g)),
            "CellComp": comp,
        }
    ).sort_values(["fov", "cell_ID"], kind="stable")
    folder = out / "cosmx"
    folder.mkdir(parents=True, exist_ok=True)
    gz_bytes(
        folder / "xenium_breast_crop_tx_file.csv.gz",
        table.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode(),
    )


def stereoseq(df: pd.DataFrame, out: Path) -> None:
    """A GEM file: gene molecules of WINDOW per DNB (0.5 µm), MIDCount summed per DNB/gene."""
    genes = df.loc[~df.feature_name.isin([c for c, _ in CONTROLS["xenium"]])]
    gem = (
        pd.DataFrame(
            {
                "geneID": genes.feature_name.to_numpy(),
                "x": np.floor(genes.x_location / 0.5).astype(np.int64).to_numpy(),
                "y": np.floor(genes.y_location / 0.5).astype(np.int64).to_numpy(),
            }
        )
        .groupby(["geneID", "x", "y"], as_index=False)
        .size()
        .rename(columns={"size": "MIDCount"})
    )
    gem["ExonCount"] = gem["MIDCount"]
    header = (
        "#FileFormat=GEMv0.1\n#SortedBy=None\n#BinSize=1\n#STOmicsChip=XENIUMCROP\n"
        "#OffsetX=0\n#OffsetY=0\n"
    )
    folder = out / "stereoseq"
    folder.mkdir(parents=True, exist_ok=True)
    gz_bytes(
        folder / "xenium_breast_crop.gem.gz",
        (header + gem.to_csv(sep="\t", index=False)).encode(),
    )


def slideseq(df: pd.DataFrame, out: Path) -> None:
    """DGE (genes x beads) + bead locations: molecules of WINDOW assigned to the nearest bead."""
    rng = np.random.default_rng(SEED + 1)
    x0, y0, w = WINDOW
    # a 10 µm bead grid one bead wider than the window: the outer ring gets no molecules, so
    # (as in real pucks) the locations file lists beads that the count matrix does not
    grid = np.arange(-5.0, w + 10.0, 10.0)
    centres = np.array([(x0 + gx, y0 + gy) for gy in grid for gx in grid])
    centres += rng.uniform(-2.0, 2.0, centres.shape)
    barcodes = ["".join(rng.choice(list("ACGT"), 14)) for _ in range(len(centres))]
    genes_df = df.loc[~df.feature_name.isin([c for c, _ in CONTROLS["xenium"]])]
    inside = (centres > [x0, y0]) & (centres < [x0 + w, y0 + w])
    inner = np.flatnonzero(inside.all(axis=1))
    _, nearest = cKDTree(centres[inner]).query(genes_df[["x_location", "y_location"]].to_numpy())
    bead = inner[nearest]
    genes = sorted(genes_df.feature_name.unique())
    gidx = {g: i for i, g in enumerate(genes)}
    M = count_matrix(genes_df.feature_name.map(gidx).to_numpy(), bead, len(genes), len(centres))
    used = np.flatnonzero(np.asarray(M.sum(axis=0)).ravel() > 0)
    dge = pd.DataFrame(
        M[:, used].toarray(),
        index=pd.Index(genes, name="GENE"),
        columns=[barcodes[i] for i in used],
    )
    folder = out / "slideseq"
    folder.mkdir(parents=True, exist_ok=True)
    gz_bytes(
        folder / "xenium_breast_crop.digital_expression.txt.gz",
        dge.to_csv(sep="\t").encode(),
    )
    locs = pd.DataFrame(
        {
            "barcodes": barcodes,
            "xcoord": (centres[:, 0] / SLIDESEQ_PX_UM).round(2),
            "ycoord": (centres[:, 1] / SLIDESEQ_PX_UM).round(2),
        }
    )
    locs.to_csv(folder / "xenium_breast_crop_BeadLocationsForR.csv", index=False)


def visium_hd(df: pd.DataFrame, out: Path) -> None:
    """Visium HD binned outputs (8 and 16 µm) from the gene molecules of WINDOW."""
    genes_df = df.loc[~df.feature_name.isin([c for c, _ in CONTROLS["xenium"]])]
    genes = sorted(genes_df.feature_name.unique())
    gidx = {g: i for i, g in enumerate(genes)}
    mpp = HD_MICRONS_PER_PIXEL
    for size in (8, 16):
        row = np.floor(genes_df.y_location / size).astype(np.int64).to_numpy()
        col = np.floor(genes_df.x_location / size).astype(np.int64).to_numpy()
        keys, spot = np.unique(np.stack([row, col], 1), axis=0, return_inverse=True)
        X = count_matrix(
            spot.ravel(), genes_df.feature_name.map(gidx).to_numpy(), len(keys), len(genes)
        )
        barcodes = [f"s_{size:03d}um_{r:05d}_{c:05d}-1" for r, c in keys]
        folder = out / "visium_hd" / "outs" / "binned_outputs" / f"square_{size:03d}um"
        (folder / "spatial").mkdir(parents=True, exist_ok=True)
        write_10x_h5(
            folder / "filtered_feature_bc_matrix.h5",
            X,
            barcodes,
            [f"XENIUM_{g}" for g in genes],
            genes,
            ["Gene Expression"] * len(genes),
            "GRCh38",
        )
        pos = pd.DataFrame(
            {
                "barcode": barcodes,
                "in_tissue": np.ones(len(keys), dtype=np.int32),
                "array_row": keys[:, 0].astype(np.int32),
                "array_col": keys[:, 1].astype(np.int32),
                "pxl_row_in_fullres": (keys[:, 0] + 0.5) * size / mpp,
                "pxl_col_in_fullres": (keys[:, 1] + 0.5) * size / mpp,
            }
        )
        pos.to_parquet(folder / "spatial" / "tissue_positions.parquet", index=False)
        sf = {
            "spot_diameter_fullres": size / mpp,
            "bin_size_um": float(size),
            "microns_per_pixel": mpp,
            "regist_target_img_scalef": 0.25,
            "tissue_lowres_scalef": 0.02,
            "fiducial_diameter_fullres": 1000.0,
            "tissue_hires_scalef": 0.2,
        }
        (folder / "spatial" / "scalefactors_json.json").write_text(json.dumps(sf, indent=2))


def generic(df: pd.DataFrame, out: Path) -> None:
    """matrix.csv (20 µm bins x genes) + coordinates.csv (bin centres, µm)."""
    genes_df = df.loc[~df.feature_name.isin([c for c, _ in CONTROLS["xenium"]])]
    bx = np.floor((genes_df.x_location - WINDOW[0]) / 20).astype(int).to_numpy()
    by = np.floor((genes_df.y_location - WINDOW[1]) / 20).astype(int).to_numpy()
    spot = pd.Series([f"spot_{x}_{y}" for x, y in zip(bx, by, strict=True)])
    mat = pd.crosstab(spot.to_numpy(), genes_df.feature_name.to_numpy())
    mat.index.name = "spot_id"
    folder = out / "generic"
    folder.mkdir(parents=True, exist_ok=True)
    mat.to_csv(folder / "matrix.csv")
    parts = mat.index.str.split("_")
    coords = pd.DataFrame(
        {
            "spot_id": mat.index,
            "x": [WINDOW[0] + 20 * int(p[1]) + 10 for p in parts],
            "y": [WINDOW[1] + 20 * int(p[2]) + 10 for p in parts],
        }
    )
    coords.to_csv(folder / "coordinates.csv", index=False)


def visium(src: Path, out: Path) -> None:
    """A Space Ranger outs/ folder and a small h5ad from the real 49-spot Visium subset."""
    v = ad.read_h5ad(src / "visium_mouse_brain_49" / "visium_subset.h5ad")
    lib = next(iter(v.uns["spatial"]))
    X = sp.csr_matrix(v.X, dtype=np.float64)
    # values are log1p(normalised counts): undo it; the smallest count of each spot is 1
    counts = X.copy()
    counts.data = np.expm1(counts.data)
    for i in range(counts.shape[0]):
        lo, hi = counts.indptr[i], counts.indptr[i + 1]
        counts.data[lo:hi] /= counts.data[lo:hi].min()
    assert np.abs(counts.data - np.round(counts.data)).max() < 0.02
    counts.data = np.round(counts.data)
    outs = out / "visium" / "outs"
    (outs / "spatial").mkdir(parents=True, exist_ok=True)
    write_10x_h5(
        outs / "filtered_feature_bc_matrix.h5",
        counts,
        list(v.obs_names),
        list(v.var["gene_ids"]),
        list(v.var_names),
        ["Gene Expression"] * v.n_vars,
        "mm10",
    )
    sfs = v.uns["spatial"][lib]["scalefactors"]
    # spot_diameter_fullres is the pixel size of a theoretical 65 µm spot (10x's definition)
    mpp = 65.0 / sfs["spot_diameter_fullres"]
    xy = np.asarray(v.obsm["spatial"], dtype=np.int64)  # (pxl_col, pxl_row)
    # hexagonal array: 100 µm between neighbours, columns step 50 µm, rows 100·√3/2 µm
    col = (xy[:, 0] - xy[:, 0].min()) * mpp / 50.0
    row = (xy[:, 1] - xy[:, 1].min()) * mpp / (50.0 * np.sqrt(3.0))
    assert np.abs(col - np.round(col)).max() < 0.1 and np.abs(row - np.round(row)).max() < 0.1
    pos = pd.DataFrame(
        {
            "barcode": v.obs_names,
            "in_tissue": v.obs["in_tissue"].astype(int).to_numpy(),
            "array_row": np.round(row).astype(int),
            "array_col": np.round(col).astype(int),
            "pxl_row_in_fullres": xy[:, 1],
            "pxl_col_in_fullres": xy[:, 0],
        }
    )
    pos.to_csv(outs / "spatial" / "tissue_positions.csv", index=False)
    (outs / "spatial" / "scalefactors_json.json").write_text(
        json.dumps({k: float(val) for k, val in sfs.items()}, indent=2)
    )
    for res, img in v.uns["spatial"][lib]["images"].items():
        arr = np.clip(np.asarray(img) * (255 if np.asarray(img).max() <= 1 else 1), 0, 255)
        Image.fromarray(arr.astype(np.uint8)).save(outs / "spatial" / f"tissue_{res}_image.png")

    # h5ad in scanpy's Visium layout: first 300 genes, log-normalised values as in the source
    small = v[:, :300].copy()
    keep_uns = {"spatial": small.uns["spatial"]}
    small.uns = keep_uns
    for k in list(small.obsm):
        if k != "spatial":
            del small.obsm[k]
    for k in list(small.obsp):
        del small.obsp[k]
    small.uns["spatial"][lib]["images"] = {
        "lowres": np.asarray(small.uns["spatial"][lib]["images"]["lowres"], dtype=np.float32)
    }
    folder = out / "h5ad"
    folder.mkdir(parents=True, exist_ok=True)
    small.write_h5ad(folder / "visium_mouse_brain.h5ad", compression="gzip")


def merfish_h5ad(src: Path, out: Path) -> None:
    """Cut of the real MERFISH h5ad: 25 cells x (80 genes + 10 Blank-* codewords)."""
    a = ad.read_h5ad(src / "merfish_u2os" / "batch2.h5ad")
    rng = np.random.default_rng(SEED + 2)
    cells = np.sort(rng.choice(a.n_obs, 25, replace=False))
    is_blank = a.var_names.str.startswith("Blank-")
    totals = np.asarray(a.X[cells].sum(axis=0)).ravel()
    genes = np.flatnonzero(~is_blank)[np.argsort(-totals[~is_blank], kind="stable")[:80]]
    keep = np.sort(np.concatenate([genes, np.flatnonzero(is_blank)[:10]]))
    small = a[cells][:, keep].copy()
    folder = out / "h5ad"
    folder.mkdir(parents=True, exist_ok=True)
    small.write_h5ad(folder / "merfish_u2os.h5ad", compression="gzip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    for name in (
        "xenium",
        "merscope",
        "cosmx",
        "stereoseq",
        "slideseq",
        "visium",
        "visium_hd",
        "h5ad",
        "generic",
    ):
        shutil.rmtree(args.out / name, ignore_errors=True)
    df = xenium(args.source, args.out)
    merscope_transcripts(df, args.out)
    merscope_cells(args.source, args.out)
    cosmx(df, args.out)
    stereoseq(df, args.out)
    slideseq(df, args.out)
    visium_hd(df, args.out)
    generic(df, args.out)
    visium(args.source, args.out)
    merfish_h5ad(args.source, args.out)
    print(f"fixtures written under {args.out}")


if __name__ == "__main__":
    main()
