"""NanoString CosMx SMI molecule reader (``*_tx_file.csv.gz``).

Columns: ``fov, cell_ID, x_global_px, y_global_px, x_local_px, y_local_px, z, target, CellComp``.
Global coordinates are pixels (0.12028 µm by default, the CosMx camera's pixel size). ``cell_ID``
is unique only within a field of view and 0 means unassigned; ``z`` is a z-plane index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import input_error
from ._common import (
    PathLike,
    as_path,
    build_transcripts,
    find_file,
    read_csv,
    require_columns,
    table_columns,
    unit_scale,
    verbatim_text,
)

#: µm per pixel of CosMx global coordinates.
COSMX_PIXEL_SIZE_UM = 0.12028
TX_FILES = ("*_tx_file.csv.gz", "*_tx_file.csv", "*tx_file*.csv*")


def transcripts_file(folder: Path) -> Path:
    return find_file(folder, TX_FILES, "CosMx transcripts file (*_tx_file.csv.gz)")


def read_cosmx_transcripts(
    path: PathLike,
    *,
    pixel_size_um: float = COSMX_PIXEL_SIZE_UM,
    z_step_um: float | None = None,
    keep_controls: bool = False,
) -> pd.DataFrame:
    """Read a CosMx ``*_tx_file.csv(.gz)``.

    Parameters
    ----------
    path
        The file, or the flat-file export folder holding it.
    pixel_size_um
        µm per pixel of ``x_global_px``/``y_global_px``.
    z_step_um
        Distance between z planes in µm; when ``None`` (default) ``z`` is NaN because the file
        only gives the plane index.
    keep_controls
        Keep negative probes (``NegPrb*``) and system controls.

    Returns
    -------
    pandas.DataFrame
        ``gene, x, y, z, cell_id, fov, overlaps_nucleus`` in µm; ``cell_id = f"{fov}_{cell_ID}"``
        (NA where ``cell_ID == 0``); ``overlaps_nucleus = CellComp == "Nuclear"``.
    """
    p = as_path(path)
    if p.is_dir():
        p = transcripts_file(p)
    where = str(p)
    header, sep, n_comments = table_columns(p)
    require_columns(
        header,
        ["fov", "cell_ID", "x_global_px", "y_global_px", "target"],
        where,
        "pass CosMx's *_tx_file.csv.gz (or use read_transcript_table with columns=)",
    )
    scale, pix = unit_scale("px", pixel_size_um, where)
    usecols = ["fov", "cell_ID", "x_global_px", "y_global_px", "target"]
    usecols += [c for c in ("z", "CellComp") if c in header]
    dtype: dict[str, Any] = {
        "fov": np.int64,
        "cell_ID": np.int64,
        "x_global_px": np.float64,
        "y_global_px": np.float64,
        "z": np.float64,
        "target": "category",
        "CellComp": "category",
    }
    df = read_csv(
        p,
        sep=sep,
        skiprows=n_comments,
        usecols=usecols,
        dtype={c: dtype[c] for c in usecols},
        **verbatim_text(usecols, ["target"]),
    )
    fov = df["fov"].to_numpy()
    cell = df["cell_ID"].to_numpy()
    joined = pc.binary_join_element_wise(
        pa.array(fov).cast(pa.string()), pa.array(cell).cast(pa.string()), "_"
    )
    cell_id = pd.arrays.ArrowStringArray(
        pc.if_else(pa.array(cell == 0), pa.scalar(None, pa.string()), joined)
    )
    if z_step_um is not None:
        if not (np.isfinite(z_step_um) and z_step_um > 0):
            raise input_error(f"z_step_um must be > 0, got {z_step_um}", where, "e.g. 0.8")
        z = df["z"].to_numpy() * float(z_step_um) if "z" in df else None
    else:
        z = None
    nucleus = (
        (df["CellComp"].astype(str).str.lower() == "nuclear").to_numpy()
        if "CellComp" in df
        else None
    )
    return build_transcripts(
        gene=df["target"],
        x=df["x_global_px"].to_numpy() * scale,
        y=df["y_global_px"].to_numpy() * scale,
        z=z,
        cell_id=cell_id,
        fov=fov,
        overlaps_nucleus=nucleus,
        fmt="cosmx_transcripts",
        source=p,
        where=where,
        pixel_size_um=pix,
        keep_controls=keep_controls,
        attrs_extra={"z_step_um": None if z_step_um is None else float(z_step_um)},
    )
