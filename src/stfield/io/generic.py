"""Generic tables: a spots x genes matrix with coordinates, or a molecule (transcripts) table.

Column names are auto-detected from common spellings; anything else is mapped explicitly with
``columns={"gene": ..., "x": ..., "y": ..., "z": ..., "cell": ...}`` (CLI:
``--columns gene=COL,x=COL,y=COL``). Coordinates are µm unless ``spatial_unit``/``pixel_size_um``
say otherwise; a coordinate column named ``*_px`` is taken as pixels and needs ``pixel_size_um``.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    is_parquet,
    pick_column,
    read_csv,
    read_dense_text_matrix,
    read_parquet,
    read_parquet_matrix,
    table_columns,
    to_cell_ids,
    unit_scale,
    verbatim_text,
)

#: Spellings tried, in order, for each canonical transcript column.
TRANSCRIPT_ALIASES: dict[str, tuple[str, ...]] = {
    "gene": ("gene", "feature_name", "target", "geneID", "gene_name", "genes", "feature"),
    "x": ("x_location", "global_x", "x_um", "x_global_um", "x_global_px", "x", "xcoord", "x_coord"),
    "y": ("y_location", "global_y", "y_um", "y_global_um", "y_global_px", "y", "ycoord", "y_coord"),
    "z": ("z_location", "global_z", "z_um", "z"),
    "cell": ("cell_id", "cell", "cell_ID", "cellID", "CellID", "cell_index"),
}
#: Spellings of coordinate columns in matrix/coordinate tables.
MATRIX_X = ("x", "x_centroid", "center_x", "global_x", "x_location", "x_um", "xcoord", "x_coord")
MATRIX_Y = ("y", "y_centroid", "center_y", "global_y", "y_location", "y_um", "ycoord", "y_coord")
COLUMN_KEYS = ("gene", "x", "y", "z", "cell")
_KEY_ALIASES = {"cell_id": "cell", "genes": "gene", "feature": "gene", "target": "gene"}
_COLUMNS_FIX = (
    "map them with columns={'gene': COL, 'x': COL, 'y': COL[, 'z': COL, 'cell': COL]} "
    "(CLI: --columns gene=COL,x=COL,y=COL[,z=COL,cell=COL])"
)
_UNASSIGNED = (-1, "-1", "UNASSIGNED", "None", "none", "nan", "NaN")


def parse_column_map(text: str) -> dict[str, str]:
    """Parse ``"gene=COL,x=COL,y=COL[,z=COL,cell=COL]"`` (the CLI's ``--columns``) to a dict.

    Parameters
    ----------
    text
        Comma-separated ``key=column`` pairs; keys are ``gene, x, y, z, cell`` (``cell_id`` is
        accepted for ``cell``).

    Returns
    -------
    dict
        ``{"gene": ..., "x": ..., "y": ..., ...}``.
    """
    if not isinstance(text, str) or not text.strip():
        raise input_error(
            "empty column map", "--columns", "give e.g. --columns gene=target,x=px,y=py"
        )
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, col = item.partition("=")
        key, col = key.strip(), col.strip()
        key = _KEY_ALIASES.get(key, key)
        if not sep or not col:
            raise input_error(
                f"{item.strip()!r} is not of the form key=COLUMN",
                "--columns",
                "write e.g. --columns gene=target,x=px,y=py",
            )
        if key not in COLUMN_KEYS:
            raise input_error(
                f"unknown key {key!r} in {text!r}",
                "--columns",
                f"use the keys {', '.join(COLUMN_KEYS)}",
            )
        if key in out:
            raise input_error(f"key {key!r} given twice in {text!r}", "--columns", "give it once")
        out[key] = col
    missing = [k for k in ("gene", "x", "y") if k not in out]
    if missing:
        raise input_error(f"{text!r} lacks {missing}", "--columns", "gene, x and y are required")
    return out


def resolve_transcript_columns(
    found: list[str], columns: Mapping[str, str] | None, where: str
) -> dict[str, str]:
    """Map canonical keys to the file's columns (explicit map first, then aliases)."""
    given = {}
    for key, col in (columns or {}).items():
        key = _KEY_ALIASES.get(key, key)
        if key not in COLUMN_KEYS:
            raise input_error(
                f"unknown key {key!r} in columns=", where, f"use the keys {', '.join(COLUMN_KEYS)}"
            )
        given[key] = col
    bad = {k: c for k, c in given.items() if c not in found}
    if bad:
        raise input_error(
            f"column(s) {bad} not in the table; columns found: {found[:40]}",
            where,
            "fix the names in columns= (CLI: --columns)",
        )
    out = dict(given)
    for key in COLUMN_KEYS:
        if key not in out:
            col = pick_column(found, TRANSCRIPT_ALIASES[key])
            if col is not None and col not in out.values():
                out[key] = col
    missing = [k for k in ("gene", "x", "y") if k not in out]
    if missing:
        raise input_error(
            f"cannot find the {'/'.join(missing)} column(s); columns found: {found[:40]}",
            where,
            _COLUMNS_FIX,
        )
    return out


def read_transcript_table(
    path: PathLike,
    columns: Mapping[str, str] | None = None,
    *,
    spatial_unit: str | None = None,
    pixel_size_um: float | None = None,
    keep_controls: bool = False,
) -> pd.DataFrame:
    """Read any molecule table (CSV/TSV, gz ok, or parquet) into the transcripts contract.

    Parameters
    ----------
    path
        The table.
    columns
        Explicit column map ``{"gene", "x", "y"[, "z", "cell"]}``; missing keys are
        auto-detected (gene/feature_name/target/geneID, x/x_location/global_x/x_global_px, ...).
    spatial_unit
        Unit of x/y/z: ``"um"`` (default), ``"nm"``, ``"mm"`` or ``"px"``. A ``*_px`` column
        implies ``"px"``.
    pixel_size_um
        µm per pixel when coordinates are pixels.
    keep_controls
        Keep control probes / blank codewords.

    Returns
    -------
    pandas.DataFrame
        ``gene, x, y, z, cell_id`` (µm; ``z`` NaN and ``cell_id`` NA when absent).
    """
    p = as_path(path)
    where = str(p)
    if p.is_dir():
        raise input_error("expected a table file, got a folder", where, "pass the file path")
    found, sep, n_comments = table_columns(p)
    cmap = resolve_transcript_columns(found, columns, where)
    unit = spatial_unit
    if unit is None and pixel_size_um is None and cmap["x"].lower().endswith("_px"):
        unit = "px"
    scale, pix = unit_scale(unit, pixel_size_um, where)
    order = [cmap[k] for k in COLUMN_KEYS if k in cmap]
    if is_parquet(p):
        table = read_parquet(p, order, read_dictionary=[cmap["gene"]])
        frame = {k: table.column(cmap[k]) for k in cmap}
        gene = frame["gene"].to_pandas()
        try:
            num = {k: frame[k].to_numpy().astype(np.float64) for k in ("x", "y", "z") if k in frame}
        except (ValueError, TypeError) as exc:
            raise input_error(
                f"non-numeric coordinate column ({exc})", where, _COLUMNS_FIX
            ) from None
        cell = frame.get("cell")
    else:
        dtype: dict[str, Any] = {cmap["gene"]: "category"}
        dtype.update({cmap[k]: np.float64 for k in ("x", "y", "z") if k in cmap})
        if "cell" in cmap:
            dtype[cmap["cell"]] = str
        df = read_csv(
            p,
            sep=sep,
            skiprows=n_comments,
            usecols=order,
            dtype=dtype,
            **verbatim_text(order, [cmap["gene"]]),
        )
        gene = df[cmap["gene"]]
        num = {k: df[cmap[k]].to_numpy() for k in ("x", "y", "z") if k in cmap}
        cell = df[cmap["cell"]] if "cell" in cmap else None
    return build_transcripts(
        gene=gene,
        x=num["x"] * scale,
        y=num["y"] * scale,
        z=num["z"] * scale if "z" in num else None,
        cell_id=None if cell is None else to_cell_ids(cell, _UNASSIGNED),
        fmt="generic_transcripts",
        source=p,
        where=where,
        pixel_size_um=pix,
        keep_controls=keep_controls,
        attrs_extra={"columns": dict(cmap)},
    )


def _coords_from_table(
    path: Path, x_column: str | None, y_column: str | None
) -> tuple[pd.Index | None, np.ndarray]:
    where = str(path)
    found, sep, n_comments = table_columns(path)
    xc = x_column or pick_column(found, MATRIX_X)
    yc = y_column or pick_column(found, MATRIX_Y)
    if xc is None or yc is None or xc not in found or yc not in found:
        raise input_error(
            f"cannot find the x/y columns; columns found: {found[:40]}",
            where,
            "name them x and y, or pass x_column=/y_column=",
        )
    id_col = found[0] if found[0] not in (xc, yc) else None
    cols = [c for c in (id_col, xc, yc) if c is not None]
    if is_parquet(path):
        df = read_parquet(path, cols).to_pandas(ignore_metadata=True)
    else:
        positions = sorted({found.index(c) for c in cols})
        df = read_csv(path, sep=sep, skiprows=n_comments, usecols=positions, dtype=str)
        df.columns = [found[i] for i in positions]
    ids = None if id_col is None else pd.Index(df[id_col].astype(str), dtype=object)
    try:
        xy = df[[xc, yc]].to_numpy().astype(np.float64)
    except (ValueError, TypeError) as exc:
        raise input_error(
            f"non-numeric coordinates ({exc})", where, "x/y columns must hold numbers"
        ) from None
    return ids, xy


def read_matrix_table(
    path: PathLike,
    coordinates: PathLike | None = None,
    *,
    x_column: str | None = None,
    y_column: str | None = None,
    spatial_unit: str | None = None,
    pixel_size_um: float | None = None,
    keep_controls: bool = False,
) -> AnnData:
    """Read a spots x genes table (CSV/TSV, gz ok, or parquet) and its coordinates.

    Parameters
    ----------
    path
        The matrix: first column the spot id, then one numeric column per gene. It may also
        hold the coordinates as ``x``/``y`` columns (or ``x_column``/``y_column``).
    coordinates
        A table ``id, x, y`` (CSV/TSV/parquet). Its ids are matched to the matrix's; without an
        id column its rows are taken in the matrix's order (same number of rows required).
    x_column, y_column
        Names of the coordinate columns, when not ``x``/``y``/``x_centroid``/``center_x``/...
    spatial_unit
        Unit of the coordinates: ``"um"`` (default), ``"nm"``, ``"mm"`` or ``"px"``.
    pixel_size_um
        µm per pixel when the coordinates are pixels.
    keep_controls
        Keep control-probe columns.

    Returns
    -------
    AnnData
        Spots x genes, CSR float32, ``obsm["spatial"]`` in µm.
    """
    p = as_path(path)
    where = str(p)
    if p.is_dir():
        raise input_error("expected a table file, got a folder", where, "pass the file path")
    scale, pix = unit_scale(spatial_unit, pixel_size_um, where)
    found = table_columns(p)[0]
    drop: list[str] = []
    if coordinates is None:
        xc = x_column or pick_column(found[1:], MATRIX_X)
        yc = y_column or pick_column(found[1:], MATRIX_Y)
        if xc is None or yc is None:
            raise input_error(
                "no coordinates: the matrix has no x/y columns and no coordinates file was given",
                where,
                "pass coordinates=<table with id, x, y> (CLI: --coordinates)",
            )
        drop = [xc, yc]
    reader = read_parquet_matrix if is_parquet(p) else read_dense_text_matrix
    ids, genes, X = reader(p, drop=drop)
    if not genes:
        raise input_error(
            f"no gene columns (columns found: {found[:20]})",
            where,
            "pass the spots x genes matrix (id column, then one column per gene)",
        )
    if coordinates is None:
        coord_ids, xy = _coords_from_table(p, drop[0], drop[1])
        source_xy = where
    else:
        cpath = as_path(coordinates)
        coord_ids, xy = _coords_from_table(cpath, x_column, y_column)
        source_xy = str(cpath)
    if coord_ids is not None:
        xy = xy[align_to(ids, coord_ids, f"{source_xy} vs {where}", "coordinates")]
    return build_adata(
        X,
        ids,
        genes,
        xy * scale,
        fmt="generic_matrix",
        source=p,
        where=where,
        pixel_size_um=pix,
        keep_controls=keep_controls,
        uns_extra={"coordinates": source_xy},
    )
