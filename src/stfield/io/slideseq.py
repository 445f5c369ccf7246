"""Slide-seq / Slide-seqV2 reader: digital expression matrix + bead locations.

The digital expression matrix (``*.digital_expression.txt.gz``, Drop-seq tools) is tab-separated,
genes x beads, with ``GENE`` as the first header field. Bead locations are a CSV with
``barcode(s), xcoord, ycoord`` in pixels of the puck image (0.65 µm by default), or Drop-seq
tools' headerless ``*matched_bead_locations.txt`` (barcode, x, y).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import input_error
from ._common import (
    PathLike,
    align_to,
    as_path,
    build_adata,
    find_file,
    read_csv,
    read_dense_text_matrix,
    read_head,
    sniff_sep,
    split_header,
    unit_scale,
)

#: Default pixel size of Slide-seq bead coordinates, µm per pixel.
SLIDESEQ_PIXEL_SIZE_UM = 0.65
DGE_PATTERNS = ("*digital_expression.txt.gz", "*digital_expression.txt")
LOCATION_PATTERNS = (
    "*BeadLocations*.csv",
    "*bead_locations*.csv",
    "*matched_bead_locations.txt.gz",
    "*matched_bead_locations.txt",
    "*bead_locations*.txt",
)


def _read_locations(path: Path) -> tuple[pd.Index, np.ndarray]:
    where = str(path)
    _, lines = read_head(path, 2, comment=None)
    if not lines:
        raise input_error("the bead locations file is empty", where, "check the file")
    sep = sniff_sep(lines[0])
    first = split_header(lines[0], sep)
    try:
        [float(v) for v in first[1:3]]
        has_header = False
    except ValueError:
        has_header = True
    if has_header:
        table = read_csv(path, sep=sep, dtype=str)
        cols = list(table.columns)
        lower = {c.lower().strip(): c for c in cols}
        bc = next((lower[k] for k in ("barcodes", "barcode", "bead", "beads") if k in lower), None)
        xc = next((lower[k] for k in ("xcoord", "x", "x_coord") if k in lower), None)
        yc = next((lower[k] for k in ("ycoord", "y", "y_coord") if k in lower), None)
        if bc is None or xc is None or yc is None:
            raise input_error(
                f"expected columns barcode(s), xcoord, ycoord; columns found: {cols}",
                where,
                "pass Slide-seq's BeadLocations CSV (barcodes,xcoord,ycoord)",
            )
    else:
        table = read_csv(path, sep=sep, header=None, dtype=str)
        if table.shape[1] < 3:
            raise input_error(
                f"expected 3 columns (barcode, x, y), found {table.shape[1]}", where, None
            )
        bc, xc, yc = table.columns[:3]
    try:
        xy = table[[xc, yc]].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise input_error(
            f"non-numeric bead coordinates ({exc})", where, "xcoord/ycoord must be numbers"
        ) from None
    return pd.Index(table[bc].astype(str).str.strip(), dtype=object), xy


def read_slideseq(
    path: PathLike,
    locations: PathLike | None = None,
    *,
    pixel_size_um: float = SLIDESEQ_PIXEL_SIZE_UM,
    keep_controls: bool = False,
) -> AnnData:
    """Read Slide-seq(V2) counts and bead positions.

    Parameters
    ----------
    path
        The ``*.digital_expression.txt(.gz)`` file, or a folder holding it and the bead
        locations file (``*BeadLocations*.csv`` or ``*matched_bead_locations.txt(.gz)``).
    locations
        Bead locations file, when not found next to the matrix.
    pixel_size_um
        µm per pixel of the bead coordinates (Slide-seqV2 pucks: 0.65).
    keep_controls
        Keep features matching the control-probe pattern.

    Returns
    -------
    AnnData
        Beads x genes (the matrix is transposed), CSR float32 counts, ``obsm["spatial"]`` in µm.
        Beads of the locations file without counts are ignored; beads with counts but no
        location are an error.
    """
    p = as_path(path)
    if p.is_dir():
        dge = find_file(p, DGE_PATTERNS, "Slide-seq digital expression matrix")
        folder = p
    else:
        dge, folder = p, p.parent
    loc = (
        as_path(locations)
        if locations is not None
        else find_file(
            folder,
            LOCATION_PATTERNS,
            "bead locations file",
            "pass locations=<BeadLocations CSV>",
        )
    )
    scale, pix = unit_scale("px", pixel_size_um, str(dge))
    genes, beads, Xt = read_dense_text_matrix(dge, sep="\t")
    bead_ids, xy = _read_locations(loc)
    X = Xt.T.tocsr()  # genes x beads -> beads x genes
    idx = align_to(pd.Index(beads), bead_ids, f"{loc} vs {dge}", "bead locations")
    return build_adata(
        X,
        beads,
        genes,
        xy[idx] * scale,
        fmt="slideseq",
        source=dge,
        where=str(dge),
        pixel_size_um=pix,
        keep_controls=keep_controls,
        uns_extra={"locations": str(loc)},
    )
