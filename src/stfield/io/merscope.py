"""Vizgen MERSCOPE readers: cells (``cell_by_gene.csv`` + ``cell_metadata.csv``) and molecules
(``detected_transcripts.csv``).

Cell ids are 128-bit integers in recent MERSCOPE versions: they are always read as text.
``detected_transcripts.csv`` gives ``global_x, global_y`` in µm and ``global_z`` as the index of
the z plane; planes are 1.5 µm apart in MERSCOPE's standard 7-plane acquisition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import input_error
from ._common import (
    PathLike,
    align_to,
    as_path,
    build_adata,
    build_transcripts,
    find_file,
    read_csv,
    read_dense_text_matrix,
    require_columns,
    table_columns,
    to_cell_ids,
    verbatim_text,
)

#: Distance between MERSCOPE z planes (µm) in the standard acquisition.
MERSCOPE_Z_STEP_UM = 1.5
CELL_BY_GENE = ("cell_by_gene.csv", "*cell_by_gene*.csv")
CELL_METADATA = ("cell_metadata.csv", "*cell_metadata*.csv")
TRANSCRIPTS = ("detected_transcripts.csv", "*detected_transcripts*.csv")


def read_merscope(
    path: PathLike, *, cell_metadata: PathLike | None = None, keep_controls: bool = False
) -> AnnData:
    """Read MERSCOPE cell-level output.

    Parameters
    ----------
    path
        A MERSCOPE region folder holding ``cell_by_gene.csv`` and ``cell_metadata.csv``, or the
        path of ``cell_by_gene.csv``.
    cell_metadata
        The metadata file, when it is not next to the matrix.
    keep_controls
        Keep the ``Blank-*`` codeword columns.

    Returns
    -------
    AnnData
        Cells x genes, CSR float32 counts, ``obsm["spatial"]`` = ``(center_x, center_y)`` µm,
        the other metadata columns (``fov``, ``volume``, ``min_x``, ...) in ``obs``.
    """
    p = as_path(path)
    if p.is_dir():
        matrix = find_file(p, CELL_BY_GENE, "MERSCOPE cell_by_gene.csv")
        folder = p
    else:
        matrix, folder = p, p.parent
    meta_path = (
        as_path(cell_metadata)
        if cell_metadata is not None
        else find_file(folder, CELL_METADATA, "MERSCOPE cell_metadata.csv", "pass cell_metadata=")
    )
    cells, genes, X = read_dense_text_matrix(matrix)
    mwhere = str(meta_path)
    header, sep, _ = table_columns(meta_path)
    require_columns(header, ["center_x", "center_y"], mwhere, "pass MERSCOPE's cell_metadata.csv")
    id_col = header[0] or "Unnamed: 0"  # pandas' name for a blank header field
    meta = read_csv(meta_path, sep=sep, dtype={id_col: str})
    ids = pd.Index(meta.iloc[:, 0].astype(str), dtype=object)
    idx = align_to(cells, ids, f"{meta_path} vs {matrix}", "cell metadata")
    meta = meta.iloc[idx].reset_index(drop=True)
    try:
        xy = meta[["center_x", "center_y"]].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise input_error(f"non-numeric cell centres ({exc})", mwhere, None) from None
    obs = meta.drop(columns=[meta.columns[0], "center_x", "center_y"])
    return build_adata(
        X,
        cells,
        genes,
        xy,
        fmt="merscope_cells",
        source=matrix,
        where=str(matrix),
        obs=obs,
        keep_controls=keep_controls,
        uns_extra={"cell_metadata": str(meta_path)},
    )


def transcripts_file(folder: Path) -> Path:
    return find_file(folder, TRANSCRIPTS, "MERSCOPE detected_transcripts.csv")


def read_merscope_transcripts(
    path: PathLike, *, z_step_um: float = MERSCOPE_Z_STEP_UM, keep_controls: bool = False
) -> pd.DataFrame:
    """Read MERSCOPE ``detected_transcripts.csv``.

    Parameters
    ----------
    path
        The file, or the region folder holding it.
    z_step_um
        Distance between z planes; ``z = global_z * z_step_um``.
    keep_controls
        Keep ``Blank-*`` codewords.

    Returns
    -------
    pandas.DataFrame
        ``gene, x, y, z, cell_id, fov`` (``x, y = global_x, global_y`` µm; ``cell_id`` NA for
        ``-1`` or when the file has no ``cell_id`` column).
    """
    p = as_path(path)
    if p.is_dir():
        p = transcripts_file(p)
    where = str(p)
    header, sep, n_comments = table_columns(p)
    require_columns(
        header,
        ["gene", "global_x", "global_y"],
        where,
        "pass MERSCOPE's detected_transcripts.csv (or use read_transcript_table with columns=)",
    )
    wanted = ["gene", "global_x", "global_y", "global_z", "fov", "cell_id"]
    usecols = [c for c in wanted if c in header]
    dtype: dict[str, Any] = {
        "gene": "category",
        "global_x": np.float64,
        "global_y": np.float64,
        "global_z": np.float64,
        "fov": "Int64",
        "cell_id": str,
    }
    df = read_csv(
        p,
        sep=sep,
        skiprows=n_comments,
        usecols=usecols,
        dtype={c: dtype[c] for c in usecols},
        **verbatim_text(usecols, ["gene"]),
    )
    return build_transcripts(
        gene=df["gene"],
        x=df["global_x"],
        y=df["global_y"],
        z=df["global_z"] * float(z_step_um) if "global_z" in df else None,
        cell_id=to_cell_ids(df["cell_id"], unassigned=("-1",)) if "cell_id" in df else None,
        fov=df["fov"].array if "fov" in df else None,
        fmt="merscope_transcripts",
        source=p,
        where=where,
        keep_controls=keep_controls,
        attrs_extra={"z_step_um": float(z_step_um)},
    )
