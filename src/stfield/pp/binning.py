"""Bin a transcripts table into square spots: a Stereo-seq-like spot × gene count matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._constants import SPATIAL_KEY, SPATIAL_UNIT, TX_GENE, TX_X, TX_Y, UNS_KEY
from .._errors import input_error
from .._validate import check_transcripts


def bin_transcripts(
    transcripts: pd.DataFrame,
    bin_size_um: float,
    origin: tuple[float, float] | None = None,
    min_counts: int = 1,
) -> AnnData:
    """Count molecules per square bin and gene.

    Parameters
    ----------
    transcripts
        Canonical transcripts table (``gene, x, y`` in µm), e.g. from
        :func:`stfield.io.read_transcripts`.
    bin_size_um
        Side of the square bins in µm.
    origin
        Lower-left corner of the bin grid; defaults to the minimum ``(x, y)``.
    min_counts
        Bins with fewer molecules are dropped (empty bins never appear).

    Returns
    -------
    AnnData
        ``X``: CSR float32 counts (bins × genes, all genes of the table's categories kept);
        ``obsm["spatial"]``: bin centres in µm; ``obs``: ``bin_x``, ``bin_y`` grid indices and
        ``total_counts``; ``uns["stfield"]``: unit and bin size.
    """
    check_transcripts(transcripts)
    if not np.isfinite(bin_size_um) or bin_size_um <= 0:
        raise input_error(
            f"bin size must be a positive number of µm, got {bin_size_um}",
            "bin_size_um",
            "pass e.g. bin_size_um=10",
        )
    x = transcripts[TX_X].to_numpy(dtype=np.float64, copy=False)
    y = transcripts[TX_Y].to_numpy(dtype=np.float64, copy=False)
    x0, y0 = (float(x.min()), float(y.min())) if origin is None else map(float, origin)
    ix = np.floor((x - x0) / bin_size_um).astype(np.int64)
    iy = np.floor((y - y0) / bin_size_um).astype(np.int64)
    if ix.min() < 0 or iy.min() < 0:
        raise input_error(
            "some molecules lie below/left of the given origin",
            "origin",
            "use an origin at or below the minimum x and y, or origin=None",
        )
    genes = transcripts[TX_GENE]
    if not isinstance(genes.dtype, pd.CategoricalDtype):
        genes = genes.astype("category")
    gene_codes = genes.cat.codes.to_numpy()
    if (gene_codes < 0).any():
        raise input_error(
            f"{int((gene_codes < 0).sum())} molecule(s) have no gene name",
            "transcripts['gene']",
            "drop molecules with a missing gene before binning",
        )
    gene_names = pd.Index(genes.cat.categories.astype(str))

    # One int64 key per occupied bin; np.unique sorts once (O(n log n)), no dense grid is built.
    ny = int(iy.max()) + 1
    keys = ix * ny + iy
    unique_keys, spot_of_molecule = np.unique(keys, return_inverse=True)
    counts = sp.csr_matrix(
        (
            np.ones(keys.size, dtype=np.float32),
            (spot_of_molecule.astype(np.int64), gene_codes.astype(np.int64)),
        ),
        shape=(unique_keys.size, gene_names.size),
    )
    counts.sum_duplicates()
    bin_x, bin_y = unique_keys // ny, unique_keys % ny
    totals = np.asarray(counts.sum(axis=1)).ravel()
    keep = totals >= min_counts
    obs = pd.DataFrame(
        {"bin_x": bin_x[keep], "bin_y": bin_y[keep], "total_counts": totals[keep]},
        index=pd.Index(
            [f"bin_{a}_{b}" for a, b in zip(bin_x[keep], bin_y[keep], strict=True)], dtype=str
        ),
    )
    centres = np.column_stack(
        [x0 + (bin_x[keep] + 0.5) * bin_size_um, y0 + (bin_y[keep] + 0.5) * bin_size_um]
    )
    adata = AnnData(X=counts[keep], obs=obs, var=pd.DataFrame(index=gene_names))
    adata.obsm[SPATIAL_KEY] = centres
    source = transcripts.attrs.get(UNS_KEY, {}) if hasattr(transcripts, "attrs") else {}
    adata.uns[UNS_KEY] = {
        "spatial_unit": SPATIAL_UNIT,
        "bin_size_um": float(bin_size_um),
        "bin_origin_um": [x0, y0],
        "format": "binned_transcripts",
        **{k: v for k, v in source.items() if k in ("source", "platform")},
    }
    if source.get("format"):
        adata.uns[UNS_KEY]["transcripts_format"] = source["format"]
    return adata
