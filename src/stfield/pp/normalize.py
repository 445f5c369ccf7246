"""Quality control and the SUICA appendix-G normalisation, sparse throughout."""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from .._constants import CONTROL_PATTERN, UNS_KEY
from .._errors import input_error
from .._validate import check_adata

logger = logging.getLogger(__name__)

#: The reference implementation's thresholds (SUICA appendix G / published code).
PAPER_MIN_SPOT_COUNTS = 200
PAPER_MIN_GENE_COUNTS = 3
PAPER_MAX_GENE_COUNT = 200
PAPER_TARGET_SUM = 200.0


def _csr(X: np.ndarray | sp.spmatrix) -> sp.csr_matrix:
    return X.tocsr() if sp.issparse(X) else sp.csr_matrix(np.asarray(X, dtype=np.float32))


def control_genes(adata: AnnData) -> np.ndarray:
    """Boolean mask of control probes / blank codewords among ``adata.var_names``."""
    return np.asarray(
        adata.var_names.str.lower().str.contains(CONTROL_PATTERN, regex=True), dtype=bool
    )


def filter_slice(
    adata: AnnData,
    min_spot_counts: float = 1,
    min_gene_counts: float = 1,
    max_gene_count: float | None = None,
    drop_controls: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Drop control probes, sparse spots and rare (or, optionally, overly high) genes.

    Parameters
    ----------
    adata
        Slice with counts in ``X``.
    min_spot_counts
        Spots with a smaller total count are dropped (``1`` drops empty spots).
    min_gene_counts
        Genes with a smaller total count over all spots are dropped.
    max_gene_count
        If given, genes whose count exceeds this value in any spot are dropped (SUICA: 200).
    drop_controls
        Drop ``Blank*``, ``NegControl*``... features (see ``_constants.CONTROL_PATTERN``).
    copy
        Return a filtered copy instead of filtering in place.
    """
    check_adata(adata, require_spatial=False)
    n_spots0, n_genes0 = adata.shape
    gene_keep = ~control_genes(adata) if drop_controls else np.ones(adata.n_vars, bool)
    X = _csr(adata.X)
    spot_totals = np.asarray(X[:, gene_keep].sum(axis=1)).ravel()
    spot_keep = spot_totals >= min_spot_counts
    X = X[spot_keep]
    gene_keep &= np.asarray(X.sum(axis=0)).ravel() >= min_gene_counts
    if max_gene_count is not None and X.nnz:
        gene_keep &= np.asarray(X.max(axis=0).todense()).ravel() <= max_gene_count
    if not spot_keep.any() or not gene_keep.any():
        raise input_error(
            f"filtering left {int(spot_keep.sum())} spots × {int(gene_keep.sum())} genes "
            f"(min_spot_counts={min_spot_counts}, min_gene_counts={min_gene_counts}, "
            f"max_gene_count={max_gene_count})",
            "filter_slice",
            "lower the thresholds (median spot total is "
            f"{np.median(spot_totals) if spot_totals.size else 0:g})",
        )
    logger.info(
        "keeping %d/%d spots and %d/%d genes",
        int(spot_keep.sum()),
        n_spots0,
        int(gene_keep.sum()),
        n_genes0,
    )
    if copy:
        return adata[spot_keep, gene_keep].copy()
    # In place, as scanpy's own filters do.
    adata._inplace_subset_obs(spot_keep)
    adata._inplace_subset_var(gene_keep)
    return None


def auto_min_spot_counts(totals: np.ndarray) -> int:
    """Data-aware spot threshold: the paper's 200, or 10% of the median total if smaller.

    A 10 µm Xenium bin holds ~50-100 molecules, so the paper's 200 would drop every spot.
    """
    median = float(np.median(totals)) if totals.size else 0.0
    return int(min(PAPER_MIN_SPOT_COUNTS, max(1, math.ceil(0.1 * median))))


def normalize_suica(
    adata: AnnData,
    min_spot_counts: int | Literal["auto"] = "auto",
    min_gene_counts: int = PAPER_MIN_GENE_COUNTS,
    max_gene_count: float | None = PAPER_MAX_GENE_COUNT,
    target_sum: float = PAPER_TARGET_SUM,
    log1p: bool = False,
    drop_controls: bool = True,
    counts_layer: str | None = "counts",
    copy: bool = False,
) -> AnnData | None:
    """SUICA appendix-G preprocessing: filter, drop overly high genes, scale spots to one total.

    Zeros stay zeros (each spot is scaled, nothing is added), so sparsity is kept.

    Parameters
    ----------
    adata
        Slice with raw counts in ``X`` (CSR or dense).
    min_spot_counts
        Drop spots with fewer counts. ``"auto"``: the paper's 200, or 10% of the median spot
        total when that is smaller (see :func:`auto_min_spot_counts`).
    min_gene_counts
        Drop genes with fewer counts in total (paper: 3).
    max_gene_count
        Drop genes whose count exceeds this in any spot (paper: 200); ``None`` keeps them.
    target_sum
        Every spot is scaled to this total (paper: 200).
    log1p
        Apply ``log(1 + x)`` after scaling (the paper does not).
    drop_controls
        Drop control probes first.
    counts_layer
        Keep the filtered raw counts in this layer (``None``: don't).
    copy
        Return a new AnnData instead of modifying ``adata``.
    """
    check_adata(adata, require_spatial=False)
    if target_sum <= 0:
        raise input_error(f"target_sum must be > 0, got {target_sum}", "target_sum", "use e.g. 200")
    if min_spot_counts == "auto":
        totals = np.asarray(_csr(adata.X).sum(axis=1)).ravel()
        min_spot_counts = auto_min_spot_counts(totals)
    out = adata.copy() if copy else adata
    filter_slice(
        out,
        min_spot_counts=min_spot_counts,
        min_gene_counts=min_gene_counts,
        max_gene_count=max_gene_count,
        drop_controls=drop_controls,
    )
    X = _csr(out.X).astype(np.float32)
    totals = np.asarray(X.sum(axis=1)).ravel()
    # After gene filtering a spot can become empty: drop it rather than divide by zero.
    if not (totals > 0).all():
        out._inplace_subset_obs(totals > 0)
        X, totals = X[totals > 0], totals[totals > 0]
    if counts_layer is not None:
        out.layers[counts_layer] = X.copy()
    X = sp.diags((target_sum / totals).astype(np.float32)) @ X
    if log1p:
        X = X.log1p()
    out.X = sp.csr_matrix(X, dtype=np.float32)
    out.uns.setdefault(UNS_KEY, {})["normalize"] = {
        "method": "suica_appendix_g",
        "min_spot_counts": int(min_spot_counts),
        "min_gene_counts": int(min_gene_counts),
        "max_gene_count": None if max_gene_count is None else float(max_gene_count),
        "target_sum": float(target_sum),
        "log1p": bool(log1p),
    }
    logger.info("normalised %d spots to total %g (log1p=%s)", out.n_obs, target_sum, log1p)
    return out if copy else None
