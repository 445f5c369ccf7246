"""Stereo-seq (STOmics) GEM reader: molecules per DNB, binned into square spots.

A GEM file is tab-separated, may start with ``#key=value`` comment lines, and has the columns
``geneID, x, y, MIDCount`` (``MIDCounts``/``UMICount`` in some versions; ``ExonCount`` and others
are ignored). ``x, y`` are DNB positions, 500 nm apart. Bins of ``bin_size`` x ``bin_size`` DNBs
("bin50" = 25 µm) become spots at the mean DNB position of the bin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._errors import input_error
from ._common import (
    PathLike,
    as_path,
    build_adata,
    find_file,
    iter_csv,
    pick_column,
    require_columns,
    table_columns,
)

#: Distance between neighbouring DNBs on a Stereo-seq chip, in µm.
DNB_PITCH_UM = 0.5
#: Accepted names of the count column.
COUNT_ALIASES = ("MIDCount", "MIDCounts", "UMICount", "UMICounts", "MIDcount")


def read_stereoseq_gem(
    path: PathLike,
    *,
    bin_size: int = 50,
    dnb_pitch_um: float = DNB_PITCH_UM,
    chunksize: int = 2_000_000,
) -> AnnData:
    """Read a Stereo-seq GEM file (``.gem``, ``.gem.gz``, ``.txt``, ``.txt.gz``) into bins.

    Parameters
    ----------
    path
        The GEM file, or a folder holding exactly one ``*.gem(.gz)``.
    bin_size
        Bin edge in DNBs (50 = "bin50", 25 µm with the default pitch).
    dnb_pitch_um
        Distance between DNB centres in µm.
    chunksize
        Rows read at a time; memory stays bounded by one chunk plus the binned counts.

    Returns
    -------
    AnnData
        Bins x genes, CSR float32 summed counts; ``obs`` has integer ``bin_x, bin_y``;
        ``obsm["spatial"]`` bin centres in µm; ``uns["stfield"]`` records ``bin_size`` and
        ``pixel_size_um`` (the DNB pitch).
    """
    p = as_path(path)
    where = str(p)
    if p.is_dir():
        p = find_file(p, ("*.gem.gz", "*.gem"), "Stereo-seq GEM file")
        where = str(p)
    if not (isinstance(bin_size, int | np.integer) and bin_size >= 1):
        raise input_error(
            f"bin_size must be a positive integer (DNBs), got {bin_size!r}", where, "e.g. 50"
        )
    if not (np.isfinite(dnb_pitch_um) and dnb_pitch_um > 0):
        raise input_error(f"dnb_pitch_um must be > 0, got {dnb_pitch_um}", where, "use 0.5")
    header, sep, n_comments = table_columns(p)
    count_col = pick_column(header, COUNT_ALIASES)
    gene_col = pick_column(header, ("geneID", "gene", "geneName"))
    require_columns(
        header,
        [gene_col or "geneID", "x", "y", count_col or "MIDCount"],
        where,
        "a GEM file has tab-separated columns geneID, x, y, MIDCount",
    )
    assert gene_col is not None and count_col is not None

    gene_index: dict[str, int] = {}
    parts: list[pd.DataFrame] = []
    for chunk in iter_csv(
        p,
        sep=sep,
        skiprows=n_comments,
        usecols=[gene_col, "x", "y", count_col],
        dtype={gene_col: str, "x": np.float64, "y": np.float64, count_col: np.float64},
        chunksize=chunksize,
    ):
        xy = chunk[["x", "y"]].to_numpy()
        counts = chunk[count_col].to_numpy()
        if not np.isfinite(xy).all():
            raise input_error(
                "NaN/inf (or empty) x/y values", where, "drop those rows from the GEM file"
            )
        if not np.isfinite(counts).all() or (counts < 0).any():
            raise input_error(
                f"{count_col} has missing or negative values", where, "counts must be >= 0"
            )
        codes, uniques = pd.factorize(chunk[gene_col], use_na_sentinel=True)
        if (codes < 0).any():
            raise input_error("rows without a geneID", where, "drop those rows")
        for g in uniques:
            gene_index.setdefault(g, len(gene_index))
        remap = np.fromiter((gene_index[g] for g in uniques), dtype=np.int64, count=len(uniques))
        part = pd.DataFrame(
            {
                "bx": np.floor(xy[:, 0] / bin_size).astype(np.int64),
                "by": np.floor(xy[:, 1] / bin_size).astype(np.int64),
                "g": remap[codes],
                "n": counts,
            }
        )
        parts.append(part.groupby(["bx", "by", "g"], sort=False, as_index=False)["n"].sum())
    if not parts:
        raise input_error("the GEM file has no molecules", where, "check the file")
    table = pd.concat(parts, ignore_index=True)
    bxy = table[["bx", "by"]].to_numpy()
    lo = bxy.min(axis=0)
    height = int(bxy[:, 1].max() - lo[1] + 1)
    key = (bxy[:, 0] - lo[0]) * height + (bxy[:, 1] - lo[1])  # one int64 per bin: fast unique
    keys, spot = np.unique(key, return_inverse=True)
    bins = np.column_stack([keys // height + lo[0], keys % height + lo[1]])
    X = sp.coo_matrix(
        (table["n"].to_numpy(np.float32), (spot, table["g"].to_numpy())),
        shape=(len(bins), len(gene_index)),
    ).tocsr()  # duplicates (same bin/gene in several chunks) are summed
    genes = np.array(list(gene_index), dtype=object)
    # a bin holds DNBs bx*b .. bx*b + b - 1: its centre is at bx*b + (b - 1) / 2
    centres_dnb = bins * bin_size + (bin_size - 1) / 2.0
    obs = pd.DataFrame({"bin_x": bins[:, 0], "bin_y": bins[:, 1]})
    names = [f"bin{bin_size}_{bx}_{by}" for bx, by in bins]
    return build_adata(
        X,
        names,
        genes,
        centres_dnb * dnb_pitch_um,
        fmt="stereoseq_gem",
        source=p,
        where=where,
        pixel_size_um=dnb_pitch_um,
        obs=obs,
        keep_controls=True,
        uns_extra={"bin_size": int(bin_size), "bin_size_um": float(bin_size * dnb_pitch_um)},
    )
