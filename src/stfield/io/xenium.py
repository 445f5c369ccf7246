"""10x Xenium readers: cells (``cell_feature_matrix`` + ``cells``) and molecules (``transcripts``).

All Xenium coordinates are in µm. The cell-feature matrix holds control features (negative
control probes/codewords, blank/unassigned/deprecated codewords, genomic controls) beside genes;
only ``feature_type == "Gene Expression"`` is kept unless ``keep_controls=True``. In
``transcripts.parquet`` the unassigned cell id is ``-1`` (integer ids, Xenium 1.x) or
``"UNASSIGNED"`` (string ids); ``feature_name`` is bytes in old files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from anndata import AnnData

from .._errors import input_error
from ._common import (
    PathLike,
    align_to,
    as_path,
    build_adata,
    build_transcripts,
    describe_folder,
    find_file,
    is_parquet,
    not_found,
    read_csv,
    read_parquet,
    require_columns,
    table_columns,
    to_cell_ids,
    verbatim_text,
)
from ._tenx import read_10x_h5, read_10x_mtx

#: Xenium's own quality threshold (Phred-scaled qv >= 20).
XENIUM_MIN_QV = 20.0
CELLS_FILES = ("cells.parquet", "cells.csv.gz", "cells.csv")
TRANSCRIPT_FILES = ("transcripts.parquet", "transcripts.csv.gz", "transcripts.csv")
_UNASSIGNED = (-1, "-1", "UNASSIGNED")
_NUMERIC = ("x_location", "y_location", "z_location", "overlaps_nucleus")


def _matrix(folder: Path, keep_controls: bool) -> tuple[Any, pd.Index, pd.DataFrame, Path]:
    h5 = folder / "cell_feature_matrix.h5"
    if h5.is_file():
        return (*read_10x_h5(h5, gene_expression_only=not keep_controls), h5)
    mtx = folder / "cell_feature_matrix"
    if mtx.is_dir():
        return (*read_10x_mtx(mtx, gene_expression_only=not keep_controls), mtx)
    raise not_found(
        folder,
        "no Xenium cell-feature matrix (looked for cell_feature_matrix.h5 and "
        f"cell_feature_matrix/; the folder holds: {describe_folder(folder)})",
        "pass the Xenium output folder",
    )


def _read_cells(path: Path) -> pd.DataFrame:
    where = str(path)
    cols = table_columns(path)[0]
    require_columns(
        cols,
        ["cell_id", "x_centroid", "y_centroid"],
        where,
        "pass Xenium's cells.parquet / cells.csv.gz",
    )
    if is_parquet(path):
        table = read_parquet(path)
        cells = table.drop_columns(["cell_id"]).to_pandas(ignore_metadata=True)
        cells.insert(0, "cell_id", to_cell_ids(table.column("cell_id")))
    else:
        cells = read_csv(path, dtype={"cell_id": str})
        cells["cell_id"] = to_cell_ids(cells["cell_id"])
    return cells


def read_xenium(
    path: PathLike, *, cells_file: PathLike | None = None, keep_controls: bool = False
) -> AnnData:
    """Read Xenium cell-level output.

    Parameters
    ----------
    path
        The Xenium output folder (holding ``cell_feature_matrix.h5`` or ``cell_feature_matrix/``
        and ``cells.parquet`` or ``cells.csv.gz``), or the matrix file/folder or cells table in
        it.
    cells_file
        The cells table, when it is not next to the matrix.
    keep_controls
        Keep control features (all feature types) instead of genes only.

    Returns
    -------
    AnnData
        Cells x genes, CSR float32 counts, ``obsm["spatial"]`` = ``(x_centroid, y_centroid)``
        µm, the other cell columns (``transcript_counts``, ``cell_area``, ...) in ``obs``.
    """
    p = as_path(path)
    if p.is_file() and p.name in CELLS_FILES:  # the cells table: the matrix is next to it
        cells_file = cells_file if cells_file is not None else p
        p = p.parent
    if p.is_file() and p.name.endswith(".h5"):
        folder = p.parent
        X, cells_ids, var = read_10x_h5(p, gene_expression_only=not keep_controls)
        mpath = p
    elif p.is_dir() and p.name == "cell_feature_matrix" and (p / "barcodes.tsv.gz").exists():
        folder = p.parent
        X, cells_ids, var = read_10x_mtx(p, gene_expression_only=not keep_controls)
        mpath = p
    elif p.is_dir():
        folder = p
        X, cells_ids, var, mpath = _matrix(p, keep_controls)
    else:
        raise input_error(
            "expected a Xenium output folder or cell_feature_matrix.h5",
            str(p),
            "pass the Xenium output folder",
        )
    cpath = (
        as_path(cells_file)
        if cells_file is not None
        else find_file(folder, CELLS_FILES, "Xenium cells table")
    )
    cells = _read_cells(cpath)
    idx = align_to(
        cells_ids, pd.Index(cells["cell_id"].astype(object)), f"{cpath} vs {mpath}", "cells"
    )
    cells = cells.iloc[idx].reset_index(drop=True)
    xy = cells[["x_centroid", "y_centroid"]].to_numpy(dtype=np.float64)
    obs = cells.drop(columns=["cell_id", "x_centroid", "y_centroid"])
    return build_adata(
        X,
        cells_ids,
        var.index,
        xy,
        fmt="xenium_cells",
        source=folder,
        where=str(mpath),
        obs=obs,
        var=var.reset_index(drop=True),
        keep_controls=keep_controls,
    )


def transcripts_file(folder: Path) -> Path:
    return find_file(folder, TRANSCRIPT_FILES, "Xenium transcripts file")


def read_xenium_transcripts(
    path: PathLike, *, min_qv: float = XENIUM_MIN_QV, keep_controls: bool = False
) -> pd.DataFrame:
    """Read Xenium ``transcripts.parquet`` or ``transcripts.csv.gz``.

    Parameters
    ----------
    path
        The file, or the Xenium output folder.
    min_qv
        Drop molecules with ``qv < min_qv`` (Xenium's default threshold is 20; 0 keeps all).
    keep_controls
        Keep control probes/codewords (``NegControl*``, ``BLANK_*``, ``UnassignedCodeword*``...).

    Returns
    -------
    pandas.DataFrame
        ``gene, x, y, z, cell_id, overlaps_nucleus`` (+ ``fov`` from ``fov_name`` when present),
        µm; ``cell_id`` is NA for unassigned molecules.
    """
    p = as_path(path)
    if p.is_dir():
        p = transcripts_file(p)
    where = str(p)
    cols = table_columns(p)[0]
    require_columns(
        cols,
        ["feature_name", "x_location", "y_location"],
        where,
        "pass Xenium's transcripts.parquet (or use read_transcript_table with columns=)",
    )
    optional = ["z_location", "cell_id", "overlaps_nucleus", "qv", "fov_name", "is_gene"]
    wanted = ["feature_name", "x_location", "y_location"] + [c for c in optional if c in cols]
    use_qv = "qv" in cols and min_qv is not None and min_qv > 0
    if is_parquet(p):
        table = read_parquet(
            p,
            wanted,
            filters=[("qv", ">=", float(min_qv))] if use_qv else None,
            read_dictionary=["feature_name"] + (["fov_name"] if "fov_name" in cols else []),
        )
        if "is_gene" in cols and not keep_controls:
            table = table.filter(pc.fill_null(table.column("is_gene"), True))
        col = table.column
        gene = col("feature_name").to_pandas()
        cell = to_cell_ids(col("cell_id"), _UNASSIGNED) if "cell_id" in cols else None
        values = {n: col(n).to_numpy() for n in _NUMERIC if n in cols}
        fov = col("fov_name").to_pandas().array if "fov_name" in cols else None
    else:
        dtype: dict[str, Any] = {
            "feature_name": "category",
            "x_location": np.float64,
            "y_location": np.float64,
            "z_location": np.float64,
            "cell_id": str,
            "overlaps_nucleus": np.float64,
            "qv": np.float64,
            "fov_name": "category",
            "is_gene": str,
        }
        df = read_csv(
            p,
            usecols=wanted,
            dtype={c: dtype[c] for c in wanted},
            **verbatim_text(wanted, ["feature_name"]),
        )
        keep = np.ones(len(df), dtype=bool)
        if use_qv:
            keep &= df["qv"].to_numpy() >= float(min_qv)
        if "is_gene" in df and not keep_controls:
            keep &= df["is_gene"].str.lower().ne("false").to_numpy()
        if not keep.all():
            df = df.loc[keep].reset_index(drop=True)
        gene = df["feature_name"]
        cell = to_cell_ids(df["cell_id"], _UNASSIGNED) if "cell_id" in df else None
        values = {n: df[n].to_numpy() for n in _NUMERIC if n in df}
        fov = df["fov_name"].array if "fov_name" in df else None
    nucleus = values.get("overlaps_nucleus")
    return build_transcripts(
        gene=gene,
        x=values["x_location"],
        y=values["y_location"],
        z=values.get("z_location"),
        cell_id=cell,
        fov=fov,
        overlaps_nucleus=None if nucleus is None else np.nan_to_num(nucleus) > 0,
        fmt="xenium_transcripts",
        source=p,
        where=where,
        keep_controls=keep_controls,
        attrs_extra={"min_qv": float(min_qv) if use_qv else None},
    )
